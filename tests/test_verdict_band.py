"""The verdict band's edges: each confident verdict right at least `precision` of the time."""

from __future__ import annotations

import numpy as np
import pytest

from studies.verdict_band import choose_band, scores_from_report


def test_band_edges_meet_the_precision_on_each_side():
    rng = np.random.default_rng(0)
    authentic = rng.uniform(0.0, 0.6, 60)
    tampered = rng.uniform(0.4, 1.0, 60)
    scores = np.concatenate([authentic, tampered])
    truth = np.r_[np.zeros(60, bool), np.ones(60, bool)]
    low, high = choose_band(scores, truth, precision=0.9)
    assert 0.0 < low < high < 1.0
    assert truth[scores >= high].mean() >= 0.9 and (~truth[scores < low]).mean() >= 0.9
    # The edges are the tightest: one step further in and the precision fails.
    assert truth[scores >= high - 0.05].mean() < 0.9 or high - 0.05 < 0.4
    assert (~truth[scores < low + 0.05]).mean() < 0.9 or low + 0.05 > 0.6


def test_a_chance_classifier_is_never_confident_and_a_perfect_one_has_no_band():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 200)
    truth = rng.uniform(0, 1, 200) < 0.5
    assert choose_band(scores, truth, precision=0.9) == (0.0, 1.0)
    perfect = np.r_[np.linspace(0.0, 0.3, 20), np.linspace(0.7, 1.0, 20)]
    low, high = choose_band(perfect, np.r_[np.zeros(20, bool), np.ones(20, bool)])
    assert low == high and 0.3 < high <= 0.7


def test_bad_inputs_and_reports_are_refused():
    with pytest.raises(ValueError, match="one length"):
        choose_band([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="precision"):
        choose_band([0.1], [True], precision=0.4)
    report = {"noso": {"per_image": [{"image_score": 0.2, "tampered": False}, {"image_score": None, "tampered": True}]}}
    assert scores_from_report(report, ["noso"]) == ([0.2], [False])
    with pytest.raises(KeyError, match="no set 'casia1-dev-swap'"):
        scores_from_report(report, ["casia1-dev-swap"])
