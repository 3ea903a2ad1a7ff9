"""A training set from real photos with image-level labels, with the compression shortcut closed.

``python -m training.casia_set --labels ../shared/data/casia1-train.csv --out data_cache/casia1_set``

The input is a labels CSV (``image,label``; paths relative to the CSV; 1 = tampered), such
as CASIA v1.0's training file. Such sets give the label away through the last save: CASIA
v1.0's authentic photos were last saved at JPEG quality 80-94 with 4:2:0 chroma, its
tampered ones at quality 75 or with Photoshop's tables, often 4:4:4. A classifier learns
that first (image AUC 1.00 on the development photos from the quality alone, 0.03 once the
compression is swapped). Here every photo appears

* as it is (its own class's last save), and
* re-saved with the JPEG tables and chroma subsampling (a "save profile") of a random photo
  of the OTHER class;

authentic photos also once more with another tampered photo's profile, and twice: with a
tampered photo's profile, then an authentic one's (the chain a tampered photo follows when
it is re-saved, so that "a coarse save, then a finer one" does not mean tampered either).
Forgeries are added that are synthesized from the authentic photos (real camera JPEGs as
host and donor: a region of another photo, or of the host itself, rotated or scaled or not,
pasted at a random offset), saved with a profile drawn from both classes and, half of them,
re-saved with one of the other class. Each class's last saves then come from the two classes'
profiles in about equal parts and their histories follow the same chains, so the
compression carries no label, while what the edit did to the photos' earlier compression (a
pasted region losing the host's aligned double quantization) stays.

The split into ``train`` and ``val`` is by photo: a splice joins the ids of its source
photos (CASIA names them, ``Sp_D_..._ani0044_ani0051_0286``), and every photo sharing an id
with another lands on the same side. Files are written under ``--out`` with a
``manifest.csv`` in :mod:`training.synth`'s format (split, image, mask, label, kind, source,
info); masks exist only for the synthesized forgeries and are never read in training.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin

from training.synth import paste, random_blob, transform_patch

#: CASIA photo ids: three letters of the category and four digits (``ani0044``).
PHOTO_ID = re.compile(r"([a-z]{3})_?(\d{4,5})")
VAL_FRACTION = 0.1


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    label: int

    @property
    def ids(self) -> tuple[str, ...]:
        """The photo ids in the file name (one for an authentic photo, two for a splice)."""
        stem = self.path.stem
        body = stem.split("_", 1)[1] if stem.startswith("Au_") else stem
        found = tuple(f"{a}{b}" for a, b in PHOTO_ID.findall(body))
        return found or (stem,)


@dataclass(frozen=True)
class SaveProfile:
    """How a JPEG was last saved: its quantization tables and chroma subsampling (Pillow's codes:
    0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0)."""

    tables: tuple[tuple[int, ...], ...]
    subsampling: int
    source: str
    label: int


def read_labels(csv_path: str | Path) -> list[LabelledPhoto]:
    """The ``image,label`` CSV (paths relative to it).

    Raises:
        ValueError: missing columns, or a label other than 0 or 1.
        FileNotFoundError: the CSV or a listed image is missing.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"labels file not found: {csv_path}")
    photos = []
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"image", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{csv_path}: expected columns 'image,label', got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            if row["label"].strip() not in ("0", "1"):
                raise ValueError(f"{csv_path}:{line}: label must be 0 or 1, got {row['label']!r}")
            path = csv_path.parent / row["image"].strip()
            if not path.is_file():
                raise FileNotFoundError(f"{csv_path}:{line}: image not found: {path}")
            photos.append(LabelledPhoto(path, int(row["label"])))
    if not photos:
        raise ValueError(f"{csv_path}: no rows")
    return photos


def save_profile(photo: LabelledPhoto) -> SaveProfile | None:
    """The photo's last save, or ``None`` when it is not a JPEG."""
    with Image.open(photo.path) as image:
        if image.format != "JPEG":
            return None
        tables = tuple(tuple(int(v) for v in image.quantization[k]) for k in sorted(image.quantization))
        return SaveProfile(tables, JpegImagePlugin.get_sampling(image), photo.path.name, photo.label)


