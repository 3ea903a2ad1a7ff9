"""Grad-CAM, fusion, region similarity and Bayesian enhancement against hand computations."""

import math

import numpy as np
import pytest

from wsloc_runtime.cam import geometric_mean_fusion, grad_cam, normalize_map, upsample_map
from wsloc_runtime.metrics import best_f1, f1_iou_at, roc_auc
from wsloc_runtime.errors import UnknownNameError
from wsloc_runtime.fusion import FusionSettings
from wsloc_runtime.regions import (
    REGION_CHOICES,
    Regions,
    bayesian_enhancement,
    connected_regions,
    distance_weighted_mean,
    inside_distance,
    region_similarity,
    select_region,
    soft_dice,
)


EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def test_grad_cam_matches_hand_computation():
    features = np.zeros((2, 2, 2), np.float32)
    features[..., 0] = [[1, 2], [3, 4]]
    features[..., 1] = [[4, 3], [2, 1]]
    gradient = np.zeros_like(features)
    gradient[..., 0] = 0.5  # alpha_0 = 0.5
    gradient[..., 1] = [[-1, -1], [-1, -1]]  # alpha_1 = -1
    expected = np.maximum(0.5 * features[..., 0] - features[..., 1], 0)  # [[0,0],[0,1]]
    np.testing.assert_allclose(grad_cam(features, gradient), expected)  # small integers and halves: exact
    assert grad_cam(features, gradient)[1, 1] == pytest.approx(1.0)


def test_grad_cam_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must both be"):
        grad_cam(np.zeros((2, 2, 3)), np.zeros((2, 2, 4)))


def test_normalize_and_upsample():
    assert normalize_map(np.zeros((3, 3))).max() == 0
    np.testing.assert_allclose(normalize_map(np.array([[0, 2], [1, 4]])), [[0, 0.5], [0.25, 1]])
    up = upsample_map(np.array([[0.0, 1.0]], np.float32), (4, 8))
    assert up.shape == (4, 8) and up.max() == pytest.approx(1.0) and up.min() >= 0


def test_geometric_mean_of_equal_maps_is_the_map_rescaled():
    a = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    # exp(mean(log a)) in float64 is within a few eps64 of a; the float32 cast of a value <= 1 then
    # rounds by <= eps32 / 2: one float32 ulp of 1 covers both
    np.testing.assert_allclose(geometric_mean_fusion([a, a, a], epsilon=0.0), a, rtol=0, atol=EPS32)


def test_geometric_mean_with_a_zero_map_keeps_what_the_others_see():
    seen = np.zeros((4, 4), np.float32)
    seen[1:3, 1:3] = 1.0
    blind = np.zeros_like(seen)
    fused = geometric_mean_fusion([seen, seen, blind], epsilon=0.05)
    assert fused[1:3, 1:3].min() == pytest.approx(1.0)
    assert fused[0, 0] == pytest.approx(0.0)
    # Without the floor, one blind variant erases everything.
    assert geometric_mean_fusion([seen, seen, blind], epsilon=0.0).max() == 0.0


def test_geometric_mean_hand_value():
    a, b, c = (np.array([[v, 0.0, 1.0]], np.float32) for v in (0.2, 0.4, 0.8))
    raw = ((0.2 + 0.1) * (0.4 + 0.1) * (0.8 + 0.1)) ** (1 / 3)
    low, high = 0.1, 1.1  # the all-zero and all-one pixels
    fused = geometric_mean_fusion([a, b, c], epsilon=0.1)
    # The code reads float32 maps (0.2f = 0.2 (1 + ~eps32 / 4)): the geometric mean's inputs are within
    # eps32 / 2 relative, so is their mean, amplified by raw / (raw - low) ~ 1.2 by the rescaling; the
    # float32 cast adds eps32 / 2 (the 0 and 1 are exact: min and max map to (x - x) / d and d / d)
    np.testing.assert_allclose(fused[0], [(raw - low) / (high - low), 0.0, 1.0], rtol=2 * EPS32, atol=0)


