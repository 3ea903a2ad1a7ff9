"""Export side of WCBnet: model structure, tf2onnx conversion, parity, runtime loading, Grad-CAM."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

from export.convert import ConversionError, check_parity, export_variant  # noqa: E402
from export.train import image_metrics, roc_auc  # noqa: E402
from export.wcbnet import build_backbone, build_wcbnet, build_wcbnet_multi  # noqa: E402
from wsloc_runtime.cam import grad_cam  # noqa: E402
from wsloc_runtime.config import WCBnetConfig  # noqa: E402
from wsloc_runtime.errors import ModelContractError  # noqa: E402
from wsloc_runtime.wcbnet import WCBnetModel  # noqa: E402

TINY = dict(backbone="tinyresnet", input_size=(64, 64), feature_dim=8, tiny_widths=(4, 8, 8, 16, 16))


@pytest.mark.parametrize("backbone", ["tinyresnet", "mobilenetv3small", "resnet50"])
def test_backbones_have_five_blocks_at_strides_2_to_32(backbone):
    model = build_backbone(backbone, (64, 96), tiny_widths=(4, 8, 8, 16, 16))
    shapes = [tuple(block.shape[1:3]) for block in model.outputs]
    assert shapes == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]


def test_joint_variants_share_the_backbone_and_give_fc_at_their_block_size():
    joint, parts = build_wcbnet_multi((2, 3, 4), **TINY)
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
    logits = joint(x, training=False)
    assert len(logits) == 3 and all(tuple(z.shape) == (2, 1) for z in logits)
    for scale, part in parts.items():
        fc = part.encoder(x, training=False).numpy()
        assert fc.shape == (2, 64 >> scale, 64 >> scale, 8)
        assert fc.min() >= 0.0  # ReLU'd projections with softmax weights: Grad-CAM expects non-negative F_c
        np.testing.assert_allclose(part.model(x, training=False).numpy(), logits[[2, 3, 4].index(scale)].numpy(), atol=1e-5)
    backbone_weights = {id(v) for v in parts[2].model.trainable_variables} & {id(v) for v in parts[4].model.trainable_variables}
    assert backbone_weights, "variants must share backbone variables in a joint model"


@pytest.mark.parametrize("kwargs", [dict(cbam_scale=5), dict(cbam_scale=3, input_size=(70, 64)),
                                    dict(cbam_scale=3, backbone="vgg")])
def test_build_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        build_wcbnet(**{**TINY, **kwargs})


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A random-weight tiny WCBnet_3 converted to ONNX."""
    tf.keras.utils.set_random_seed(3)
    part = build_wcbnet(3, **TINY)
    # Non-trivial BN statistics and head weights, so the parity check is not comparing zeros.
    for variable in part.model.non_trainable_variables:
        if "moving_variance" in variable.path:
            variable.assign(np.random.default_rng(0).uniform(0.5, 2.0, variable.shape).astype(np.float32))
    config = WCBnetConfig(cbam_scale=3, input_size=(64, 64), backbone="tinyresnet", feature_dim=8,
                          model_version="test", training_data="random weights")
    path = tmp_path_factory.mktemp("onnx") / "wcbnet3.onnx"
    check = np.random.default_rng(7).normal(0, 1, (1, 64, 64, 3)).astype(np.float32)
    report = export_variant(part.encoder, part.head, config, path, [check])
    return part, config, path, report, check


def test_export_parity_and_contract(tiny_export):
    part, config, path, report, check = tiny_export
    assert set(report["parity"]) == {"logit", "features", "gradient"}
    assert max(report["parity"].values()) < 1e-4
    model = WCBnetModel(path, providers=["CPUExecutionProvider"])
    assert model.config == config
    out = model.forward(check)
    assert out.features.shape == (8, 8, 8) and out.gradient.shape == (8, 8, 8)
    expected = float(part.model(check, training=False).numpy()[0, 0])
    assert abs(out.logit - expected) < 1e-4 * max(1.0, abs(expected))
    assert 0.0 <= out.probability <= 1.0


def test_grad_cam_from_onnx_outputs_equals_tensorflow_gradient_tape(tiny_export):
    part, _, path, _, _ = tiny_export
    x = np.random.default_rng(11).normal(0, 1, (1, 64, 64, 3)).astype(np.float32)
    out = WCBnetModel(path, providers=["CPUExecutionProvider"]).forward(x)
    # Reference: Grad-CAM with an eager GradientTape on F_c (the ONNX graph has it baked in).
    features = part.encoder(x, training=False)
    with tf.GradientTape() as tape:
        tape.watch(features)
        logit = part.head(features, training=False)
    gradient = tape.gradient(logit, features).numpy()[0]
    assert np.abs(gradient).max() > 0
    reference = np.maximum((features.numpy()[0] * gradient.mean(axis=(0, 1))).sum(-1), 0.0)
    np.testing.assert_allclose(grad_cam(out.features, out.gradient), reference, rtol=1e-4, atol=1e-6)


def test_runtime_rejects_file_without_metadata(tiny_export, tmp_path):
    import onnx

    _, _, path, _, _ = tiny_export
    model = onnx.load(str(path))
    del model.metadata_props[:]
    stripped = tmp_path / "stripped.onnx"
    onnx.save(model, str(stripped))
    with pytest.raises(ModelContractError):
        WCBnetModel(stripped, providers=["CPUExecutionProvider"])


def test_check_parity_raises_on_disagreement():
    reference = {"logit": np.array([[2.0]])}
    check_parity(reference, {"logit": np.array([[2.0 + 1e-6]])})
    with pytest.raises(ConversionError):
        check_parity(reference, {"logit": np.array([[2.01]])})
    with pytest.raises(ConversionError):
        check_parity(reference, {"logit": np.array([2.0])})
    with pytest.raises(ConversionError):
        check_parity(reference, {})


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(5)
    labels = rng.random(60) < 0.4
    scores = np.round(rng.random(60), 1)  # many ties
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p, n in itertools.product(scores[labels], scores[~labels])]
    assert roc_auc(labels, scores) == pytest.approx(np.mean(pairs))
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_image_metrics_counts():
    metrics = image_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.6, 0.1]))
    assert metrics["accuracy"] == 0.5 and metrics["precision"] == 0.5 and metrics["recall"] == 0.5
    assert metrics["f1"] == pytest.approx(0.5)
