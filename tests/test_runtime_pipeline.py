"""The whole method end to end on small contract models, with no TensorFlow or torch."""

import json

import numpy as np
import onnx
import pytest

from tests.conftest import make_splice
from wsloc_runtime import ModelContractError, ModelNotFoundError, UnknownNameError
from wsloc_runtime.config import METADATA_KEY, WCBnetConfig
from wsloc_runtime.metrics import f1_iou_at, roc_auc
from wsloc_runtime.pipeline import Localizer, working_size
from wsloc_runtime.sel import resized_error_levels, scale_error_levels, signed_error_levels
from wsloc_runtime.wcbnet import WCBnetModel
from tests.contract_models import build_contract_model

EPS32 = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def localizer(contract_models):
    return Localizer(contract_models, providers=["CPUExecutionProvider"])


# With the contract models' near-perfect activation the paper's pipeline alone marks the disc
# (mask F1 0.84); all the evidence costs precision on this synthetic photo (0.43: the noise trace
# reads its flat synthetic texture as odd grain and the activation yields to it; the host was
# re-saved at its own quality, so the jpeg trace is unreadable, reliability 0.19, and since its
# per-coefficient reading no longer takes over a fifth of the prior, 0.59 before), while the region
# chosen stays the disc in both. The fusion's setting is chosen on real photos (docs/fusion.md).
@pytest.mark.parametrize("fusion, min_mask_f1", [("paper", 0.7), ("evidence", 0.4)])
def test_localizes_a_region_with_a_different_compression_history(localizer, splice, fusion, min_mask_f1):
    forged, truth = splice
    result = localizer.with_fusion(fusion).localize(forged)
    assert result.working_size == forged.shape[:2]
    assert set(result.variant_maps) == {"wcbnet2", "wcbnet3", "wcbnet4"}
    assert roc_auc(result.activation, truth) > 0.95
    chosen_f1, _ = f1_iou_at(result.region_mask.astype(float), truth)
    assert chosen_f1 > 0.9, "the pasted disc should be the region chosen"
    mask_f1, _ = f1_iou_at(result.posterior_mask.astype(float), truth)
    assert mask_f1 > min_mask_f1
    assert np.array_equal(result.posterior_mask, result.enhanced >= 0.5)
    # The mask to show is the method's unless the verdict is "likely authentic".
    assert np.array_equal(result.mask, result.posterior_mask) or result.is_manipulated is False
    for array in [result.activation, result.enhanced, *result.variant_maps.values()]:
        assert array.dtype == np.float32 and 0.0 <= array.min() and array.max() <= 1.0


def test_result_summary_is_json_and_complete(localizer, splice):
    result = localizer.localize(splice[0])
    summary = json.loads(json.dumps(result.summary()))
    for key in ("probability", "is_manipulated", "variant_probabilities", "region_score", "timings", "providers"):
        assert key in summary
    assert summary["providers"]["wcbnet2"] == ["CPUExecutionProvider"]
    assert {"decode", "sel", "wcbnet2", "segmenter", "similarity", "enhancement"} <= set(summary["timings"])
    # The contract model's logit is 4 * mean|SEL| - 1: check the probability by hand for one variant.
    model = localizer.models[0]
    tensor = model.prepare(resized_error_levels(splice[0], [model.config.input_size])[0])
    pooled = np.abs(tensor).mean()  # average pooling preserves the mean
    weights_mean = np.linspace(0.5, 1.5, 4).mean()
    z = 4.0 * pooled * weights_mean - 1.0
    # onnxruntime's float32 pooling and numpy's float32 mean each sum n terms |x| <= |x|_max: within
    # n * eps32 * |x|_max of the exact sum, so each mean within eps32 * |x|_max; z scales that by
    # 4 * max(weights) = 6 and the sigmoid's slope is <= 1/4
    n_sum_error = 2 * np.finfo(np.float32).eps * float(np.abs(tensor).max())
    tolerance = float(0.25 * 4.0 * 1.5 * n_sum_error + 8 * np.finfo(np.float32).eps)
    assert result.variant_probabilities["wcbnet2"] == pytest.approx(1 / (1 + np.exp(-z)), abs=tolerance)


