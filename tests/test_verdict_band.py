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


# --------------------------------------------------------------------------- issue 35: guard, margin, out of sample

from studies.verdict_band import (GUARD_MAX_ACCUSED, PhotoRow, choose_verdict_rule, leave_one_set_out,  # noqa: E402
                                  loso_markdown, rows_from_evaluation, verdicts_of)
from wsloc_runtime.pipeline import verdict_of  # noqa: E402


def _set(rng, forged: int, authentic: int, forged_range=(0.5, 1.0), authentic_range=(0.0, 0.6),
         readability=1.0) -> list[PhotoRow]:
    return ([PhotoRow(float(p), True, readability) for p in rng.uniform(*forged_range, forged)]
            + [PhotoRow(float(p), False, readability) for p in rng.uniform(*authentic_range, authentic)])


def test_a_guard_of_authentic_photos_raises_the_upper_edge_until_at_most_two_percent_are_accused():
    rng = np.random.default_rng(3)
    sets = {"a": _set(rng, 60, 60), "b": _set(rng, 60, 60)}
    # Re-saved untouched photos that the models score like forgeries: 30 of 200 above 0.8.
    guard = ([PhotoRow(float(p), False, 1.0) for p in rng.uniform(0.0, 0.6, 170)]
             + [PhotoRow(float(p), False, 1.0) for p in rng.uniform(0.8, 0.95, 30)])
    free = choose_verdict_rule(sets)
    guarded = choose_verdict_rule(sets, guard=guard)
    assert guarded["verdict_band"][1] > free["verdict_band"][1]
    accused = sum(v == "likely manipulated" for v in verdicts_of(guard, tuple(guarded["verdict_band"]),
                                                                  guarded["readable_from"], guarded["margin"]))
    assert accused <= GUARD_MAX_ACCUSED * len(guard) and guarded["guard"]["likely manipulated"]["said"] == accused
    # With the free edge, the guard's photos above it would have been accused.
    assert sum(v == "likely manipulated" for v in verdicts_of(guard, tuple(free["verdict_band"]), 0.5)) > accused


def test_the_margin_raises_the_upper_edge_on_partly_readable_photos_only():
    band = (0.1, 0.7)
    assert verdict_of(0.72, band, True, readability=1.0, margin=0.1) == "likely manipulated"
    assert verdict_of(0.72, band, True, readability=0.5, margin=0.1) == "uncertain"  # needs 0.75
    assert verdict_of(0.72, band, False, readability=0.0, margin=0.1) == "cannot tell"  # needs 0.8
    assert verdict_of(0.81, band, False, readability=0.0, margin=0.1) == "likely manipulated"
    assert verdict_of(0.72, band, True, readability=1.7, margin=0.1) == "likely manipulated"  # clipped to 1


def test_a_margin_is_chosen_where_partly_readable_photos_are_the_false_alarms():
    """Forgeries read clearly score high; partly readable authentic photos score in the same range:
    only a margin keeps "likely manipulated" at 90 % without giving up the clear forgeries."""
    rng = np.random.default_rng(5)

    def one():
        return (_set(rng, 40, 40, forged_range=(0.75, 1.0), authentic_range=(0.0, 0.5), readability=1.0)
                + [PhotoRow(float(p), False, 0.3) for p in rng.uniform(0.75, 0.82, 25)])

    chosen = choose_verdict_rule({"a": one(), "b": one(), "c": one()}, margin_candidates=(0.0, 0.05, 0.1))
    assert chosen["margin"] > 0.0
    assert {c["margin"] for c in chosen["candidates"]} == {0.0, 0.05, 0.1}


def test_leave_one_set_out_counts_each_set_with_edges_chosen_without_it():
    rng = np.random.default_rng(7)
    sets = {"a": _set(rng, 50, 50), "b": _set(rng, 50, 50),
            # A set unlike the others: its authentic photos score as high as forgeries elsewhere.
            "odd": _set(rng, 50, 50, authentic_range=(0.3, 0.9))}
    result = leave_one_set_out(sets)
    assert set(result["held_out"]) == {"a", "b", "odd"}
    without_odd = choose_verdict_rule({"a": sets["a"], "b": sets["b"]})
    assert result["held_out"]["odd"]["rule"]["verdict_band"] == without_odd["verdict_band"]
    odd = result["held_out"]["odd"]["table"]["likely manipulated"]
    # Out of sample the odd set falls below 90 %, and the stated number is that worst set's.
    assert odd["said"] >= 10 and odd["right"] / odd["said"] < 0.9
    stated = result["stated"]["likely manipulated"]
    assert stated["set"] == "odd" and stated["precision"] == round(odd["right"] / odd["said"], 4)
    assert "| odd |" in loso_markdown(result)


def test_rows_read_the_readability_of_either_fusion_mode():
    """The paper's mode shows no evidence, but its rows carry the readability it computed."""
    report = {"per_image": [
        {"tampered": True, "probability": 0.9, "readability": {"kinds": {"pasted": 0.8, "copied": 1.0}}},
        {"tampered": False, "probability": 0.1, "evidence": {"jpeg": {"reliability": 0.3}}},
        {"tampered": None, "probability": 0.5},
    ]}
    rows = rows_from_evaluation(report)
    assert rows == [PhotoRow(0.9, True, 0.8), PhotoRow(0.1, False, 0.3)]
