"""The fusion ceiling diagnostic: grouping by base photo and a combiner that learns what a map says."""

import numpy as np
import pytest

from studies.fusion_ceiling import LogisticCombiner, base_photo_groups, ceiling


def _record(rng, base: np.ndarray, truth: np.ndarray, telling: bool) -> dict:
    """A cached-photo record whose noise map marks the truth (with noise) when ``telling``."""
    shape = truth.shape
    noise = np.clip((0.75 * truth + 0.25 * rng.random(shape)) if telling else rng.random(shape), 0, 1)
    regions = np.stack([truth, ~truth])
    record = {"tampered": np.bool_(True), "truth": truth, "image": base, "model_probability": np.float32(0.5),
              "regions": np.packbits(regions, axis=None), "regions_shape": np.array(regions.shape, np.int32),
              "activation": rng.random(shape).astype(np.float32), "ev_noise": noise.astype(np.float32)}
    for name in ("ela", "jpeg", "jpeg_grid", "copy_move"):
        record[f"ev_{name}"] = np.zeros(shape, np.float32)
        record[f"rel_{name}"] = np.float32(0.0)
        record[f"str_{name}"] = np.float32(0.0)
    record.update(rel_noise=np.float32(1.0), str_noise=np.float32(0.5))
    return record


def _bases(rng, count: int) -> list[np.ndarray]:
    """Photo-like bases: smooth random scenes (blurred noise), each unlike the others."""
    import cv2

    scenes = []
    for _ in range(count):
        scene = cv2.GaussianBlur(rng.random((48, 64, 3)).astype(np.float32), (0, 0), 4)
        scene = (scene - scene.min()) / (scene.max() - scene.min())
        scenes.append((255 * scene).astype(np.uint8))
    return scenes


def test_edits_of_one_base_photo_share_a_group_and_different_photos_do_not():
    rng = np.random.default_rng(0)
    bases = _bases(rng, 3)
    edited = bases[0].copy()
    edited[5:15, 5:15] = 0  # an edit keeps the thumbnail close to its base
    groups = base_photo_groups([{"image": b} for b in [bases[0], edited, bases[1], bases[2]]])
    assert groups[0] == groups[1]
    assert len({groups[0], groups[2], groups[3]}) == 3


def test_logistic_combiner_recovers_a_known_linear_rule():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(20000, 2))
    labels = (rng.random(20000) < 1 / (1 + np.exp(-(2.0 * features[:, 0] - 1.0)))).astype(float)
    combiner = LogisticCombiner(ridge=0.0).fit(features, labels)
    logits = combiner.logit(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    # A statistical tolerance, not a float one: the maximum-likelihood fit on 20000 samples has a
    # standard error of about 1 / sqrt(20000 * E[p (1 - p)] ) ~ 0.02-0.03 per coefficient (E[p (1 - p)]
    # ~ 0.13 here), so 0.1 is about 4 standard errors; float rounding (~1e-12) plays no part.
    assert logits[0] == pytest.approx(-1.0, abs=0.1)
    assert logits[1] - logits[0] == pytest.approx(2.0, abs=0.1)
    assert abs(logits[2] - logits[0]) < 0.1


def test_the_ceiling_learns_a_telling_map_and_not_a_silent_one():
    rng = np.random.default_rng(2)
    truth = np.zeros((48, 64), bool)
    truth[10:30, 20:44] = True
    telling = [_record(rng, base, truth, True) for base in _bases(rng, 6)]
    silent = [_record(rng, base, truth, False) for base in _bases(rng, 6)]
    learned = ceiling(telling)
    assert learned["groups"] == 6 and learned["photos"] == 6
    assert learned["auc"] > 0.95 and learned["f1"] > 0.8
    assert ceiling(silent)["auc"] < 0.7
