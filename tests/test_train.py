"""Training path: the trainer on a non-TensorFlow Keras backend (what a GPU machine without
TensorFlow runs), its wall-clock budget, the weights' portability to the TensorFlow
converter, and the source pack that carries the synthesizer's photos to such a machine.

Keras backends are chosen per process, and TensorFlow and torch segfault in one process
here, so every model runs in a subprocess; this process only compares numbers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from export.convert import PARITY_ATOL
from training.data import iterate_batches
from training.pack_sources import pack, unpack
from training.synth import synthesize
from tests.test_casia_set import make_labelled_folder
from tests.test_synth import _fake_kodak

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ["--backbone", "tinyresnet", "--input-size", "64", "--feature-dim", "8", "--batch", "8"]

PREDICT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from training.train import build_from_run
    run_dir = sys.argv[1]
    run = json.load(open(run_dir + "/run.json"))
    joint, _ = build_from_run(run)
    joint.load_weights(run_dir + "/best.weights.h5")
    x = np.random.default_rng(5).normal(size=(3, 64, 64, 3)).astype(np.float32)
    np.save(sys.argv[2], np.concatenate([np.asarray(z) for z in joint.predict_on_batch(x)], axis=1))
    """
)


def _fake_data_root(root: Path) -> Path:
    """Kodak-like lossless photos plus eight BSDS-like JPEGs with two human segmentations each."""
    import scipy.io
    from skimage import data

    _fake_kodak(root, count=24)
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    for i in range(8):
        photo = photos[i % len(photos)]
        crop = np.ascontiguousarray(photo[10 * i:10 * i + 120, :160])
        folder = ("train", "val", "test")[i % 3]
        (root / "bsds500" / "images" / folder).mkdir(parents=True, exist_ok=True)
        (root / "bsds500" / "groundTruth" / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "bsds500" / "images" / folder / f"{1000 + i}.jpg"),
                    cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        truth = np.empty((1, 2), dtype=object)
        for k in range(2):
            labels = np.ones((120, 160), np.uint16)
            labels[20 + 10 * k:60 + 10 * k, 30:90] = 2  # an object of 12.5 % of the photo
            truth[0, k] = {"Segmentation": labels}
        scipy.io.savemat(str(root / "bsds500" / "groundTruth" / folder / f"{1000 + i}.mat"), {"groundTruth": truth})
    return root


def _python(code_or_args: list[str], backend: str, tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT), "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, *code_or_args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{code_or_args[:3]} ({backend}) failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def test_pack_unpack_gives_byte_identical_synthesis(tmp_path):
    original = _fake_data_root(tmp_path / "data")
    info = pack(original, tmp_path / "pack" / "sources.npz")
    assert info["sources"] == 32
    unpacked = unpack(tmp_path / "pack" / "sources.npz", tmp_path / "unpacked")
    counts = {"train": 40, "val": 4, "test": 4}
    first = synthesize(original, tmp_path / "a", counts, seed=3, workers=1)
    second = synthesize(unpacked, tmp_path / "b", counts, seed=3, workers=1)
    assert first.read_text() == second.read_text()
    for path in sorted((tmp_path / "a").rglob("*.*")):
        if path.suffix in (".png", ".jpg"):
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes(), path
    import csv

    with first.open(newline="") as handle:
        hosts = [row["source"] for row in csv.DictReader(handle)]
    assert any(host.startswith("bsds/") for host in hosts), "no sample used the BSDS-like photo's segmentations"


def test_pack_keeps_only_the_asked_splits(tmp_path):
    original = _fake_data_root(tmp_path / "data")
    everything = pack(original, tmp_path / "all.npz")["sources"]
    some = pack(original, tmp_path / "some.npz", splits=("train",))["sources"]
    assert 0 < some < everything
    with pytest.raises(ValueError, match="unknown splits"):
        pack(original, tmp_path / "bad.npz", splits=("training",))


def test_threaded_batches_equal_serial_batches():
    rng = np.random.default_rng(0)
    sel = rng.normal(0, 5, size=(37, 16, 16, 3)).astype(np.float16)
    labels = (rng.random(37) > 0.5).astype(np.float32)
    serial = list(iterate_batches(sel, labels, 8, ("std", 1.0, 8.0), np.random.default_rng(3), augment=True))
    threaded = list(iterate_batches(sel, labels, 8, ("std", 1.0, 8.0), np.random.default_rng(3), augment=True,
                                    threads=4))
    assert len(serial) == len(threaded) == 5
    for (x1, y1), (x2, y2) in zip(serial, threaded):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="needs torch (training backend) and tensorflow (converter)")
