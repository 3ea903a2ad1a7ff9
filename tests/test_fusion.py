"""Evidence fusion: the pure functions on hand-made maps, the jpeg and activation evidences on
real JPEG encodings, and both fusion modes end to end on the small contract models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import jpeg_cycle
from tests.test_jpeg_traces import photo, pil_jpeg, spliced_double_jpeg
from wsloc_runtime import UnknownNameError
from wsloc_runtime.evidence import EvidenceInputs, EvidenceMap, create_evidence, evidence_names
from wsloc_runtime.fusion import FusionSettings, fuse
from wsloc_runtime.metrics import roc_auc
from wsloc_runtime.pipeline import Localizer


def reading(name: str, values: np.ndarray, reliability: float, strength: float = 0.0) -> EvidenceMap:
    return EvidenceMap(name, values, reliability, f"{name} test reading", strength)


def square(shape=(40, 60), top=10, left=20, size=12) -> np.ndarray:
    values = np.zeros(shape, np.float32)
    values[top : top + size, left : left + size] = 0.9
    return values


SETTINGS = FusionSettings(map_gain={"a": 1.0, "b": 1.0, "shown": 0.0}, strength_gain={"a": 1.0, "b": 1.0},
                          model_gain=1.0, two_sided=("a",), override_by=())


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


# Tolerances. fuse() works in float64 and returns the prior as float32, from float32 maps: a prior
# value p <= 1 is within eps32 / 2 of the float64 result (the cast), and each float32 input (0.9 is
# stored as 0.9 - 2.4e-8) adds at most eps32 / 2 more (|d prior / d map| <= 1 for the maps here), so
# a prior is within 2 * eps32 ~ 2.4e-7 of the float64 formula; a real bug moves it by >= 1e-3.
EPS32 = float(np.finfo(np.float32).eps)
PRIOR_TOL = 2 * EPS32
# The verdict's probability and the weights/shares are float64 scalars from a handful of products,
# sums and quotients of values <= 1: each operation rounds by eps64 / 2, so 8 * eps64 covers them.
SCALAR_TOL = 8 * float(np.finfo(np.float64).eps)


def logit_tol(p: float) -> float:
    """PRIOR_TOL seen in log-odds: d logit(p) = dp / (p (1 - p))."""
    return PRIOR_TOL / (p * (1 - p))


def test_an_unreliable_evidence_does_not_move_the_prior():
    speaking = reading("a", square(), 1.0)
    silent = reading("b", square(left=40), 0.0)
    fused = fuse([speaking, silent], None, SETTINGS)
    # exact: a reading of gain 0 is skipped, so both calls do the same float operations
    np.testing.assert_array_equal(fused.prior, fuse([speaking], None, SETTINGS).prior)
    assert fused.weights == {"a": 1.0, "b": 0.0}


def test_evidences_add_up_in_log_odds_and_one_sided_silence_is_neutral():
    two_sided, one_sided = reading("a", square(), 1.0), reading("b", square(left=40), 0.5)
    fused = fuse([two_sided, one_sided], None, SETTINGS).prior
    assert fused[15, 25] == pytest.approx(0.9, abs=PRIOR_TOL)  # only the two-sided map speaks there
    assert fused[35, 5] == pytest.approx(0.01, abs=PRIOR_TOL)  # "nothing here" from a two-sided map
    # b alone at 0.9 is read as 0.95 with half its gain: log-odds add to a's own "nothing here"
    expected = logit(0.01) + 0.5 * logit(0.95)
    assert logit(float(fused[15, 45])) == pytest.approx(expected, abs=logit_tol(1 / (1 + np.exp(-expected))))
    agreeing = fuse([two_sided, reading("b", square(), 1.0)], None, SETTINGS).prior
    expected = logit(0.9) + logit(0.95)
    assert logit(float(agreeing[15, 25])) == pytest.approx(expected, abs=logit_tol(1 / (1 + np.exp(-expected))))
    assert agreeing[15, 25] > fused[15, 25]  # two traces agreeing say more than either
    alone = fuse([reading("b", square(), 1.0)], None, SETTINGS).prior
    assert alone[0, 0] == 0.5  # exact: a one-sided map's 0 reads as 0.5, logit 0, sigmoid(0) = 0.5: no sign either way
    assert 0.0 <= fused.min() and fused.max() <= 1.0 and fused.dtype == np.float32


def test_shares_say_which_evidence_drove_the_mask():
    first, second = reading("a", square(), 1.0), reading("b", square(left=40), 1.0)
    shown = reading("shown", np.ones((40, 60), np.float32), 1.0)
    fused = fuse([first, second, shown], None, SETTINGS)
    where = np.zeros((40, 60), bool)
    where[10:22, 20:32] = True
    shares = fused.shares({r.name: r for r in (first, second, shown)}, where)
    # exact: "a" holds all the mass inside ``where`` (mass / (mass + 0 + 0)); the others have none
    assert shares["a"] == 1.0 and shares["b"] == 0.0 and shares["shown"] == 0.0
    assert sum(fused.shares({r.name: r for r in (first, second)}).values()) == pytest.approx(1.0, abs=SCALAR_TOL)
    assert sum(fused.weights.values()) == pytest.approx(1.0, abs=SCALAR_TOL)


def test_a_sure_specific_trace_takes_the_prior_over_from_the_vote():
    activation = reading("activation", square(left=40), 1.0)  # the detectors look elsewhere
    settings = FusionSettings(map_gain={"activation": 1.0, "copy_move": 1.0}, override_gain=2.0, yield_to_specific=0.0)
    sure_copy = reading("copy_move", square(), 1.0, strength=0.6)
    fused = fuse([activation, sure_copy], None, settings)
    # exact: 2 * 0.6 >= 1 clips to c = 1, and (1 - 1) * vote + 1 * map is the map bit for bit: fully
    np.testing.assert_array_equal(fused.prior, sure_copy.map)
    assert fused.weights["activation"] == 0.0 and fused.weights["copy_move"] == pytest.approx(1.0, abs=SCALAR_TOL)
    faint_copy = reading("copy_move", square(), 1.0, strength=0.1)
    mixed = fuse([activation, faint_copy], None, settings)
    assert mixed.prior[15, 45] == pytest.approx(0.8 * 0.9, abs=PRIOR_TOL)  # the vote keeps 1 - 2 * 0.1 of its say
    # where only the copy speaks it is in the vote (against the activation's "nothing here") and
    # in its own take-over
    vote = 1 / (1 + np.exp(-(logit(0.01) + logit(0.95))))
    assert mixed.prior[15, 25] == pytest.approx(0.8 * vote + 0.2 * 0.9, abs=PRIOR_TOL)
    unreliable = fuse([activation, reading("copy_move", square(), 0.0, strength=1.0)], None, settings)
    # exact: reliability 0 gives the copy gain 0 and c = 0, so it adds no float operation to the prior
    np.testing.assert_array_equal(unreliable.prior, fuse([activation], None, settings).prior)


def test_by_default_a_sure_area_off_the_jpeg_grid_takes_the_map_over_and_the_surest_trace_wins():
    # The default settings (seventh study): the grid is not in the vote, only a take-over.
    activation = reading("activation", square(left=40), 1.0)
    grid = reading("jpeg_grid", square(), 1.0, strength=1.0)
    fused = fuse([activation, grid], 0.3)
    np.testing.assert_array_equal(fused.prior, grid.map)  # exact: c = 1 * 1 * 1, (1 - 1) * vote + 1 * map
    assert fused.weights["jpeg_grid"] == pytest.approx(1.0, abs=SCALAR_TOL)
    # the grid strength's verdict gain is 0.5
    assert fused.probability == pytest.approx(1 - 0.7 * 0.5, abs=SCALAR_TOL)
    silent = fuse([activation, reading("jpeg_grid", square(), 1.0, strength=0.0)], 0.3)
    # exact: strength 0 gives c = 0 and the grid has no gain in the vote: no float operation is added
    np.testing.assert_array_equal(silent.prior, fuse([activation], 0.3).prior)
    # Two specific traces: the one with the larger reliability x strength takes over.
    copy = reading("copy_move", square(top=25, left=5), 1.0, strength=0.5)
    assert fuse([activation, reading("jpeg_grid", square(), 1.0, strength=0.4), copy], 0.3).weights["copy_move"] > 0.4


def test_a_base_rate_shifts_the_vote_in_log_odds_and_leaves_its_ranking():
    from dataclasses import replace

    values = square()
    values[values == 0] = 0.3
    even = fuse([reading("a", values, 1.0)], None, SETTINGS).prior
    rare = fuse([reading("a", values, 1.0)], None, replace(SETTINGS, base_rate=0.2)).prior
    assert rare[0, 0] == pytest.approx(1 / (1 + np.exp(-(logit(0.2) + logit(0.3)))), abs=PRIOR_TOL)
    assert even[0, 0] == pytest.approx(0.3, abs=PRIOR_TOL)
    # The ranking is kept: ordered by ``even``, ``rare`` never decreases (beyond the float32 rounding of
    # pixels that tie in ``even``: equal inputs need not give bit-equal outputs across SIMD lanes), and
    # where ``even`` steps up by more than that rounding, so does ``rare``.
    order = np.argsort(even, axis=None, kind="stable")
    even_steps, rare_steps = np.diff(even.ravel()[order]), np.diff(rare.ravel()[order])
    assert (rare_steps >= -PRIOR_TOL).all()
    assert (rare_steps[even_steps > PRIOR_TOL] > PRIOR_TOL).all() and (even_steps > PRIOR_TOL).any()
    with pytest.raises(ValueError, match="base_rate"):
        fuse([reading("a", values, 1.0)], None, replace(SETTINGS, base_rate=0.0))


def test_probability_combines_the_models_and_the_strengths():
    quiet = fuse([reading("a", square(), 1.0, 0.0)], 0.2, SETTINGS).probability
    strong = fuse([reading("a", square(), 1.0, 0.9)], 0.2, SETTINGS).probability
    unreliable = fuse([reading("a", square(), 0.0, 0.9)], 0.2, SETTINGS).probability
    assert quiet == pytest.approx(0.2, abs=SCALAR_TOL) and unreliable == pytest.approx(0.2, abs=SCALAR_TOL)
    assert strong == pytest.approx(1 - 0.8 * 0.1, abs=SCALAR_TOL)


def test_maps_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="expected"):
        fuse([reading("a", square(), 1.0), reading("b", np.zeros((10, 10), np.float32), 1.0)], None, SETTINGS)


def test_unknown_evidence_lists_the_valid_names(contract_models):
    with pytest.raises(UnknownNameError, match="copy_move"):
        create_evidence("clone")
    with pytest.raises(UnknownNameError, match="jpeg"):
        Localizer(contract_models, evidence=["activation", "exif"])
    assert {"activation", "jpeg", "jpeg_grid", "copy_move", "noise", "ela"} <= set(evidence_names())


def test_jpeg_evidence_is_silent_on_a_photo_never_jpeg_compressed():
    never = photo()
    result = create_evidence("jpeg").compute(EvidenceInputs(image=never, full=never))
    assert result.reliability == 0.0 and result.strength == 0.0 and not result.map.any()
    assert "no JPEG grid" in result.reason


def pasted_into_a_doubly_saved_photo(first_quality: int = 80, last_quality: int = 90):
    """A photo saved at ``first_quality``, a never-compressed patch pasted in, the whole saved again at
    ``last_quality``: the host is doubly compressed, the patch once."""
    from skimage import data

    host, _ = pil_jpeg(photo(), first_quality)
    donor = np.ascontiguousarray(data.chelsea()[:300, :400])
    image, mask = host.copy(), np.zeros(host.shape[:2], bool)
    image[101:251, 203:383] = donor[37:187, 51:231]
    mask[101:251, 203:383] = True
    return pil_jpeg(image, last_quality)[0], mask


@pytest.mark.parametrize("first_quality, last_quality", [(80, 90), (70, 90), (75, 95)])
def test_jpeg_evidence_marks_a_singly_compressed_paste_and_is_reliable(first_quality, last_quality):
    import cv2

    image, mask = pasted_into_a_doubly_saved_photo(first_quality, last_quality)
    half = (image.shape[0] // 2, image.shape[1] // 2)
    small = cv2.resize(image, half[::-1], interpolation=cv2.INTER_AREA)
    result = create_evidence("jpeg").compute(EvidenceInputs(image=small, full=image))
    assert result.map.shape == half and result.reliability > 0.8
    truth = cv2.resize(mask.astype(np.uint8), half[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
    assert roc_auc(result.map, truth) > 0.95
    # The map ranks blocks within the photo (min-max): the paste stands well above its host.
    assert result.map[truth].mean() > result.map[~truth].mean() + 0.25


def test_jpeg_evidence_calls_a_clear_paste_strong():
    # Quality 80 then 90: the paste sits more than SINGLE_SPREADS robust spreads below its host.
    # (After 70 -> 90 or 75 -> 95 the never-compressed patch sits 1.6-1.9 spreads below: the map
    # above still marks it, the image-level strength stays modest, as it does on authentic photos.)
    image, _ = pasted_into_a_doubly_saved_photo(80, 90)
    result = create_evidence("jpeg").compute(EvidenceInputs(image=image, full=image))
    assert result.reliability > 0.8 and result.strength > 0.8
    assert "looks saved only once" in result.reason


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
@pytest.mark.parametrize("first_quality, last_quality", [(95, 92), (95, 90), (90, 80), (80, 90)])
def test_an_authentic_photo_saved_twice_shows_no_pasted_area(name, first_quality, last_quality):
    # The false alarm this reading fixed: summed over all coefficients, the zero bin's ratio made
    # smooth areas of untouched, doubly saved photos look "saved once" (strength 0.6-1.0 on six of
    # these eight).
    from skimage import data

    rgb = np.ascontiguousarray(getattr(data, name)())
    twice = pil_jpeg(pil_jpeg(rgb, first_quality)[0], last_quality)[0]
    result = create_evidence("jpeg").compute(EvidenceInputs(image=twice, full=twice))
    assert result.strength < 0.25, result.details


@pytest.mark.parametrize("first_quality, last_quality", [(95, 92), (80, 90)])
def test_a_flat_area_of_a_photo_saved_twice_is_not_marked(first_quality, last_quality):
    rgb = photo().copy()
    flat = np.zeros(rgb.shape[:2], bool)
    flat[200:360, 16:200] = True
    rgb[flat] = (120, 130, 140)
    twice = pil_jpeg(pil_jpeg(rgb, first_quality)[0], last_quality)[0]
    result = create_evidence("jpeg").compute(EvidenceInputs(image=twice, full=twice))
    # Coefficients quantized to zero say nothing about the lattice: the flat area reads as its host.
    assert abs(float(result.map[flat].mean()) - float(result.map[~flat].mean())) < 0.1
    assert result.strength < 0.25


def test_jpeg_evidence_is_weak_where_the_first_save_was_finer():
    # Quality 90 then 75: the coarser last save hides most of the first; the host reads barely
    # double, so the evidence must not claim much.
    image, _ = spliced_double_jpeg()
    result = create_evidence("jpeg").compute(EvidenceInputs(image=image, full=image))
    assert result.reliability < 0.5 and result.strength < 0.2


def test_jpeg_evidence_after_one_compression_has_nothing_to_compare():
    once = jpeg_cycle(photo(), 85)
    result = create_evidence("jpeg").compute(EvidenceInputs(image=once, full=once))
    # Saved once, the blocks fit double and single quantization alike (P(single) near 0.5): the
    # trace cannot be read, whatever the map shows.
    assert result.reliability < 0.2 and result.strength < 0.2
    assert "once only" in result.reason


def test_paper_mode_is_the_papers_pipeline(contract_models, splice):
    fused = Localizer(contract_models, providers=["CPUExecutionProvider"])
    paper = fused.with_fusion("paper")
    forged = splice[0]
    by_paper, by_evidence = paper.localize(forged), fused.localize(forged)
    assert by_paper.fusion == "paper" and not by_paper.evidence
    np.testing.assert_array_equal(by_paper.prior, by_paper.activation)  # exact: the paper's prior IS A
    assert by_paper.probability == by_paper.model_probability  # exact: the same float, passed through
    # The same networks ran in both modes: the activation and the models' probability agree. Both
    # come from the same onnxruntime sessions on the same input; the tolerance allows a few float32
    # roundings of values in [0, 1] (8 * eps32 ~ 1e-6) should a kernel's reduction order vary.
    np.testing.assert_allclose(by_evidence.activation, by_paper.activation, rtol=0, atol=8 * EPS32)
    assert by_evidence.model_probability == pytest.approx(by_paper.probability, abs=8 * EPS32)
    assert list(by_evidence.evidence) == ["activation", "jpeg", "jpeg_grid", "copy_move", "noise", "ela"]


def test_evidence_mode_reports_each_evidence_in_the_json(contract_models, splice):
    result = Localizer(contract_models, providers=["CPUExecutionProvider"]).localize(splice[0])
    summary = json.loads(json.dumps(result.summary()))
    assert summary["fusion"] == "evidence"
    for name, entry in summary["evidence"].items():
        assert 0.0 <= entry["reliability"] <= 1.0 and 0.0 <= entry["share"] <= 1.0 and entry["reason"]
    # summary() rounds each share to 4 decimals: n shares summing to 1 sum to within n * 0.5e-4 of it
    rounding = len(summary["evidence"]) * 0.5e-4 + SCALAR_TOL
    assert sum(e["share"] for e in summary["evidence"].values()) == pytest.approx(1.0, abs=rounding)
    assert result.verdict_band == Localizer(contract_models).fusion_settings.verdict_band
    assert result.prior.shape == result.working_size and result.prior.dtype == np.float32


def test_unknown_fusion_lists_the_modes(contract_models):
    with pytest.raises(UnknownNameError, match="evidence, paper"):
        Localizer(contract_models, fusion="bayes")


def test_the_study_scores_the_runtime_fusion_and_the_rule_on_cached_records():
    from studies.fusion_study import rule_summary, score_setting, score_singles, singles_table

    truth = np.zeros((40, 60), bool)
    truth[10:22, 20:32] = True
    regions = np.stack([truth, ~truth])
    record = {"tampered": np.bool_(True), "truth": truth, "model_probability": np.float32(0.5),
              "activation": square(left=40), "ev_copy_move": square(), "rel_copy_move": np.float32(1.0),
              "str_copy_move": np.float32(1.0), "regions": np.packbits(regions, axis=None),
              "regions_shape": np.array(regions.shape, np.int32)}
    evidence = ["activation", "copy_move"]
    fused = score_setting([record], FusionSettings(), evidence)
    assert fused["f1"] == pytest.approx(1.0, abs=SCALAR_TOL) and fused["n"] == 1  # the sure copy took the prior over
    singles = score_singles([record], evidence)
    assert singles["copy_move"]["f1"] == pytest.approx(1.0, abs=SCALAR_TOL) and singles["activation"]["f1"] == 0.0
    summary = rule_summary({"a": fused}, {"a": singles})
    assert summary == {"worst_shortfall": 0.0, "mean_f1": 1.0, "mean_auc": 1.0}
    table = singles_table({"a": fused}, {"a": singles}).splitlines()
    assert table[0] == "| map | a |" and table[2] == "| fused | 1.000 / 1.000 |"
    assert table[3:] == ["| paper | 0.468 / 0.000 |", "| activation | 0.468 / 0.000 |", "| copy_move | 1.000 / 1.000 |"]


def test_the_eleventh_rule_reads_the_worst_drop_against_the_default():
    from studies.fusion_study import versus_default

    default = {"a": {"f1": 0.5, "auc": 0.9}, "b": {"f1": 0.2, "auc": 0.6}}
    candidate = {"a": {"f1": 0.52, "auc": 0.87}, "b": {"f1": 0.3, "auc": 0.61}}
    summary = versus_default(candidate, default)
    assert summary["worst_drop_vs_default"] == pytest.approx(-0.03, abs=SCALAR_TOL)  # a's AUC
    assert summary["per_set"]["b"] == {"candidate": (0.3, 0.61), "default": (0.2, 0.6)}
    assert summary["default_mean_f1"] == pytest.approx(0.35, abs=SCALAR_TOL)
