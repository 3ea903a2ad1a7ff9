"""The labels-CSV training set: the last save no longer tells the class, photos sharing an id stay on
one side of the split, bad CSVs are refused with the line at fault."""

from __future__ import annotations

import collections
import csv
import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from training.casia_set import LabelledPhoto, build_set, group_by_photo, read_labels
from training.data import read_manifest


def _save(path, rgb, quality, subsampling):
    Image.fromarray(rgb).save(path, "JPEG", quality=quality, subsampling=subsampling)


@pytest.fixture()
def labelled_folder(tmp_path):
    return make_labelled_folder(tmp_path)


def make_labelled_folder(tmp_path):
    """A CASIA-like labels CSV whose classes differ only in their last save: authentic photos at
    quality 90 with 4:2:0 chroma, tampered ones at 70 with 4:4:4 (as CASIA v1.0's do)."""
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field()]
    rows = []
    for k in range(10):
        base = photos[k % len(photos)]
        crop = np.ascontiguousarray(base[8 * k : 8 * k + 128, 16 * k : 16 * k + 160])
        authentic = f"Au_ani_{k:04d}.jpg"
        _save(tmp_path / authentic, crop, 90, 2)
        rows.append((authentic, 0))
        if k % 2 == 0:
            spliced = crop.copy()
            spliced[40:80, 50:100] = photos[(k + 1) % len(photos)][:40, :50]
            name = f"Sp_D_NNN_A_ani{k:04d}_ani{(k + 1) % 10:04d}_{k:04d}.jpg"
            _save(tmp_path / name, spliced, 70, 0)
            rows.append((name, 1))
    listing = tmp_path / "labels.csv"
    with listing.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label"])
        writer.writerows(rows)
    return listing


def _last_save(path):
    with Image.open(path) as image:
        return tuple(image.quantization[0]), JpegImagePlugin.get_sampling(image)


def test_debiased_set_gives_both_classes_the_same_last_saves(labelled_folder, tmp_path):
    manifest = build_set(labelled_folder, tmp_path / "set", synth_count=6, seed=1, val_fraction=0.0)
    records = read_manifest(manifest)
    by_class = {0: collections.Counter(), 1: collections.Counter()}
    for record in records:
        by_class[record.label][_last_save(record.image)] += 1
    profiles = set(by_class[0]) | set(by_class[1])
    assert len(profiles) == 2  # the two profiles of the source photos, nothing else
    for label in (0, 1):
        shares = [by_class[label][p] / sum(by_class[label].values()) for p in sorted(profiles)]
        assert all(abs(share - 0.5) < 0.15 for share in shares), (label, by_class[label])
    # Real photos keep their label; only the synthesized forgeries carry a mask.
    assert {r.label for r in records if "synth_" not in r.image.name} == {0, 1}
    assert all((r.mask is not None) == r.image.name.startswith("synth_") for r in records)
    assert all(r.mask.is_file() for r in records if r.mask is not None)


def test_without_debias_the_last_save_gives_the_class_away(labelled_folder, tmp_path):
    records = read_manifest(build_set(labelled_folder, tmp_path / "set", synth_count=4, seed=1, val_fraction=0.0,
                                      debias=False))
    for label in (0, 1):
        assert len({_last_save(r.image) for r in records if r.label == label}) == 1


def test_photos_sharing_an_id_share_a_group_and_a_split(labelled_folder, tmp_path):
    photos = read_labels(labelled_folder)
    groups = group_by_photo(photos)
    by_id = {}
    for photo, group in zip(photos, groups):
        for photo_id in photo.ids:
            by_id.setdefault(photo_id, set()).add(group)
    assert all(len(g) == 1 for g in by_id.values())
    # Au_ani_0000 and the splice of ani0000 with ani0001 are one group, with Au_ani_0001.
    assert LabelledPhoto(labelled_folder.parent / "Sp_D_NNN_A_ani0000_ani0001_0000.jpg", 1).ids == ("ani0000", "ani0001")
    manifest = build_set(labelled_folder, tmp_path / "set", synth_count=0, seed=0, val_fraction=0.5)
    split_of_source = collections.defaultdict(set)
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for photo_id in LabelledPhoto(labelled_folder.parent / row["source"], 0).ids:
                split_of_source[photo_id].add(row["split"])
    assert all(len(splits) == 1 for splits in split_of_source.values())


def test_bad_labels_files_are_refused_with_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,label\nmissing.jpg,0\n")
    with pytest.raises(FileNotFoundError, match="bad.csv:2: image not found"):
        read_labels(bad)
    Image.new("RGB", (32, 32)).save(tmp_path / "a.jpg")
    bad.write_text("image,label\na.jpg,2\n")
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        read_labels(bad)
    bad.write_text("path,class\na.jpg,1\n")
    with pytest.raises(ValueError, match="expected columns 'image,label'"):
        read_labels(bad)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, "PNG")
    (tmp_path / "b.png").write_bytes(buffer.getvalue())
    bad.write_text("image,label\na.jpg,1\nb.png,1\n")
    with pytest.raises(ValueError, match="both classes need JPEG photos"):
        build_set(bad, tmp_path / "out", synth_count=0)