def test_torch_backend_training_with_budget_converts_to_matching_onnx(tmp_path):
    data_root = _fake_data_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    # 800 images make one epoch far longer than the 1.2 s budget, so the budget must act inside
    # the first epoch: lower the learning rate at 70 %, then stop, validate and save.
    result = _python(["-m", "training.train", "--preset", "gpu", *TINY, "--data", str(data_root),
                      "--synth-dir", str(tmp_path / "synth"), "--out", str(run_dir), "--train-count", "800",
                      "--val-count", "16", "--test-count", "0", "--time-budget-minutes", "0.02", "--workers", "2"],
                     "torch", tmp_path)
    assert "Keras backend: torch" in result.stdout
    assert "learning rate lowered to 0.0001 in epoch 1" in result.stdout
    assert "time budget reached" in result.stdout
    history = json.loads((run_dir / "metrics.json").read_text())
    state = json.loads((run_dir / "state.json").read_text())
    assert len(history) == 1 and state["epoch"] == 1 and state["best_epoch"] == 1 and state["lr_lowered"]
    assert 8 <= history[0]["train_images"] < 800
    # the optimizer holds the rate as a float32 (1e-4 lowered from 1e-3 by a float32 product): within
    # a few float32 roundings, 4 * eps32 relative
    assert history[0]["learning_rate"] == pytest.approx(1e-4, rel=4 * float(np.finfo(np.float32).eps))
    assert (run_dir / "best.weights.h5").is_file() and (run_dir / "last.weights.h5").is_file()
    assert not (run_dir / "test_metrics.json").exists()  # --test-count 0: no test report here

    # The torch-trained weights give the same logits under TensorFlow, and through ONNX.
    _python(["-c", PREDICT, str(run_dir), str(tmp_path / "torch.npy")], "torch", tmp_path)
    _python(["-c", PREDICT, str(run_dir), str(tmp_path / "tf.npy")], "tensorflow", tmp_path)
    torch_logits, tf_logits = np.load(tmp_path / "torch.npy"), np.load(tmp_path / "tf.npy")
    assert torch_logits.shape == (3, 3)
    # the export's stated parity tolerance (export/convert.py PARITY_ATOL = 1e-4, relative to max(1, max|logit|)):
    # float32 both sides, different backends' kernels and summation orders
    np.testing.assert_allclose(tf_logits, torch_logits, rtol=0,
                               atol=PARITY_ATOL * max(1.0, float(np.abs(torch_logits).max())))
    _python(["-m", "export.convert", "--run", str(run_dir), "--out", str(tmp_path / "onnx"), "--variants", "3"],
            "tensorflow", tmp_path)
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "onnx" / "wcbnet3.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(5).normal(size=(3, 64, 64, 3)).astype(np.float32)
    onnx_logits = [session.run(["logit"], {"sel": x[i:i + 1]})[0].item() for i in range(3)]
    # the same parity contract, ONNX held to it against the torch logits directly (not chained
    # through TensorFlow, which would allow 2 * PARITY_ATOL)
    np.testing.assert_allclose(onnx_logits, torch_logits[:, 1], rtol=0,
                               atol=PARITY_ATOL * max(1.0, float(np.abs(torch_logits).max())))