def test_large_photo_is_worked_on_at_the_working_size(localizer, splice):
    big = np.kron(splice[0], np.ones((4, 4, 1), np.uint8))  # 1600x2400
    result = localizer.localize(big)
    assert result.original_size == (1600, 2400)
    assert result.working_size == working_size(1600, 2400, 1024) == (683, 1024)
    assert result.full_size(result.mask).shape == (1600, 2400)
    assert result.full_size(result.enhanced).shape == (1600, 2400)


def test_progress_callback_reaches_done(localizer, splice):
    seen = []
    localizer.localize(splice[0], progress=lambda fraction, stage: seen.append((fraction, stage)))
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, "done")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


def test_classify_equals_localize_probability(localizer, splice):
    # exact: with the default fusion ("evidence") classify returns localize(image).probability, the
    # same deterministic computation on the same photo with the same sessions
    assert localizer.fusion == "evidence"
    assert localizer.classify(splice[0]) == localizer.localize(splice[0]).probability


def test_missing_models_say_where_they_looked(tmp_path, monkeypatch):
    import wsloc_runtime.models as models

    monkeypatch.setattr(models, "BUNDLED_MODELS", tmp_path / "bundled")
    monkeypatch.setenv("WSLOC_MODELS", str(tmp_path / "env_dir"))
    monkeypatch.delenv("WSLOC_HF_REPO", raising=False)
    with pytest.raises(ModelNotFoundError) as caught:
        Localizer()
    message = str(caught.value)
    for expected in ("wcbnet2.onnx", "env_dir", "bundled", "WSLOC_HF_REPO", "export.convert"):
        assert expected in message


def test_an_explicit_directory_without_the_model_is_an_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="given path .*wcbnet2.onnx.*export.convert"):
        Localizer(models_dir=tmp_path)


def test_unknown_segmenter_lists_the_valid_names(contract_models):
    with pytest.raises(UnknownNameError, match="choose one of: .*graph"):
        Localizer(contract_models, segmenter="no-such-segmenter")


def test_model_without_metadata_is_refused(tmp_path):
    path = build_contract_model(tmp_path / "wcbnet2.onnx")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    with pytest.raises(ModelContractError, match=METADATA_KEY):
        WCBnetModel(path)


def test_model_with_wrong_input_shape_is_refused(tmp_path):
    path = build_contract_model(tmp_path / "wcbnet2.onnx", input_size=(64, 64))
    model = onnx.load(str(path))
    config = WCBnetConfig.from_json(model.metadata_props[0].value)
    wrong = WCBnetConfig(**{**config.__dict__, "input_size": (96, 96)})
    model.metadata_props[0].value = wrong.to_json()
    onnx.save(model, str(path))
    with pytest.raises(ModelContractError, match="input shape"):
        WCBnetModel(path)


def test_config_round_trips_and_rejects_nonsense():
    config = WCBnetConfig(cbam_scale=3, input_size=(256, 256), sel_scaling="std")
    assert WCBnetConfig.from_json(config.to_json()) == config
    with pytest.raises(ModelContractError):
        WCBnetConfig(cbam_scale=9)
    with pytest.raises(ModelContractError):
        WCBnetConfig.from_json('{"cbam_scale": 2, "contract_version": 99}')