def test_inside_distance_of_a_square():
    mask = np.zeros((9, 9), bool)
    mask[2:7, 2:7] = True  # 5x5 square
    distance = inside_distance(mask)
    # DIST_MASK_PRECISE is the exact Euclidean transform, in float32: an integer distance d is within
    # a few float32 roundings (the square root of d^2) of d: 4 * eps32 * d
    assert distance[4, 4] == pytest.approx(3.0, abs=4 * EPS32 * 3.0)  # three steps to the first outside pixel
    assert distance[2, 4] == pytest.approx(1.0, abs=4 * EPS32)
    assert distance[0, 0] == 0


def test_image_border_counts_as_boundary():
    mask = np.ones((5, 5), bool)
    assert inside_distance(mask)[0, 2] == pytest.approx(1.0, abs=4 * EPS32)  # exact transform, float32


def gaussian(shape, centre, sigma):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_square_under_gaussian_wins_similarity():
    shape = (64, 64)
    activation = gaussian(shape, (20, 40), 6.0)
    on_peak = np.zeros(shape, bool)
    on_peak[12:29, 32:49] = True
    off_peak = np.zeros(shape, bool)
    off_peak[40:57, 5:22] = True
    background = ~(on_peak | off_peak)
    regions = Regions(np.stack([background, off_peak, on_peak]))
    index, score, scores = select_region(regions, activation)
    assert index == 2
    assert scores[2] > 5 * max(scores[0], scores[1])
    assert score == scores[2]  # exact: select_region returns the chosen region's own score


def test_similarity_matches_formula_on_whole_image():
    rng = np.random.default_rng(1)
    activation = rng.random((20, 30)).astype(np.float32)
    mask = np.zeros((20, 30), bool)
    mask[3:15, 5:22] = True
    mask[8:10, 25:28] = True  # a second component: the crop must cover both
    distance = inside_distance(mask)
    expected = float((distance * activation).sum() / mask.sum())
    # float32 sums (here of the whole image, in the code of a crop) of n terms of size <= S are within
    # n * eps32 * S of the exact sum; divided by n that is eps32 * S, plus the division's own rounding
    terms = distance * activation
    tolerance = EPS32 * float(terms.max()) + EPS32 * expected
    assert region_similarity(Regions(mask[None]), activation)[0] == pytest.approx(expected, abs=tolerance)


def test_similarity_of_empty_region_is_zero_and_no_regions_gives_minus_one():
    activation = np.ones((8, 8), np.float32)
    assert region_similarity(Regions(np.zeros((1, 8, 8), bool)), activation)[0] == 0.0
    assert select_region(Regions(np.zeros((0, 8, 8), bool)), activation)[0] == -1


def _squares(shape, *boxes):
    masks = np.zeros((len(boxes), *shape), bool)
    for mask, (top, left, side) in zip(masks, boxes):
        mask[top: top + side, left: left + side] = True
    return Regions(masks)


def test_under_an_even_prior_only_the_papers_similarity_rewards_size():
    regions = _squares((80, 80), (2, 2, 10), (20, 20, 50))
    even = np.full((80, 80), 0.5, np.float32)
    similarity = region_similarity(regions, even)
    assert similarity[1] > 4 * similarity[0]  # the mean inside distance grows with the side
    assert distance_weighted_mean(regions, even) == pytest.approx([0.5, 0.5])


def test_soft_dice_is_the_regions_dice_with_the_prior_as_truth():
    rng = np.random.default_rng(3)
    prior = rng.random((30, 40)).astype(np.float32)
    regions = _squares((30, 40), (5, 5, 12), (0, 0, 30))
    expected = [2 * prior[m].sum() / (prior.sum() + m.sum()) for m in regions.masks]
    # The code sums in float64, the reference above in float32: a float32 sum of n terms <= 1 is within
    # n * eps32 of the exact one, relative to the numerator's and the denominator's sums
    rel = [int(m.sum()) * EPS32 / float(prior[m].sum()) + prior.size * EPS32 / float(prior.sum() + m.sum()) + EPS32
           for m in regions.masks]
    assert soft_dice(regions, prior) == pytest.approx(expected, rel=max(rel))
    exact = regions.masks[0].astype(np.float32)
    assert soft_dice(regions, exact)[0] == pytest.approx(1.0)
    assert select_region(regions, exact, "soft_dice")[0] == 0


