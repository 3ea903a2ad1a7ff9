"""The processing fingerprint: training material, training, export, the per-photo anomaly step, the evidence."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT, shared_data_dir
from wsloc_runtime.evidence import create_evidence, evidence_names, inputs_for_image
from wsloc_runtime.evidence.fingerprint import MODEL_FILENAME, embedding_anomaly, robust_gaussian

SHIPPED = REPO_ROOT / "assets" / "models" / MODEL_FILENAME
KODAK = shared_data_dir() / "kodak"


def _photos(folder: Path, count: int = 3, side: int = 200) -> list[Path]:
    """Small synthetic 'photos': smooth shapes plus grain, saved losslessly."""
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        coarse = rng.uniform(0, 255, (8, 8, 3)).astype(np.float32)
        img = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (side, side, 3))
        path = folder / f"photo{i}.png"
        cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))
        paths.append(path)
    return paths


def _box_mask(shape, box):
    mask = np.zeros(shape, bool)
    mask[box[0]:box[2], box[1]:box[3]] = True
    return mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1, int((a | b).sum()))


# ---------------------------------------------------------------- the anomaly step (no model)


def test_registered_but_not_in_the_default_fusion():
    from wsloc_runtime.fusion import DEFAULT_EVIDENCE

    assert "fingerprint" in evidence_names()
    assert "fingerprint" not in DEFAULT_EVIDENCE


def test_anomaly_marks_a_region_of_other_embeddings():
    rng = np.random.default_rng(0)
    h, w, dim = 80, 100, 16
    field = rng.normal(size=dim) + rng.normal(0, 1.0, (h, w, dim))
    box = (20, 30, 50, 70)
    field[box[0]:box[2], box[1]:box[3]] = rng.normal(size=dim) + rng.normal(0, 1.0, (30, 40, dim))
    values, reliability, strength, details = embedding_anomaly(field.astype(np.float32))
    assert values.shape == (h, w) and values.dtype == np.float32
    assert _iou(values > 0.5, _box_mask((h, w), box)) >= 0.5
    assert reliability >= 0.4 and strength >= 0.4
    assert details["coherence"] > 0.7


def test_anomaly_finds_nothing_on_uniform_embeddings():
    rng = np.random.default_rng(1)
    field = (rng.normal(size=16) + rng.normal(0, 1.0, (80, 100, 16))).astype(np.float32)
    values, reliability, strength, _ = embedding_anomaly(field)
    assert reliability < 0.1 and strength < 0.05
    assert float(values.mean()) < 0.15


def test_robust_gaussian_ignores_a_minority():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, (900, 4)), rng.normal(8, 1, (100, 4))])
    mean, _, d2 = robust_gaussian(x)
    assert np.abs(mean).max() < 0.3
    assert d2[900:].min() > np.percentile(d2[:900], 99)


# ---------------------------------------------------------------- the evidence


def test_missing_model_reports_itself_unavailable(tmp_path):
    evidence = create_evidence("fingerprint", models_dir=tmp_path)
    reading = evidence.compute(inputs_for_image(np.full((120, 160, 3), 90, np.uint8)))
    assert reading.reliability == 0.0 and reading.strength == 0.0
    assert reading.map.shape == (120, 160) and not reading.map.any()
    assert "not installed" in reading.reason
    assert evidence.unavailable_reason


def _rerendered(rgb: np.ndarray, box) -> np.ndarray:
    from training.fingerprint_data import rerender_region  # numpy + OpenCV only

    return rerender_region(rgb, box, factor=4.0)



def _held_out_photos() -> list[np.ndarray]:
    """Kodak photos kept out of training, or the bundled example made from one of them (kodim21)."""
    names = ["kodim21.png", "kodim22.png", "kodim23.png", "kodim24.png"]
    photos = [cv2.cvtColor(cv2.imread(str(KODAK / n)), cv2.COLOR_BGR2RGB) for n in names if (KODAK / n).is_file()]
    return photos or [cv2.cvtColor(cv2.imread(str(REPO_ROOT / "assets" / "examples" / "authentic_lighthouse.jpg")),
                                   cv2.COLOR_BGR2RGB)]


def _centre_box(rgb):
    h, w = rgb.shape[:2]
    return (h // 4, w // 3, h // 4 + h // 3, w // 3 + w // 3)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped fingerprint.onnx")
def test_shipped_model_marks_a_region_rerendered_from_a_quarter_resolution():
    # Measured with the shipped model (run fp3): IoU 0.405 / 0.377 / 0.363 / 0.391 on kodim21-24 (fp1: 0.385 / 0.365 / 0.321 / 0.414).
    evidence = create_evidence("fingerprint")
    for rgb in _held_out_photos():
        box = _centre_box(rgb)
        edited = evidence.compute(inputs_for_image(_rerendered(rgb, box), work_max_side=4096))
        assert _iou(edited.map > 0.5, _box_mask(rgb.shape[:2], box)) >= 0.3, edited.summary()


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped fingerprint.onnx")
@pytest.mark.xfail(strict=True, reason="issue 26's check, not reached by the shipped model: untouched held-out "
                   "Kodak photos read reliability 0.15-0.27 and strength 0.14-0.27 (the re-rendered ones 0.15-0.27): "
                   "the embedding still follows strong texture, so every photo 'splits'")
def test_shipped_model_reads_nothing_on_the_untouched_photo():
    evidence = create_evidence("fingerprint")
    for rgb in _held_out_photos():
        untouched = evidence.compute(inputs_for_image(rgb, work_max_side=4096))
        assert min(untouched.reliability, untouched.strength) < 0.1, untouched.summary()


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped fingerprint.onnx")
def test_shipped_model_is_listed_with_its_checksum():
    from wsloc_runtime.models import _known_checksums, sha256_of

    assert _known_checksums(SHIPPED.parent)[MODEL_FILENAME] == sha256_of(SHIPPED)
    assert SHIPPED.stat().st_size <= 10_000_000


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped fingerprint.onnx")
def test_evidence_runs_with_torch_blocked():
    from tests.test_runtime_isolation import run_isolated

    completed = run_isolated(
        """
        import numpy as np, sys
        from wsloc_runtime.evidence import create_evidence, inputs_for_image
        rgb = np.random.default_rng(0).integers(0, 255, (160, 200, 3), dtype=np.uint8)
        reading = create_evidence("fingerprint").compute(inputs_for_image(rgb))
        assert reading.map.shape == (160, 200), reading.map.shape
        assert "not installed" not in reading.reason
        assert not [m for m in ("torch", "tensorflow") if m in sys.modules]
        print("ok")
        """
    )
    assert completed.returncode == 0 and "ok" in completed.stdout, completed.stdout + completed.stderr


# ---------------------------------------------------------------- training material (numpy + OpenCV)


def test_batches_are_a_pure_function_of_seed_and_step(tmp_path):
    from training.fingerprint_data import BatchShape, make_batch, patch_offsets

    sources = _photos(tmp_path)
    shape = BatchShape(photos=3, histories=2, patches=4, patch=32, crop=64)
    a, ga = make_batch(sources, 3, 5, shape)
    b, gb = make_batch(sources, 3, 5, shape)
    c, _ = make_batch(sources, 3, 6, shape)
    assert a.shape == (24, 1, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ga, gb)
    assert not np.array_equal(a, c)
    assert list(ga[:16]) == [0] * 8 + [1] * 8  # two photos share each history; then the set's other history
    assert list(ga[16:]) == [2] * 4 + [3] * 4
    assert -0.5 <= a.min() and a.max() <= 0.5
    assert patch_offsets(shape) == [(0, 0), (0, 32), (32, 0), (32, 32)]  # positives share no pixel


def test_histories_cover_the_issue_list():
    from training.fingerprint_data import apply_history, sample_history

    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        history = sample_history(rng)
        seen.update(history)
        seen.update(c["kind"] for c in history.get("codecs", []))
        if any(c["shift"] != [0, 0] for c in history.get("codecs", [])):
            seen.add("shift")
        if len(history.get("codecs", [])) == 2:
            seen.add("twice")
    assert {"lowres", "resize", "blur", "sharpen", "denoise", "gamma", "noise", "jpeg", "webp", "shift", "twice"} <= seen
    rgb = np.random.default_rng(1).integers(0, 255, (90, 90, 3), dtype=np.uint8)
    out = apply_history(rgb, {"resize": {"scale": 0.5, "kernel": "area"},
                              "codecs": [{"kind": "jpeg", "quality": 80, "shift": [0, 0]},
                                         {"kind": "jpeg", "quality": 90, "shift": [3, 5]}]})
    assert out.shape == (42, 40, 3) and out.dtype == np.uint8


def test_a_shared_platform_tail_runs_after_each_history_and_keeps_the_crop_whole(tmp_path):
    from training.fingerprint_data import (BatchShape, apply_history, clamp_history, history_scale, make_batch,
                                           processed_crop, sample_tail)

    rng = np.random.default_rng(2)
    tail = sample_tail(rng)
    assert 0.6 <= tail["resize"]["scale"] <= 0.95 and tail["codecs"][0]["kind"] in ("jpeg", "webp")
    rgb = np.random.default_rng(1).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    first = {"resize": {"scale": 0.5, "kernel": "area"}, "codecs": [{"kind": "jpeg", "quality": 60, "shift": [0, 0]}]}
    chained = {**first, "then": {"resize": {"scale": 0.8, "kernel": "linear"},
                                 "codecs": [{"kind": "jpeg", "quality": 90, "shift": [0, 0]}]}}
    assert history_scale(chained) == pytest.approx(0.4)
    # the tail acts on what the first history made: the same pixels as applying the two in turn
    np.testing.assert_array_equal(apply_history(rgb, chained), apply_history(apply_history(rgb, first), chained["then"]))
    # a photo too small for the chain's overall scale gets its scale raised, never a short crop
    raised = clamp_history(chained, [(100, 120)], 64)
    assert history_scale(raised) >= (64 + 8 * 2 + 2) / 100
    assert processed_crop(rgb, chained, 64, np.random.default_rng(0)).shape == (64, 64)
    # batches without tails are unchanged by the option's existence; with them, labels keep their layout
    sources = _photos(tmp_path)
    plain, groups = make_batch(sources, 3, 5, BatchShape(photos=3, histories=2, patches=4, patch=32, crop=64))
    tailed, tailed_groups = make_batch(sources, 3, 5, BatchShape(photos=3, histories=2, patches=4, patch=32, crop=64,
                                                                 tail=1.0))
    np.testing.assert_array_equal(groups, tailed_groups)
    assert not np.array_equal(plain, tailed)


# ---------------------------------------------------------------- training and export (torch)


def _tiny_settings(tmp_path):
    from training.fingerprint import DEFAULTS

    return {**DEFAULTS, "channels": 8, "layers": 3, "dim": 4, "photos": 3, "histories": 2, "patches": 4,
            "patch": 32, "crop": 64, "val_batches": 1, "lr": 3e-3}


def test_a_few_training_steps_lower_the_loss(tmp_path):
    torch = pytest.importorskip("torch")
    from training.fingerprint import build_net, expand_groups, patch_embeddings, supcon_loss
    from training.fingerprint_data import BatchShape, make_batch

    torch.manual_seed(0)
    settings = _tiny_settings(tmp_path)
    net = build_net(settings)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, g = make_batch(_photos(tmp_path), 0, 0, BatchShape(3, 2, 4, 32, 64, share=2))
    x, g = torch.from_numpy(x), expand_groups(torch.from_numpy(g), 2)
    losses = []
    for _ in range(25):
        loss = supcon_loss(patch_embeddings(net, x, split=2), g, 0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


def test_resume_continues_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    from training.fingerprint import load_checkpoint, train

    sources = _photos(tmp_path)
    settings = _tiny_settings(tmp_path)
    common = dict(minutes=0, threads=1, workers=0, device="cpu", checkpoint_minutes=60, log_every=1,
                  val_every=2, sources=sources, quiet=True)
    train(settings, tmp_path / "straight", resume=False, max_steps=4, **common)
    train(settings, tmp_path / "halves", resume=False, max_steps=2, **common)
    train(settings, tmp_path / "halves", resume=True, max_steps=4, **common)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "halves")
    assert a["step"] == b["step"] == 4 and a["patches_seen"] == b["patches_seen"] == 4 * 24
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0)
    steps = [line for line in (tmp_path / "halves" / "log.jsonl").read_text().splitlines() if '"final"' not in line]
    assert len(steps) == 4  # the learning curve has one record per step, no duplicates


def test_export_parity_and_metadata(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from export.fingerprint_export import export
    from training.fingerprint import train
    from wsloc_runtime.evidence.fingerprint import FingerprintEvidence

    run = tmp_path / "run"
    train(_tiny_settings(tmp_path), run, resume=False, minutes=0, threads=1, workers=0, device="cpu",
          checkpoint_minutes=60, log_every=1, val_every=1, max_steps=2, sources=_photos(tmp_path), quiet=True)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "SHA256SUMS").write_text("0" * 64 + "  other.onnx\n")
    report = export(run, tmp_path / "models" / MODEL_FILENAME)
    assert report["parity_max_abs"] <= 1e-4
    assert report["config"]["embedding_dim"] == 4 and report["config"]["stride"] == 4
    sums = (tmp_path / "models" / "SHA256SUMS").read_text()
    assert "other.onnx" in sums and f"{report['sha256']}  {MODEL_FILENAME}" in sums
    reading = FingerprintEvidence(models_dir=tmp_path / "models").compute(
        inputs_for_image(np.random.default_rng(0).integers(0, 255, (130, 170, 3), dtype=np.uint8)))
    assert reading.map.shape == (130, 170) and "not installed" not in reading.reason


def test_wcbnet_conversion_keeps_the_fingerprint_checksum(tmp_path):
    from export.convert import write_checksums
    from wsloc_runtime.models import _known_checksums, sha256_of

    for name in ("wcbnet2.onnx", MODEL_FILENAME):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "SHA256SUMS").write_text(f"{sha256_of(tmp_path / MODEL_FILENAME)}  {MODEL_FILENAME}\n" + "0" * 64 + "  gone.onnx\n")
    write_checksums(tmp_path, [tmp_path / "wcbnet2.onnx"])
    sums = _known_checksums(tmp_path)
    assert sums == {name: sha256_of(tmp_path / name) for name in ("wcbnet2.onnx", MODEL_FILENAME)}
