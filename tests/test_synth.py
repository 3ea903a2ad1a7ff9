"""Forgery synthesizer (determinism, split by source photo) and dataset readers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data import build_input_cache, iterate_batches, read_casia_layout, read_manifest
from training.synth import SPLITS, decode, list_sources, make_sample, sources_by_split, split_of, synthesize
from wsloc_runtime.sel import resized_error_levels, scale_error_levels


def _fake_kodak(root: Path, count: int = 6) -> Path:
    """A data root with ``count`` textured lossless photos in ``kodak/`` (no BSDS)."""
    rng = np.random.default_rng(0)
    (root / "kodak").mkdir(parents=True)
    for i in range(count):
        base = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)
        noise = rng.normal(0, 6, base.shape)
        cv2.imwrite(str(root / "kodak" / f"kodim{i:02d}.png"), np.clip(base + noise, 0, 255).astype(np.uint8))
    return root


def test_samples_are_deterministic_by_seed_and_index(tmp_path):
    sources = list_sources(_fake_kodak(tmp_path))
    for index in range(4):  # one of each kind in KIND_CYCLE
        a, b = make_sample(7, index, sources), make_sample(7, index, sources)
        assert a.encoded == b.encoded and np.array_equal(a.mask, b.mask) and a.info == b.info
    assert make_sample(7, 1, sources).encoded != make_sample(8, 1, sources).encoded


def test_labels_masks_and_image_sizes_agree(tmp_path):
    sources = list_sources(_fake_kodak(tmp_path))
    for index in range(8):
        sample = make_sample(1, index, sources)
        image = decode(sample.encoded) if sample.extension == ".jpg" else cv2.imdecode(
            np.frombuffer(sample.encoded, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[:2] == sample.mask.shape
        if sample.info["kind"] == "authentic":
            assert sample.label == 0 and not sample.mask.any()
        else:
            assert sample.label == int(sample.mask.any())
            assert sample.mask.mean() < 0.5


def test_synthesize_writes_manifest_and_sel_cache(tmp_path):
    root = _fake_kodak(tmp_path / "data")
    manifest = synthesize(root, tmp_path / "set", {"train": 8}, seed=2, workers=1, val_fraction=0, test_fraction=0)
    records = read_manifest(manifest, "train")
    assert len(records) == 8 and {r.label for r in records} == {0, 1}
    for record in records:
        mask = cv2.imread(str(record.mask), cv2.IMREAD_GRAYSCALE)
        assert (mask > 127).any() == bool(record.label)
    cache = tmp_path / "set" / "cache" / "train.npz"
    sel, labels = build_input_cache(records, cache, (64, 64), workers=1)
    assert sel.shape == (8, 64, 64, 3) and sel.dtype == np.float16
    np.testing.assert_array_equal(labels, [r.label for r in records])
    rgb = cv2.cvtColor(cv2.imread(str(records[3].image)), cv2.COLOR_BGR2RGB)
    expected = resized_error_levels(rgb, [(64, 64)], 90)[0]
    # The cache stores the same float32 SEL rounded to float16 (round to nearest): within eps16 / 2
    # relative for normal values, and within half the smallest subnormal step (2**-25) below them
    np.testing.assert_allclose(sel[3].astype(np.float32), expected, rtol=np.finfo(np.float16).eps / 2, atol=2.0**-25)
    mtime = cache.stat().st_mtime_ns
    build_input_cache(records, cache, (64, 64), workers=1)
    assert cache.stat().st_mtime_ns == mtime, "an up-to-date cache must be reused"
    x, y = next(iterate_batches(sel, labels, 4, ("fixed", 16.0, 8.0)))
    # the same function on the same float16 -> float32 values: default rtol 1e-7 (below an ulp) is equality
    np.testing.assert_allclose(x[0], scale_error_levels(sel[0].astype(np.float32), "fixed", 16.0, 8.0))
    assert x.shape == (4, 64, 64, 3) and y.shape == (4, 1)


def test_split_is_by_source_photo_on_bsds(shared_data, tmp_path):
    sources = list_sources(shared_data)
    groups = sources_by_split(sources)
    assert sum(len(g) for g in groups.values()) == len(sources)
    assert all(len(groups[s]) >= 20 for s in SPLITS)
    manifest = synthesize(shared_data, tmp_path, {"train": 6, "val": 6, "test": 6}, seed=0, workers=1)
    with manifest.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        info = json.loads(row["info"])
        for photo in (info["host"], info.get("donor")):
            if photo is not None:
                assert split_of(photo) == row["split"], f"{photo} leaked into {row['split']}"
    assert any(json.loads(r["info"]).get("donor", "").startswith("bsds/") for r in rows)


def test_bsds_regions_follow_human_segmentations(shared_data):
    sources = [s for s in list_sources(shared_data) if s.segmentation_path is not None][:20]
    sample = make_sample(0, 1, sources)  # index 1 is a splice
    assert sample.info["kind"] == "spliced" and sample.label == 1
    assert sample.info["donor"] != sample.info["host"]


def test_casia_layout_reader(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    (tmp_path / "Au").mkdir()
    (tmp_path / "Tp").mkdir()
    (tmp_path / "GT").mkdir()
    cv2.imwrite(str(tmp_path / "Au" / "Au_ani_00001.jpg"), rgb)
    cv2.imwrite(str(tmp_path / "Tp" / "Tp_D_NRN_S_N_ani00001_ani00002_00001.jpg"), rgb)
    cv2.imwrite(str(tmp_path / "Tp" / "Tp_S_NNN_S_N_ani00003_ani00003_00002.tif"), rgb)
    (tmp_path / "Tp" / "Thumbs.db").write_bytes(b"\0")
    cv2.imwrite(str(tmp_path / "GT" / "Tp_D_NRN_S_N_ani00001_ani00002_00001_gt.png"), np.zeros((48, 64), np.uint8))
    records = read_casia_layout(tmp_path)
    by_name = {r.image.name: r for r in records}
    assert sorted(by_name) == ["Au_ani_00001.jpg", "Tp_D_NRN_S_N_ani00001_ani00002_00001.jpg",
                               "Tp_S_NNN_S_N_ani00003_ani00003_00002.tif"]
    assert by_name["Au_ani_00001.jpg"].label == 0 and by_name["Au_ani_00001.jpg"].mask is None
    assert by_name["Tp_D_NRN_S_N_ani00001_ani00002_00001.jpg"].mask.name.endswith("_gt.png")
    assert by_name["Tp_S_NNN_S_N_ani00003_ani00003_00002.tif"].label == 1
    assert by_name["Tp_S_NNN_S_N_ani00003_ani00003_00002.tif"].mask is None
    sel, labels = build_input_cache(records, tmp_path / "cache.npz", (32, 32), workers=1)
    assert sel.shape == (3, 32, 32, 3) and labels.tolist() == [0.0, 1.0, 1.0]


def test_casia_layout_reader_rejects_other_layouts(tmp_path):
    (tmp_path / "Au").mkdir()
    with pytest.raises(FileNotFoundError):
        read_casia_layout(tmp_path)


def test_final_save_follows_the_requested_quality_range(tmp_path):
    sources = list_sources(_fake_kodak(tmp_path))
    qualities = set()
    for index in range(12):
        sample = make_sample(4, index, sources, final_quality=(95, 97), lossless_fraction=0.0)
        assert sample.extension == ".jpg"
        qualities.add(sample.info["q_final"])
    assert qualities <= {95, 96, 97}
    assert make_sample(4, 0, sources, lossless_fraction=1.0).extension == ".png"
    with pytest.raises(ValueError):
        make_sample(4, 0, sources, final_quality=(97, 95))