VIEWS_PREDICT = textwrap.dedent(
    """
    import numpy as np
    import keras
    from training.data import iterate_batches
    from training.train import predict
    from wsloc_runtime.views import TEST_TIME_VIEWS

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)  # keeps positions, so a flipped input gives another logit
    model = keras.Model(inputs, [keras.layers.Dense(1)(x), keras.layers.Dense(1)(x)])
    rng = np.random.default_rng(1)
    sel = rng.normal(0, 5, size=(10, 16, 16, 3)).astype(np.float16)
    labels = (rng.random(10) > 0.5).astype(np.float32)
    run = {"sel_scaling": "std", "sel_scale": 1.0, "sel_clip": 8.0}
    batches = [b for b, _ in iterate_batches(sel, labels, 4, ("std", 1.0, 8.0))]
    def logits(batch):
        return np.concatenate([np.asarray(z).reshape(-1, 1) for z in model.predict_on_batch(batch)], axis=1)
    # the same batches of 4 that predict() makes, so both sides run the same float32 kernels on the
    # same arrays and take the same float32 mean and sigmoid: exact, bit for bit
    plain = np.concatenate([logits(b) for b in batches])
    mirrored = np.concatenate([logits(np.ascontiguousarray(b[:, :, ::-1])) for b in batches])
    assert not np.allclose(plain, mirrored)
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    np.testing.assert_array_equal(predict(model, sel, labels, run, batch=4), sigmoid(plain))
    np.testing.assert_array_equal(predict(model, sel, labels, run, batch=4, views=TEST_TIME_VIEWS["hflip"]),
                                  sigmoid(np.mean([plain, mirrored], axis=0)))
    print("views ok")
    """
)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")
def test_report_views_average_logits_like_the_runtime(tmp_path):
    """training.train --report-only --views hflip must average the logits of the input and its mirror
    image, as WCBnetModel.forward_views does, so its AUCs are the runtime's."""
    assert "views ok" in _python(["-c", VIEWS_PREDICT], "tensorflow", tmp_path).stdout


LABELS_RUN_CHECK = textwrap.dedent(
    """
    import sys
    from wsloc_runtime.pipeline import Localizer
    localizer = Localizer(models_dir=sys.argv[1])
    model = localizer.models[0]
    assert model.config.input_features == ("sel", "jpeg_dq", "jpeg_lattice"), model.config
    assert model.session.get_inputs()[0].shape == [1, 64, 64, 5]
    result = localizer.localize(sys.argv[2])
    assert result.enhanced.shape == result.working_size and 0.0 <= result.probability <= 1.0
    print("labels run ok", model.config.training_data)
    """
)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")
def test_labels_csv_run_with_jpeg_trace_inputs_converts_and_localizes(tmp_path):
    """training.train --labels: the de-biased set is built, trained on with the JPEG-trace channels,
    converted (parity-checked) and run by the runtime, which derives the same five channels.
    No mask is read: the labels CSV has none, and the masks the set writes for its synthesized
    forgeries (for evaluation only) are deleted before training."""
    (tmp_path / "photos").mkdir()
    labels = make_labelled_folder(tmp_path / "photos")
    run_dir = tmp_path / "run"
    _python(["-m", "training.casia_set", "--labels", str(labels), "--out", str(tmp_path / "set"), "--synth", "6"],
            "tensorflow", tmp_path)
    masks = sorted((tmp_path / "set").rglob("*_mask.png"))
    assert masks, "the synthesized forgeries should come with masks"
    for mask in masks:
        mask.unlink()
    _python(["-m", "training.train", "--preset", "cpu", *TINY, "--labels", str(labels), "--labels-set-dir",
             str(tmp_path / "set"), "--labels-synth", "6", "--input-features", "sel", "jpeg_dq", "jpeg_lattice",
             "--epochs", "1", "--out", str(run_dir), "--workers", "1"], "tensorflow", tmp_path)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["labels"] == str(labels.resolve()) and run["debias"] and run["test_count"] == 0
    set_info = json.loads((tmp_path / "set" / "set.json").read_text())
    assert set_info["counts"]["train"]["images"] + set_info["counts"]["val"]["images"] == 10 * 4 + 5 * 2 + 6  # authentic: as is, swapped, re-saved, twice; tampered: as is, swapped; synthesized
    assert not any((tmp_path / "set").rglob("*_mask.png")), "the set was rebuilt: the mask-free check proved nothing"
    _python(["-m", "export.convert", "--run", str(run_dir), "--out", str(tmp_path / "onnx"), "--verdict-band",
             "0.3", "0.7"], "tensorflow", tmp_path)
    checked = _python(["-c", LABELS_RUN_CHECK, str(tmp_path / "onnx"), str(next(labels.parent.glob("Sp_*.jpg")))],
                      "tensorflow", tmp_path)
    assert "labels run ok" in checked.stdout and "re-saved with the other class's JPEG profiles" in checked.stdout