def encode_with_profile(rgb: np.ndarray, profile: SaveProfile) -> bytes:
    """``rgb`` saved as a baseline JPEG with ``profile``'s tables and chroma subsampling."""
    buffer = io.BytesIO()
    subsampling = profile.subsampling if profile.subsampling in (0, 1, 2) else 2
    Image.fromarray(rgb).save(buffer, "JPEG", qtables=[list(t) for t in profile.tables], subsampling=subsampling)
    return buffer.getvalue()


def group_by_photo(photos: Sequence[LabelledPhoto]) -> list[int]:
    """A group number per photo: photos that share an id (transitively) share a group."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for photo in photos:
        first, *rest = photo.ids
        for other in rest:
            parent[find(other)] = find(first)
    roots = [find(photo.ids[0]) for photo in photos]
    numbering = {root: k for k, root in enumerate(sorted(set(roots)))}
    return [numbering[r] for r in roots]


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def split_groups(group_keys: dict[int, str], val_fraction: float) -> dict[int, str]:
    """``train`` or ``val`` per group, by a hash of the group's photo ids; with a positive
    ``val_fraction``, at least one group is ``val`` (a small set would otherwise have none)."""
    draws = {g: _unit_hash(key) for g, key in group_keys.items()}
    splits = {g: "val" if u < val_fraction else "train" for g, u in draws.items()}
    if val_fraction > 0 and "val" not in splits.values() and len(splits) > 1:
        splits[min(draws, key=draws.get)] = "val"
    return splits


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def decode_jpeg(encoded: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(encoded)) as image:
        return np.asarray(image.convert("RGB"))


def synthesize_forgery(host: np.ndarray, donor: np.ndarray | None, rng: np.random.Generator):
    """A splice (region of ``donor``) or, with ``donor=None``, a copy-move within ``host``.

    Returns ``(image uint8, mask bool)``. The region is a random blob; it is rotated and/or
    scaled 60 % of the time and pasted at a random (usually grid-misaligned) offset.
    """
    source = host if donor is None else donor
    region = random_blob(source.shape[:2], rng)
    patch, alpha = transform_patch(source, region, rng, host.shape[:2])
    if donor is None:
        ys, xs = np.nonzero(region)
        return paste(host, patch, alpha, rng, avoid=(int(ys.min()), int(xs.min())))
    return paste(host, patch, alpha, rng)


def write_set_image(out: Path, split: str, folder: str, name: str, data: bytes, ext: str, label: int, kind: str,
                    source: str, info: dict, mask: np.ndarray | None = None) -> dict:
    """Write one training image (and its mask, when it has one) under ``out/folder`` and return its
    manifest row (paths relative to ``out``)."""
    path = out / folder / f"{name}{ext}"
    path.write_bytes(data)
    mask_path = ""
    if mask is not None:
        mask_file = out / folder / f"{name}_mask.png"
        cv2.imwrite(str(mask_file), mask.astype(np.uint8) * 255)
        mask_path = str(mask_file.relative_to(out))
    return {"split": split, "image": str(path.relative_to(out)), "mask": mask_path, "label": label,
            "kind": kind, "source": source, "info": json.dumps({"kind": kind, **info}, sort_keys=True)}


def build_set(labels_csv: str | Path, out_dir: str | Path, synth_count: int = 400, seed: int = 0,
              val_fraction: float = VAL_FRACTION, debias: bool = True) -> Path:
    """Write the de-biased set (see the module docstring); returns its ``manifest.csv``.

    ``debias=False`` writes the shortcut-prone set the ablation compares against: every
    photo as it is, and forgeries synthesized from the authentic photos saved with the
    tampered photos' profiles (as the labelled forgeries were).
    """
    from tqdm import tqdm

    photos = read_labels(labels_csv)
    out = Path(out_dir)
    for split in ("train", "val"):
        (out / split).mkdir(parents=True, exist_ok=True)
        for stale in (out / split).iterdir():  # a rebuilt set must not keep files of the last one
            stale.unlink()
    groups = group_by_photo(photos)
    group_key = {g: "+".join(sorted({i for p, q in zip(photos, groups) if q == g for i in p.ids})) for g in set(groups)}
    group_split = split_groups(group_key, val_fraction)
    splits = [group_split[g] for g in groups]
    profiles = [save_profile(p) for p in photos]
    pools = {label: [pr for pr in profiles if pr is not None and pr.label == label] for label in (0, 1)}
    if not pools[0] or not pools[1]:
        raise ValueError("both classes need JPEG photos: their save profiles are what gets swapped")
    everything = pools[0] + pools[1]
    rng = np.random.default_rng(seed)
    rows: list[dict] = []

    def write(split: str, name: str, encoded: bytes, label: int, kind: str, source: str, info: dict,
              mask: np.ndarray | None = None) -> None:
        rows.append(write_set_image(out, split, split, name, encoded, ".jpg", label, kind, source, info, mask))

    def pick(pool: list[SaveProfile]) -> SaveProfile:
        return pool[int(rng.integers(len(pool)))]

    for photo, split in tqdm(list(zip(photos, splits)), desc="real photos"):
        kind = "spliced" if photo.label else "authentic"
        stem = photo.path.stem
        write(split, f"{stem}__original", photo.path.read_bytes(), photo.label, kind, photo.path.name,
              {"final": "original"})
        if not debias:
            continue
        rgb = read_rgb(photo.path)
        swapped = pick(pools[1 - photo.label])
        write(split, f"{stem}__swap", encode_with_profile(rgb, swapped), photo.label, kind, photo.path.name,
              {"final": "resave", "profile": swapped.source})
        if photo.label == 0:
            extra = pick(pools[1])  # authentic photos get four last saves, half of them tampered-like
            write(split, f"{stem}__resave", encode_with_profile(rgb, extra), 0, kind, photo.path.name,
                  {"final": "resave", "profile": extra.source})
            # The tampered photos' chain re-saved with an authentic profile: an edit's save, then
            # a share's. Without this the history "coarse save, then a finer one" means tampered.
            edited_like, shared_like = pick(pools[1]), pick(pools[0])
            twice = encode_with_profile(decode_jpeg(encode_with_profile(rgb, edited_like)), shared_like)
            write(split, f"{stem}__twice", twice, 0, kind, photo.path.name,
                  {"final": "resave twice", "profile": [edited_like.source, shared_like.source]})

    authentic = {split: [p for p, s in zip(photos, splits) if s == split and p.label == 0] for split in ("train", "val")}
    for index in tqdm(range(synth_count), desc="synthesized forgeries"):
        split = "val" if rng.random() < val_fraction and len(authentic["val"]) >= 2 else "train"
        pool = authentic[split]
        host_photo = pool[int(rng.integers(len(pool)))]
        copy_move = index % 2 == 1
        donor_photo = None
        if not copy_move:
            donor_photo = host_photo
            while donor_photo.path == host_photo.path:
                donor_photo = pool[int(rng.integers(len(pool)))]
        image, mask = synthesize_forgery(read_rgb(host_photo.path),
                                         None if donor_photo is None else read_rgb(donor_photo.path), rng)
        profile = pick(everything if debias else pools[1])
        encoded, chain = encode_with_profile(image, profile), [profile.source]
        if debias and rng.random() < 0.5:  # shared after the edit, as the authentic photos' second chain
            second = pick(pools[1 - profile.label])
            encoded, chain = encode_with_profile(decode_jpeg(encoded), second), chain + [second.source]
        kind = "copymove" if copy_move else "spliced"
        write(split, f"synth_{index:05d}", encoded, int(mask.any()), f"synth-{kind}", host_photo.path.name,
              {"final": "resave", "profile": chain, "donor": donor_photo.path.name if donor_photo else None}, mask)

    manifest = out / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "image", "mask", "label", "kind", "source", "info"])
        writer.writeheader()
        writer.writerows(rows)
    counts = {s: {"images": sum(r["split"] == s for r in rows), "tampered": sum(r["split"] == s and r["label"] == 1 for r in rows)}
              for s in ("train", "val")}
    (out / "set.json").write_text(json.dumps({"labels": str(Path(labels_csv).resolve()), "seed": seed,
                                              "synth_count": synth_count, "val_fraction": val_fraction,
                                              "debias": debias, "counts": counts}, indent=2))
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", required=True, help="image,label CSV (paths relative to it)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--synth", type=int, default=400, help="forgeries synthesized from the authentic photos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    parser.add_argument("--debias", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    print(build_set(args.labels, args.out, args.synth, args.seed, args.val_fraction, args.debias))


if __name__ == "__main__":
    main()