def test_an_unknown_region_choice_names_the_valid_ones():
    regions = _squares((20, 20), (2, 2, 5))
    with pytest.raises(UnknownNameError, match="similarity"):
        select_region(regions, np.ones((20, 20), np.float32), "largest")
    with pytest.raises(UnknownNameError, match="soft_dice"):
        FusionSettings(region_choice="largest")
    assert FusionSettings().region_choice == "similarity" and set(REGION_CHOICES) >= {"similarity"}


def test_bayesian_enhancement_equals_bayes_rule_by_hand():
    prior = np.array([[0.9, 0.6], [0.3, 0.1]], np.float32)
    region = np.array([[1, 1], [0, 0]], bool)
    l1 = (0.9 + 0.6) / prior.sum()
    l0 = (0.1 + 0.4) / (1 - prior).sum()
    expected = np.empty((2, 2))
    for (i, j), a in np.ndenumerate(prior.astype(np.float64)):
        lm, lp = (l1, l0) if region[i, j] else (1 - l1, 1 - l0)
        expected[i, j] = lm * a / (lm * a + lp * (1 - a))
    # The reference's l1, l0 read the float32 sum prior.sum() and float64 0.9 + 0.6 (vs 0.9f + 0.6f):
    # each is within eps32 relative of the code's float64 ones; the posterior's relative change is at
    # most that of lm plus that of lp (each enters with a weight <= 1), and the float32 cast adds eps32 / 2
    np.testing.assert_allclose(bayesian_enhancement(prior, region, eps=0.0), expected, rtol=3 * EPS32)


def test_informative_region_raises_inside_and_lowers_outside():
    prior = gaussian((32, 32), (16, 16), 5.0) * 0.8 + 0.1
    region = np.zeros((32, 32), bool)
    region[10:23, 10:23] = True
    posterior = bayesian_enhancement(prior, region)
    # float64 inside, cast to float32: one float32 rounding of values <= 1, i.e. <= eps32 / 2
    assert (posterior[region] >= prior[region] - EPS32).all()
    assert (posterior[~region] <= prior[~region] + EPS32).all()


def test_uninformative_region_leaves_the_map_unchanged():
    prior = np.full((10, 10), 0.3, np.float32)
    region = np.zeros((10, 10), bool)
    region[:5] = True
    # l1 = (15 + eps) / (30 + 2 eps) = l0 = (35 + eps) / (70 + 2 eps) = 1/2 exactly; their float64 sums
    # of <= 100 terms differ by <= 100 eps64, far under the float32 cast's rounding of values <= 1
    np.testing.assert_allclose(bayesian_enhancement(prior, region), prior, rtol=0, atol=EPS32)


def test_connected_regions_splits_each_class_into_components():
    classes = np.zeros((6, 6), np.int32)
    classes[0:2, 0:2] = 1
    classes[4:6, 4:6] = 1  # same class, second component
    classes[0:2, 4:6] = 2
    labels = connected_regions(classes, min_area=2, ignore=(0,))
    regions = Regions.from_labels(labels)
    assert len(regions) == 3
    assert sorted(int(m.sum()) for m in regions.masks) == [4, 4, 4]
    assert (labels[classes == 0] == -1).all()


def test_roc_auc_with_ties_matches_pair_counting():
    scores = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.2])
    truth = np.array([0, 1, 0, 1, 1, 0], bool)
    pairs = [(p, n) for p in scores[truth] for n in scores[~truth]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    # both are one correctly rounded division of the same rational (sums of halves are exact)
    assert roc_auc(scores, truth) == pytest.approx(expected, rel=EPS64)
    assert math.isnan(roc_auc(scores, np.ones(6, bool)))


def test_best_f1_matches_brute_force():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, 200) / 4.0
    truth = rng.random(200) < 0.3
    brute = max(f1_iou_at(scores, truth, t)[0] for t in np.unique(scores))
    # the same ratio 2 tp / (2 tp + fp + fn) of integer counts, in float64 by two code paths
    assert best_f1(scores, truth) == pytest.approx(brute, rel=4 * EPS64)


def test_f1_and_iou_by_hand():
    scores = np.array([0.9, 0.6, 0.4, 0.1])
    truth = np.array([1, 0, 1, 0], bool)
    f1, iou = f1_iou_at(scores, truth, 0.5)  # tp=1 fp=1 fn=1
    assert f1 == pytest.approx(0.5) and iou == pytest.approx(1 / 3)