def test_sel_is_signed_and_strips_match_whole_image(monkeypatch, splice):
    import wsloc_runtime.sel as sel_module

    rgb = splice[0]
    sel = signed_error_levels(rgb, 90)
    assert sel.min() < 0 < sel.max() and np.abs(sel).max() <= 255
    whole = resized_error_levels(rgb, [(64, 96), (200, 300)], 90)
    monkeypatch.setattr(sel_module, "STRIP_THRESHOLD_PIXELS", 1000)
    monkeypatch.setattr(sel_module, "STRIP_ROWS", 64)
    strips = sel_module.resized_error_levels(rgb, [(64, 96), (200, 300)], 90)
    # as in tests/test_large_images.py: the same area means in another summation order; a mean of
    # <= rows x cols float32 terms <= max|SEL| in two passes is within (rows + cols) * eps32 * max|SEL|
    for a, b in zip(whole, strips):
        rows, cols = -(-rgb.shape[0] // a.shape[0]) + 1, -(-rgb.shape[1] // a.shape[1]) + 1
        tolerance = (rows + cols) * np.finfo(np.float32).eps * float(np.abs(sel).max())
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance)


def test_sel_scaling_modes():
    sel = np.array([-64.0, -8.0, 0.0, 8.0, 64.0], np.float32)
    # exact: powers of two divided by 16 and clipped at 2
    np.testing.assert_array_equal(scale_error_levels(sel, "fixed", 16.0, 2.0), [-2, -0.5, 0, 0.5, 2])
    scaled = scale_error_levels(sel, "std", 1.0, 100.0)
    # "std" divides by (std + 1e-3) * scale, so the result's std is s / (s + 1e-3) (s: the exact std).
    # float32: the code's std and the check's std of n = 5 terms (mean, squares, sum, sqrt) are each
    # within (n + 3) * eps32 relative, and the division adds eps32 / 2
    s = float(np.std(sel.astype(np.float64)))
    assert scaled.std() == pytest.approx(s / (s + 1e-3), rel=(2 * (sel.size + 3) + 1) * EPS32)
    with pytest.raises(ValueError, match="fixed"):
        scale_error_levels(sel, "bogus", 1.0, 1.0)


def test_with_segmenter_shares_sessions(localizer, splice):
    from wsloc_runtime.segmenters.graph import GraphSegmenter

    coarse = localizer.with_segmenter(GraphSegmenter(scales=(1500.0,)))
    assert coarse.models is localizer.models and coarse.segmenter is not localizer.segmenter
    assert localizer.segmenter.scales == (200.0, 800.0)
    assert len(coarse.localize(splice[0]).regions) < len(localizer.localize(splice[0]).regions)


def test_models_sharing_an_input_size_keep_their_own_scaling(tmp_path, splice):
    fixed = build_contract_model(tmp_path / "wcbnet2.onnx", cbam_scale=2, sel_scaling="fixed")
    per_image = build_contract_model(tmp_path / "wcbnet3.onnx", cbam_scale=3, sel_scaling="std")
    localizer = Localizer(model_paths=[fixed, per_image], providers=["CPUExecutionProvider"])
    result = localizer.localize(splice[0])
    for model in localizer.models:
        own_input = model.prepare(resized_error_levels(splice[0], [model.config.input_size])[0])
        # the same session on the same input: a probability <= 1 within a few float32 ulps (8 * eps32)
        assert result.variant_probabilities[model.name] == pytest.approx(model.forward(own_input).probability,
                                                                          abs=8 * float(np.finfo(np.float32).eps))
    assert result.variant_probabilities["wcbnet2"] != pytest.approx(result.variant_probabilities["wcbnet3"], abs=1e-3)


