"""Export side of WCBnet: model structure, tf2onnx conversion, parity, runtime loading, Grad-CAM.

TensorFlow work runs in ONE subprocess (module fixture): with TensorFlow loaded, a later
``import triton`` (pulled in by torch's exporters in other test modules) segfaults the
whole pytest process. The pytest process itself only runs onnxruntime and numpy.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from export.convert import PARITY_ATOL, ConversionError, check_parity
from training.train import image_metrics, roc_auc
from wsloc_runtime.cam import grad_cam
from wsloc_runtime.config import WCBnetConfig
from wsloc_runtime.errors import ModelContractError
from wsloc_runtime.wcbnet import WCBnetModel

REPO_ROOT = Path(__file__).resolve().parent.parent
EPS32 = float(np.finfo(np.float32).eps)
# ONNX against TensorFlow is held to the export's parity contract (export/convert.py PARITY_ATOL:
# |ort - tf| <= PARITY_ATOL * max(1, max|tf|) per output); outputs far below 1 (the gradients, the
# CAMs) are held to PARITY_ATOL of their own largest value, so a difference of their size shows.

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    import tensorflow as tf
    from export.convert import export_variant
    from export.wcbnet import build_backbone, build_wcbnet, build_wcbnet_multi
    from wsloc_runtime.config import WCBnetConfig

    out = Path(sys.argv[1])
    tiny = dict(backbone="tinyresnet", input_size=(64, 64), feature_dim=8, tiny_widths=(4, 8, 8, 16, 16))
    report = {"block_shapes": {}, "rejected": {}}
    for backbone in ("tinyresnet", "mobilenetv3small", "mobilenetv3large", "resnet50", "efficientnetlite0"):
        model = build_backbone(backbone, (64, 96), tiny_widths=(4, 8, 8, 16, 16))
        report["block_shapes"][backbone] = [list(b.shape[1:3]) for b in model.outputs]

    joint, parts = build_wcbnet_multi((2, 3, 4), **tiny)
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
    logits = [z.numpy() for z in joint(x, training=False)]
    report["joint"] = {}
    for i, scale in enumerate((2, 3, 4)):
        fc = parts[scale].encoder(x, training=False).numpy()
        single = parts[scale].model(x, training=False).numpy()
        report["joint"][scale] = {"fc_shape": list(fc.shape), "fc_min": float(fc.min()),
                                  "logit_max": float(np.abs(logits[i]).max()),
                                  "logit_shape": list(logits[i].shape),
                                  "variant_vs_joint": float(np.abs(single - logits[i]).max())}
    shared = {id(v) for v in parts[2].model.trainable_variables} & {id(v) for v in parts[4].model.trainable_variables}
    report["shared_variables"] = len(shared)

    for name, kwargs in {"scale5": dict(cbam_scale=5), "size70": dict(cbam_scale=3, input_size=(70, 64)),
                         "vgg": dict(cbam_scale=3, backbone="vgg")}.items():
        try:
            build_wcbnet(**{**tiny, **kwargs})
            report["rejected"][name] = False
        except ValueError:
            report["rejected"][name] = True

    tf.keras.utils.set_random_seed(3)
    part = build_wcbnet(3, **tiny)
    # Non-trivial BN statistics, so the parity check does not compare near-zeros.
    for variable in part.model.non_trainable_variables:
        if "moving_variance" in variable.path:
            variable.assign(np.random.default_rng(0).uniform(0.5, 2.0, variable.shape).astype(np.float32))
    config = WCBnetConfig(cbam_scale=3, input_size=(64, 64), backbone="tinyresnet", feature_dim=8,
                          model_version="test", training_data="random weights")
    check = np.random.default_rng(7).normal(0, 1, (1, 64, 64, 3)).astype(np.float32)
    report["export"] = export_variant(part.encoder, part.head, config, out / "wcbnet3.onnx", [check])
    report["config"] = config.to_json()
    # The multiple-instance head (log-sum-exp pooling of local logits) on five input channels.
    lse = build_wcbnet(2, **tiny, head="lse", input_channels=5)
    lse_config = WCBnetConfig(cbam_scale=2, input_size=(64, 64), backbone="tinyresnet", feature_dim=8,
                              input_features=("sel", "jpeg_dq", "jpeg_lattice"))
    report["export_lse"] = export_variant(lse.encoder, lse.head, lse_config, out / "wcbnet2_lse.onnx")
    lse_probe = np.random.default_rng(13).normal(0, 1, (1, 64, 64, 5)).astype(np.float32)
    lse_features = lse.encoder(lse_probe, training=False).numpy()[0]
    dense = lse.head.get_layer("cbam2_logit")
    weights, bias = (v.numpy() for v in dense.weights)
    report["lse_local_logits"] = (lse_features @ weights[:, 0]).tolist()
    report["lse_weights"] = weights[:, 0].tolist()
    np.save(out / "lse_probe.npy", lse_probe)

    # Reference Grad-CAM with an eager GradientTape on F_c, independent of the exported graph.
    probe = np.random.default_rng(11).normal(0, 1, (1, 64, 64, 3)).astype(np.float32)
    features = part.encoder(probe, training=False)
    with tf.GradientTape() as tape:
        tape.watch(features)
        logit = part.head(features, training=False)
    gradient = tape.gradient(logit, features).numpy()[0]
    cam = np.maximum((features.numpy()[0] * gradient.mean(axis=(0, 1))).sum(-1), 0.0)
    np.savez(out / "reference.npz", check=check, check_logit=part.model(check, training=False).numpy(),
             probe=probe, probe_gradient=gradient, probe_cam=cam)
    (out / "report.json").write_text(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def tf_run(tmp_path_factory):
    """Builds and exports tiny WCBnets in a TensorFlow subprocess; returns (report, folder)."""
    for module in ("tensorflow", "tf2onnx", "onnx"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (export-only dependency)")
    out = tmp_path_factory.mktemp("wcbnet_export")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"TensorFlow export subprocess failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads((out / "report.json").read_text()), out


def test_backbones_have_five_blocks_at_strides_2_to_32(tf_run):
    report, _ = tf_run
    for backbone, shapes in report["block_shapes"].items():
        assert shapes == [[64 // s, 96 // s] for s in (2, 4, 8, 16, 32)], backbone


def test_joint_variants_share_the_backbone_and_give_fc_at_their_block_size(tf_run):
    report, _ = tf_run
    for scale, entry in report["joint"].items():
        assert entry["fc_shape"] == [2, 64 >> int(scale), 64 >> int(scale), 8]
        assert entry["logit_shape"] == [2, 1]
        assert entry["fc_min"] >= 0.0  # ReLU'd projections with softmax weights: Grad-CAM expects F_c >= 0
        # the same layers (shared variables) on the same batch in two Keras graphs: at most a few
        # float32 roundings of the logit should the two graphs' kernels sum in another order
        assert entry["variant_vs_joint"] <= 8 * EPS32 * max(1.0, entry["logit_max"])
    assert report["shared_variables"] > 0, "variants must share backbone variables in a joint model"


def test_build_rejects_bad_arguments(tf_run):
    report, _ = tf_run
    assert report["rejected"] == {"scale5": True, "size70": True, "vgg": True}


def test_export_parity_and_contract(tf_run):
    report, out = tf_run
    parity = report["export"]["parity"]
    # export_variant already raised beyond the contract; these outputs are below 1 in size, so its
    # limit is PARITY_ATOL itself
    assert set(parity) == {"logit", "features", "gradient"} and max(parity.values()) < PARITY_ATOL
    model = WCBnetModel(out / "wcbnet3.onnx", providers=["CPUExecutionProvider"])
    assert model.config == WCBnetConfig.from_json(report["config"])
    reference = np.load(out / "reference.npz")
    result = model.forward(reference["check"])
    assert result.features.shape == (8, 8, 8) and result.gradient.shape == (8, 8, 8)
    expected = float(reference["check_logit"][0, 0])
    assert abs(result.logit - expected) <= PARITY_ATOL * max(1.0, abs(expected))  # the contract
    assert 0.0 <= result.probability <= 1.0


def test_grad_cam_from_onnx_outputs_equals_tensorflow_gradient_tape(tf_run):
    _, out = tf_run
    reference = np.load(out / "reference.npz")
    result = WCBnetModel(out / "wcbnet3.onnx", providers=["CPUExecutionProvider"]).forward(reference["probe"])
    assert np.abs(reference["probe_gradient"]).max() > 0
    gradient_tol = PARITY_ATOL * float(np.abs(reference["probe_gradient"]).max())
    np.testing.assert_allclose(result.gradient, reference["probe_gradient"], rtol=0, atol=gradient_tol)
    # cam = ReLU(sum_k F_k alpha_k) (ReLU is 1-Lipschitz): F within PARITY_ATOL * max(1, max|F|) (the
    # contract), alpha (a mean of the gradient) within gradient_tol, so |d cam| <= that * sum|alpha| +
    # gradient_tol * sum|F|; the reference's float32 sum of D terms adds D * eps32 * sum|F alpha|.
    features, alpha = result.features.astype(np.float64), result.gradient.mean(axis=(0, 1), dtype=np.float64)
    feature_tol = PARITY_ATOL * max(1.0, float(np.abs(features).max()))
    bound = (feature_tol * np.abs(alpha).sum() + gradient_tol * np.abs(features).sum(-1)
             + features.shape[-1] * EPS32 * (np.abs(features) @ np.abs(alpha)))
    np.testing.assert_array_less(np.abs(grad_cam(result.features, result.gradient) - reference["probe_cam"]), bound)


def test_lse_head_exports_and_its_grad_cam_is_the_map_of_local_logits(tf_run):
    report, out = tf_run
    assert max(report["export_lse"]["parity"].values()) < PARITY_ATOL  # outputs below 1: the contract's limit
    model = WCBnetModel(out / "wcbnet2_lse.onnx", providers=["CPUExecutionProvider"])
    assert model.config.input_channels == 5
    result = model.forward(np.load(out / "lse_probe.npy"))
    local = np.array(report["lse_local_logits"])
    # dz/dF_c = softmax weights x w, so alpha = w / (h w): Grad-CAM is ReLU of the local logits (no bias).
    # Bound: F (onnxruntime) within PARITY_ATOL * max|F| of TensorFlow's, times sum|w|; alpha * n is
    # w times the float32 softmax weights' sum (1 within n * eps32) read back through a float32
    # gradient (eps32); the reference dot product of D float32 terms adds D * eps32 * sum|F w|.
    features, w = result.features.astype(np.float64), np.array(report["lse_weights"])
    bound = (PARITY_ATOL * float(np.abs(features).max()) * np.abs(w).sum()
             + (local.size + 1 + features.shape[-1]) * EPS32 * (np.abs(features) @ np.abs(w)))
    np.testing.assert_array_less(np.abs(grad_cam(result.features, result.gradient) * local.size - np.maximum(local, 0)),
                                 bound)


def test_runtime_rejects_file_without_metadata(tf_run, tmp_path):
    import onnx

    _, out = tf_run
    model = onnx.load(str(out / "wcbnet3.onnx"))
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
    # both are one correctly rounded division of the same rational (sums of halves are exact in float64)
    assert roc_auc(labels, scores) == pytest.approx(np.mean(pairs), rel=float(np.finfo(np.float64).eps))
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_image_metrics_counts():
    metrics = image_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.6, 0.1]))
    assert metrics["accuracy"] == 0.5 and metrics["precision"] == 0.5 and metrics["recall"] == 0.5
    assert metrics["f1"] == pytest.approx(0.5)
