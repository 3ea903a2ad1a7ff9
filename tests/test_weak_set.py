"""The weak training set with every kind of forgery: every synthesized kind is there, both classes
get the same platform chains, a forgery's twin differs from it only inside the mask, and the
set's images are readable by the training's input cache."""

from __future__ import annotations

import collections
import csv
import json

import numpy as np
import pytest

from training import weak_set
from training.data import read_manifest
from training.weak_set import CHAINS, KINDS, build_weak_set, decode
from tests.test_casia_set import make_labelled_folder


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weak")
    labels = make_labelled_folder(folder)
    # No BSDS500/Kodak here (extra_sources=False): the labels CSV's authentic photos are the hosts,
    # so the test does not depend on the shared data.
    manifest = build_weak_set(labels, folder / "set", synth_pairs=36, labels_synth=4, seed=3, val_fraction=0.0,
                              extra_sources=False, chained_fraction=0.5)
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return manifest, rows


def _info(row):
    return json.loads(row["info"])


def test_every_synthesized_kind_is_present(tiny_set):
    _, rows = tiny_set
    kinds = collections.Counter(r["kind"] for r in rows if r["image"].startswith("synth/"))
    for kind in KINDS:
        assert kinds[f"synth-{kind}"] == 36 // len(KINDS), kinds
    assert kinds["authentic"] == 36  # one untouched twin per forgery
    saves = collections.Counter(_info(r)["save"] for r in rows if r["image"].startswith("synth/"))
    assert set(saves) == {"jpeg", "png", "tiff"}, saves
    exts = {r["image"].rsplit(".", 1)[1] for r in rows}
    assert {"jpg", "png", "tif"} <= exts


def test_both_classes_get_the_same_chains(tiny_set):
    _, rows = tiny_set
    share = {}
    for label in ("0", "1"):
        members = [_info(r)["chain"] for r in rows if r["label"] == label]
        counts = collections.Counter(members)
        assert set(counts) <= set(CHAINS)
        share[label] = {chain: counts[chain] / len(members) for chain in CHAINS}
    for chain in CHAINS:
        # Exact shares and round-robin cycles: only rounding separates the classes.
        assert abs(share["0"][chain] - share["1"][chain]) <= 0.05, (chain, share)
    assert all(share["1"][chain] > 0 for chain in CHAINS), share  # every chain type really occurs
    # Synthesized pairs: the forgery and its twin went through the same save and chain.
    pairs = collections.defaultdict(list)
    for r in rows:
        if r["image"].startswith("synth/"):
            pairs[_info(r)["pair"]].append(_info(r))
    for twins in pairs.values():
        assert len(twins) == 2
        keys = ("save", "quality", "chain", "resize", "interpolation", "recompress")
        assert [t.get(k) for k in keys for t in twins[:1]] == [t.get(k) for k in keys for t in twins[1:]]


def test_platform_chains_resize_and_recompress(tiny_set):
    manifest, rows = tiny_set
    resized = [r for r in rows if _info(r)["chain"] == "resize+recompress"]
    assert resized
    for r in resized[:4]:
        info = _info(r)
        assert 0.5 <= info["resize"] <= 1.0 and 60 <= info["recompress"] <= 95
        assert r["image"].endswith(".jpg")
    twins = collections.defaultdict(dict)
    for r in rows:
        if r["image"].startswith("synth/"):
            twins[_info(r)["pair"]][r["label"]] = r
    # A forgery differs from its twin, and mostly inside its mask (the rest is the same host
    # through the same chain; a JPEG re-save spreads a little of the edit over nearby blocks).
    import cv2

    checked = 0
    for pair in twins.values():
        if _info(pair["1"])["chain"] != "none" or _info(pair["1"])["save"] == "jpeg":
            continue
        forged = decode((manifest.parent / pair["1"]["image"]).read_bytes()).astype(int)
        host = decode((manifest.parent / pair["0"]["image"]).read_bytes()).astype(int)
        mask = cv2.imread(str(manifest.parent / pair["1"]["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        changed = np.abs(forged - host).max(axis=2) > 2
        assert changed.any()
        near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert changed[~near].mean() < 0.01, changed[~near].mean()
        checked += 1
    assert checked >= 2


def test_manifest_reads_as_training_records(tiny_set):
    manifest, rows = tiny_set
    records = read_manifest(manifest, "train")
    assert len(records) == len(rows)
    assert all(r.image.is_file() for r in records)
    assert {r.label for r in records} == {0, 1}


def test_removal_fills_change_only_the_region():
    rng = np.random.default_rng(0)
    from skimage import data

    host = np.ascontiguousarray(data.astronaut()[::2, ::2])
    for kind in ("removal-telea", "removal-ns", "removal-patch", "copymove", "offgrid-paste"):
        image, mask, _ = weak_set.make_forgery(kind, host, None, host[::-1].copy(), None, rng)
        assert image.shape == host.shape and mask.any()
        diff = np.abs(image.astype(int) - host.astype(int)).max(axis=2) > 2
        # Pastes feather their edge (a Gaussian of sigma <= 2.5 px): allow 7 px around the mask.
        near = __import__("cv2").dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        assert diff[mask].mean() > 0.3, kind  # the region was really rewritten
        assert not diff[~near].any(), kind  # and nothing far from it


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorflow") is None, reason="needs tensorflow")
def test_train_on_the_weak_set_stops_after_one_epoch(tmp_path):
    """training.train --weak-pairs builds this set and --stop-after 1 ends a two-epoch run after its
    first epoch, resumable (the model card's one-epoch reproduction)."""
    from tests.test_train import TINY, _python

    (tmp_path / "photos").mkdir()
    labels = make_labelled_folder(tmp_path / "photos")
    run_dir = tmp_path / "run"
    _python(["-m", "training.train", "--preset", "cpu", *TINY, "--labels", str(labels), "--labels-set-dir",
             str(tmp_path / "set"), "--labels-synth", "4", "--weak-pairs", "12", "--data", str(tmp_path / "none"),
             "--input-features", "sel", "jpeg_sq", "--epochs", "2", "--stop-after", "1", "--out", str(run_dir),
             "--workers", "1"], "tensorflow", tmp_path)
    state = json.loads((run_dir / "state.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    assert state["epoch"] == 1 and (run_dir / "best.weights.h5").is_file()
    assert run["weak_pairs"] == 12 and run["weak_kinds"] == list(KINDS)
    meta = json.loads((tmp_path / "set" / "set.json").read_text())
    assert meta["weak_set"]["synth_pairs"] == 12 and meta["weak_set"]["kinds_count"]["synth-removal-patch"] == 2