def test_test_time_views_map_each_cam_back_to_the_input_orientation(contract_models):
    """The contract model is flip-equivariant (its CAM is pooled |SEL|, its logit a global mean),
    so every view, flipped back, must reproduce the plain CAM and logit. A view left unflipped,
    or flipped along the wrong axis, would mirror the bright patch and fail."""
    from wsloc_runtime.cam import grad_cam
    from wsloc_runtime.views import TEST_TIME_VIEWS

    model = WCBnetModel(contract_models / "wcbnet2.onnx", ["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    tensor = rng.normal(0.0, 0.1, (1, *model.config.input_size, 3)).astype(np.float32)
    tensor[:, 4:20, 8:24] += 2.0  # an off-centre patch: a mirrored CAM would not match
    plain = model.forward(tensor)
    plain_cam = grad_cam(plain.features, plain.gradient)
    assert not np.allclose(plain_cam, plain_cam[:, ::-1]) and not np.allclose(plain_cam, plain_cam[::-1])
    # A flipped view sums the same non-negative |SEL| values in another order: float32 sums of n
    # positive terms are within (n - 1) * eps32 relative of the exact sum. F_c (channel mean of 3,
    # then a pool x pool average) is within (3 + pool^2) * eps32 relative; the CAM (F_c times a
    # constant gradient, float64) keeps that, and the views' float32 mean adds len(views) * eps32.
    # The logit is a * mean(F_c) + b: mean(F_c) over n = h * w * D positive values adds n * eps32
    # relative, and the logit's own float32 Mul/Add round by eps32 of |z| each.
    pool = model.config.input_size[0] // plain.features.shape[0]
    feature_rel = (3 + pool * pool) * EPS32
    logit_tol = (feature_rel + plain.features.size * EPS32) * abs(plain.logit + 1.0) + 2 * EPS32 * abs(plain.logit)
    for name, views in TEST_TIME_VIEWS.items():
        averaged = model.forward_views(tensor, views)
        cam_rel = feature_rel + len(views) * EPS32
        np.testing.assert_allclose(averaged.cam, plain_cam, rtol=cam_rel, atol=0, err_msg=name)
        assert averaged.logit == pytest.approx(plain.logit, abs=logit_tol) and averaged.cam.dtype == np.float32


def test_views_average_logits_and_back_flipped_cams(contract_models):
    """The averaged answer is the mean of the views' logits and of their CAMs flipped back,
    checked against the two passes done by hand."""
    from wsloc_runtime.cam import grad_cam

    model = WCBnetModel(contract_models / "wcbnet3.onnx", ["CPUExecutionProvider"])
    tensor = np.zeros((1, *model.config.input_size, 3), np.float32)
    tensor[:, 8:24, 0:16] = 1.0
    mirrored = np.ascontiguousarray(tensor[:, :, ::-1])
    both = model.forward_views(tensor, ((), (2,)))
    first, second = model.forward(tensor), model.forward(mirrored)
    # exact: forward_views runs the same session on the same two arrays (the mirror made the same
    # way) and averages as done here: the float64 mean of two floats is (a + b) / 2, and the float32
    # mean of two CAMs is their float32 sum halved (exactly)
    assert both.logit == (first.logit + second.logit) / 2
    expected = (grad_cam(first.features, first.gradient) + grad_cam(second.features, second.gradient)[:, ::-1]) / 2
    np.testing.assert_array_equal(both.cam, expected)


def test_unknown_test_time_views_are_refused_with_the_valid_names(contract_models):
    with pytest.raises(UnknownNameError, match="none, hflip, flips"):
        Localizer(contract_models, providers=["CPUExecutionProvider"], test_time_views="rotate")


def test_single_view_and_mirror_views_agree_on_an_equivariant_model(contract_models, splice):
    one = Localizer(contract_models, providers=["CPUExecutionProvider"], test_time_views="none")
    two = Localizer(contract_models, providers=["CPUExecutionProvider"], test_time_views="hflip")
    plain, mirrored = one.localize(splice[0]), two.localize(splice[0])
    assert plain.summary()["test_time_views"] == "none" and mirrored.summary()["test_time_views"] == "hflip"
    # The mirrored view sums the same positive values in another order (see the test above): a
    # variant's F_c is within (3 + pool^2) * eps32 relative, mean(F_c) over n = h * w * D values adds
    # n * eps32, so its logit z = 4 mean(F_c) - 1 moves by <= that times |z + 1|, plus eps32 |z| for
    # the view mean and the logit's roundings; its probability by a quarter of that (the sigmoid's
    # slope), and the fused probability no more (its slope in the models' probability is <= 1).
    probability_tol, cam_rel = 8 * EPS32, 0.0
    for model in two.models:
        features = model.forward(np.zeros((1, *model.config.input_size, 3), np.float32)).features
        feature_rel = (3 + (model.config.input_size[0] // features.shape[0]) ** 2) * EPS32
        p = plain.variant_probabilities[model.name]
        z = float(np.log(p / (1 - p)))
        probability_tol += 0.25 * ((feature_rel + features.size * EPS32) * abs(z + 1) + 4 * EPS32 * abs(z))
        cam_rel = max(cam_rel, feature_rel + 2 * EPS32)  # and the two views' float32 mean
    assert mirrored.probability == pytest.approx(plain.probability, abs=probability_tol)
    # Each map: its CAM within cam_rel; normalizing by its own (as perturbed) peak doubles that, the
    # bilinear upsampling (a convex combination) keeps it, plus a few float32 roundings: m_rel. The
    # geometric mean of the maps + eps is within m_rel relative (it averages log errors), and the
    # min-max rescale (g - lo) / (hi - lo) within 2 * m_rel * (hi + lo) / (hi - lo) absolute.
    m_rel = 2 * cam_rel + 4 * EPS32
    fused = np.exp(np.mean([np.log(m.astype(np.float64) + two.fusion_epsilon) for m in plain.variant_maps.values()], 0))
    lo, hi = float(fused.min()), float(fused.max())
    activation_tol = 2 * m_rel * (hi + lo) / (hi - lo) + 4 * EPS32
    np.testing.assert_allclose(mirrored.activation, plain.activation, rtol=0, atol=activation_tol)


def test_verdict_reads_the_models_band(contract_models):
    """The uncertain band of the models' config turns a probability into three verdicts (the paper's
    pipeline reports the models' own probability, so it reads their band)."""
    import dataclasses

    from wsloc_runtime.pipeline import describe_band

    from wsloc_runtime.readability import Readability

    localizer = Localizer(models_dir=contract_models, fusion="paper")
    # The shipped settings give the paper's mode its own band, chosen on its scores (docs/verdict.md) ...
    assert localizer.result_band == localizer.fusion_settings.paper_verdict_band == (0.0, 0.897)
    # ... without one, the models' own band applies, as here.
    localizer.fusion_settings = dataclasses.replace(localizer.fusion_settings, paper_verdict_band=None,
                                                    paper_verdict_margin=0.0)
    result = localizer.localize(make_splice()[0])
    assert result.verdict_band == localizer.verdict_band == (0.5, 0.5)  # contract models carry no band
    assert not result.readable  # a never-compressed splice: "cannot tell" (tests/test_verdict.py) ...
    result = dataclasses.replace(result, readability=Readability({"pasted": 1.0}))  # ... here, the band
    p = result.probability
    expectations = {(p + 0.1, p + 0.2): "likely authentic", (p - 0.1, p + 0.1): "uncertain",
                    (p - 0.2, p - 0.1): "likely manipulated", (p, p): "likely manipulated"}
    for band, verdict in expectations.items():
        assert dataclasses.replace(result, verdict_band=band).verdict == verdict
    assert describe_band((0.3, 0.7)) == "uncertain between 0.30 and 0.70"
    assert describe_band((0.5, 0.5)) == "threshold 0.50"
    assert describe_band((0.1767, 1.0)) == "uncertain from 0.18 up"  # never "likely manipulated"
    assert describe_band((0.0, 0.8)) == "uncertain below 0.80"
    for probability in (0.99, 1.0):
        assert dataclasses.replace(result, probability=probability, verdict_band=(0.1767, 1.0)).verdict == "uncertain"
    summary = dataclasses.replace(result, verdict_band=(p - 0.1, p + 0.1)).summary()
    assert summary["verdict"] == "uncertain" and summary["verdict_band"] == [round(p - 0.1, 6), round(p + 0.1, 6)]
