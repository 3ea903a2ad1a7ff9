"""The weak training set with every kind of forgery, labels only, the compression shortcut closed.

``python -m training.weak_set --labels ../shared/data/casia1-train.csv --out data_cache/weak_set``

It extends :mod:`training.casia_set` (the labelled photos as they are, re-saved with the other
class's JPEG save profiles, the authentic "twice" chain, and its profile-saved splices and
copy-moves) with what the product meets beyond CASIA-style JPEG splices:

* forgeries synthesized from authentic photos (the labels CSV's authentic ones, BSDS500 and
  Kodak), one per :data:`KINDS`: a splice from another photo, a copy-move within the photo
  (rotated, scaled or mirrored), object removals by OpenCV's inpainting (Telea, Navier-Stokes)
  and by a patch-based fill (tiles copied from elsewhere in the photo, each chosen to match a
  diffusion fill), and a paste resampled off the grid (a non-integer scale and an offset that
  is not a multiple of 8);
* each forgery saved as JPEG at a quality drawn from 60-100, as PNG or as TIFF, then passed
  through a platform chain (:data:`CHAINS`: nothing, a recompression, a resize by 0.5-1.0 with a
  recompression, or a resize alone);
* its host, untouched, saved with the SAME format and quality and passed through the SAME
  chain as an authentic image: the two classes of the synthesized part differ only by the
  edit, so neither the save nor the chain says which is which;
* copies of the labelled set's images passed through the platform chains, the same share of each
  class and the chain types round-robin per class, so both classes get the same distribution of
  chains (a resized CASIA splice is what a fact-checker receives; without these, "resized" would
  mean "synthesized"); the synthesized pairs are processed at the same overall share.

Everything goes into one ``manifest.csv`` in :mod:`training.synth`'s format; every row's
``info`` has ``kind``, ``save`` and ``chain``. Masks are written for the synthesized forgeries
(for inspection) and never read in training. The split is by photo: labelled photos follow
:mod:`training.casia_set`'s photo-id groups, BSDS500/Kodak photos a hash of their names.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from training import casia_set
from training.synth import (
    default_data_root, list_sources, load_segmentation, paste, pick_region, random_blob, split_of,
    transform_patch,
)

#: Synthesized forgery kinds, generated in this cycle order.
KINDS = ("splice", "copymove", "removal-telea", "removal-ns", "removal-patch", "offgrid-paste")
#: Platform chains. A processed image gets one of the last three, drawn round-robin from a shuffled
#: :data:`PROCESSED_CYCLE` (resizing with recompression, what sharing does most, half the time).
CHAINS = ("none", "recompress", "resize+recompress", "resize")
PROCESSED_CYCLE = ("recompress", "recompress", "resize+recompress", "resize+recompress", "resize+recompress", "resize")
#: How a synthesized pair is first saved.
SAVES = ("jpeg", "jpeg", "jpeg", "jpeg", "png", "png", "tiff")
SAVE_QUALITY = (60, 100)
RECOMPRESS_QUALITY = (60, 95)
RESIZE_RANGE = (0.5, 1.0)
#: Removed objects are smaller than pasted ones: a diffusion fill of a quarter of the photo is a smear.
REMOVAL_AREA = (0.01, 0.08)
FIELDS = ["split", "image", "mask", "label", "kind", "source", "info"]


class ChainCycle:
    """Chains for a stream of images: exactly ``round(processed_share * n)`` of the first n are
    processed (an error-diffusion count with a random phase), their types round-robin over a
    shuffled :data:`PROCESSED_CYCLE`. Two streams with the same share get each chain type within
    a couple of images of the same count, so a chain type never tells one stream from the other."""

    def __init__(self, rng: np.random.Generator, processed_share: float = 1.0) -> None:
        if not 0.0 <= processed_share <= 1.0:
            raise ValueError(f"processed_share must be in [0, 1], got {processed_share}")
        self.rng, self.share, self.queue = rng, float(processed_share), []
        self.credit = float(rng.random())

    def next(self) -> str:
        self.credit += self.share
        if self.credit < 1.0:
            return "none"
        self.credit -= 1.0
        if not self.queue:
            self.queue = list(self.rng.permutation(PROCESSED_CYCLE))
        return str(self.queue.pop())


# --------------------------------------------------------------------------- encoding


def encode(rgb: np.ndarray, save: str, quality: int = 90) -> tuple[bytes, str]:
    """``(bytes, extension)`` of ``rgb`` as a 4:2:0 JPEG at ``quality``, a PNG or a TIFF."""
    buffer = io.BytesIO()
    image = Image.fromarray(rgb)
    if save == "jpeg":
        image.save(buffer, "JPEG", quality=int(quality), subsampling=2)
        return buffer.getvalue(), ".jpg"
    if save == "png":
        image.save(buffer, "PNG")
        return buffer.getvalue(), ".png"
    if save == "tiff":
        image.save(buffer, "TIFF")
        return buffer.getvalue(), ".tif"
    raise ValueError(f"unknown save {save!r}")


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def apply_chain(data: bytes, ext: str, chain: str, rng: np.random.Generator) -> tuple[bytes, str, dict]:
    """A platform's processing of an encoded photo: ``(bytes, extension, what was done)``."""
    if chain == "none":
        return data, ext, {}
    rgb = decode(data)
    info: dict = {}
    if chain in ("resize", "resize+recompress"):
        factor = float(rng.uniform(*RESIZE_RANGE))
        h, w = rgb.shape[:2]
        size = (max(32, int(round(w * factor))), max(32, int(round(h * factor))))
        method = ("area", "linear", "cubic")[int(rng.integers(3))]
        rgb = cv2.resize(rgb, size, interpolation={"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR,
                                                   "cubic": cv2.INTER_CUBIC}[method])
        info.update(resize=round(factor, 3), interpolation=method)
    if chain == "resize":
        out, out_ext = encode(rgb, "png")
        return out, out_ext, info
    quality = int(rng.integers(RECOMPRESS_QUALITY[0], RECOMPRESS_QUALITY[1] + 1))
    out, out_ext = encode(rgb, "jpeg", quality)
    return out, out_ext, {**info, "recompress": quality}


# --------------------------------------------------------------------------- forgeries


def _region(source_rgb: np.ndarray, segmentation, rng: np.random.Generator) -> np.ndarray:
    return pick_region(segmentation, source_rgb.shape[:2], rng)


def _small_blob(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    for _ in range(10):
        mask = random_blob(shape, rng)
        if REMOVAL_AREA[0] <= mask.mean() <= REMOVAL_AREA[1]:
            return mask
    # Shrink the last blob around its centre until it is small enough.
    kernel = np.ones((5, 5), np.uint8)
    while mask.mean() > REMOVAL_AREA[1]:
        mask = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
    return mask


def patch_fill(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, tile: int = 16,
               candidates: int = 24) -> np.ndarray:
    """Fill ``mask`` tile by tile with tiles copied from outside it (a clone-stamp / exemplar fill).

    Each tile's source is the best of ``candidates`` random unmasked positions by squared
    difference to a Telea fill of the same photo, which carries the surrounding structure in.
    """
    guide = cv2.inpaint(rgb, mask.astype(np.uint8), 5, cv2.INPAINT_TELEA).astype(np.float32)
    out = rgb.copy()
    h, w = mask.shape
    free = ~cv2.dilate(mask.astype(np.uint8), np.ones((tile, tile), np.uint8)).astype(bool)
    ys, xs = np.nonzero(free[: h - tile, : w - tile])
    if ys.size == 0:
        return guide.astype(np.uint8)
    top0, left0 = np.nonzero(mask)[0].min(), np.nonzero(mask)[1].min()
    for top in range(top0, h, tile):
        for left in range(left0, w, tile):
            cell = mask[top : top + tile, left : left + tile]
            if not cell.any():
                continue
            th, tw = cell.shape
            target = guide[top : top + th, left : left + tw]
            picks = rng.integers(ys.size, size=candidates)
            best, best_cost = None, np.inf
            for k in picks:
                sy, sx = int(ys[k]), int(xs[k])
                source = rgb[sy : sy + th, sx : sx + tw].astype(np.float32)
                cost = float(((source - target) ** 2).mean())
                if cost < best_cost:
                    best, best_cost = (sy, sx), cost
            sy, sx = best
            out[top : top + th, left : left + tw][cell] = rgb[sy : sy + th, sx : sx + tw][cell]
    # A light blend along the seam, as clone tools feather their brush.
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)[..., None]
    blended = out.astype(np.float32) * np.maximum(alpha, mask[..., None]) + rgb.astype(np.float32) * (
        1 - np.maximum(alpha, mask[..., None]))
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def offgrid_paste(host: np.ndarray, donor: np.ndarray, region: np.ndarray, rng: np.random.Generator):
    """``region`` of ``donor`` resampled by a non-integer scale with a sub-pixel shift, pasted at a
    position that is not a multiple of 8: whatever JPEG grid the donor had no longer aligns."""
    ys, xs = np.nonzero(region)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    patch, alpha = donor[top:bottom, left:right], region[top:bottom, left:right].astype(np.float32)
    scale = float(rng.choice([rng.uniform(0.6, 0.92), rng.uniform(1.08, 1.5)]))
    fit = min(1.0, 0.9 * host.shape[0] / (patch.shape[0] * scale), 0.9 * host.shape[1] / (patch.shape[1] * scale))
    scale *= fit
    shift = rng.uniform(0.1, 0.9, 2)
    matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float32)
    size = (max(4, int(patch.shape[1] * scale)), max(4, int(patch.shape[0] * scale)))
    flags = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)[int(rng.integers(3))]
    patch = cv2.warpAffine(patch, matrix, size, flags=flags, borderMode=cv2.BORDER_REFLECT)
    alpha = cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    ph, pw = alpha.shape
    height, width = host.shape[:2]
    for _ in range(20):
        y, x = int(rng.integers(0, height - ph + 1)), int(rng.integers(0, width - pw + 1))
        if y % 8 and x % 8:
            break
    sigma = float(rng.uniform(0.3, 1.5))
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None]
    out = host.astype(np.float32)
    out[y : y + ph, x : x + pw] = out[y : y + ph, x : x + pw] * (1 - alpha) + patch.astype(np.float32) * alpha
    mask = np.zeros(host.shape[:2], bool)
    mask[y : y + ph, x : x + pw] = alpha[..., 0] >= 0.5
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask, {"scale": round(scale, 3), "offset": [y, x]}


def make_forgery(kind: str, host: np.ndarray, host_seg, donor: np.ndarray | None, donor_seg,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(image, mask, info)`` of one :data:`KINDS` forgery of ``host``."""
    if kind == "splice":
        region = _region(donor, donor_seg, rng)
        patch, alpha = transform_patch(donor, region, rng, host.shape[:2])
        image, mask = paste(host, patch, alpha, rng)
        return image, mask, {}
    if kind == "copymove":
        region = _region(host, host_seg, rng)
        source = host
        flip = bool(rng.random() < 0.35)
        if flip:  # mirrored clone: the region cut from the mirrored photo, mirrored back in place
            source, region = host[:, ::-1].copy(), region[:, ::-1].copy()
        patch, alpha = transform_patch(source, region, rng, host.shape[:2])
        ys, xs = np.nonzero(region)
        image, mask = paste(host, patch, alpha, rng, avoid=(int(ys.min()), int(xs.min())))
        return image, mask, {"flip": flip}
    if kind.startswith("removal-"):
        mask = _small_blob(host.shape[:2], rng)
        radius = int(rng.integers(3, 8))
        if kind == "removal-telea":
            image = cv2.inpaint(host, mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
        elif kind == "removal-ns":
            image = cv2.inpaint(host, mask.astype(np.uint8), radius, cv2.INPAINT_NS)
        else:
            image = patch_fill(host, mask, rng)
        return image, mask, {}
    if kind == "offgrid-paste":
        region = _region(donor, donor_seg, rng)
        return offgrid_paste(host, donor, region, rng)
    raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")


# --------------------------------------------------------------------------- the set


class _Source:
    def __init__(self, name: str, path: Path, split: str, segmentation_path: Path | None = None) -> None:
        self.name, self.path, self.split, self.segmentation_path = name, path, split, segmentation_path

    def rgb(self) -> np.ndarray:
        return casia_set.read_rgb(self.path)

    def segmentation(self, rng):
        if self.segmentation_path is None:
            return None
        from training.synth import SourcePhoto

        return load_segmentation(SourcePhoto(self.name, self.path, self.segmentation_path), rng)


def host_pool(labels_csv: str | Path, data_root: str | Path | None, val_fraction: float,
              extra_sources: bool = True) -> list[_Source]:
    """Authentic photos to synthesize from: the labels CSV's (split as :mod:`training.casia_set`
    splits them) plus, with ``extra_sources``, BSDS500 and Kodak under ``data_root`` if present."""
    photos = casia_set.read_labels(labels_csv)
    groups = casia_set.group_by_photo(photos)
    keys = {g: "+".join(sorted({i for p, q in zip(photos, groups) if q == g for i in p.ids})) for g in set(groups)}
    split = casia_set.split_groups(keys, val_fraction)
    pool = [_Source(f"labels/{p.path.name}", p.path, split[g]) for p, g in zip(photos, groups) if p.label == 0]
    if extra_sources:
        try:
            sources = list_sources(data_root or default_data_root())
        except FileNotFoundError:
            sources = []
        for s in sources:
            pool.append(_Source(s.name, s.image_path, split_of(s.name, val_fraction, 0.0), s.segmentation_path))
    return pool


def build_weak_set(labels_csv: str | Path, out_dir: str | Path, synth_pairs: int = 600, labels_synth: int = 600,
                   seed: int = 0, val_fraction: float = casia_set.VAL_FRACTION, data_root: str | Path | None = None,
                   kinds: Sequence[str] = KINDS, chained_fraction: float = 0.5, extra_sources: bool = True) -> Path:
    """Write the set (see the module docstring); returns its ``manifest.csv``.

    Args:
        synth_pairs: synthesized forgeries, each with its untouched host as an authentic twin.
        labels_synth: :mod:`training.casia_set`'s own profile-saved forgeries.
        kinds: the synthesized kinds (a subset for the ablation "without kind X").
        chained_fraction: share of each class's labelled-set images that get one more copy through a
            platform chain.
    """
    from tqdm import tqdm

    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")
    if not kinds and synth_pairs:
        raise ValueError("synth_pairs needs at least one kind")
    out = Path(out_dir)
    manifest = casia_set.build_set(labels_csv, out, labels_synth, seed, val_fraction, debias=True)
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # the casia_set rows: last saved as they say, no platform chain
        info = json.loads(row["info"])
        info.setdefault("chain", "none")
        info.setdefault("save", "jpeg")
        row["info"] = json.dumps(info, sort_keys=True)
    (out / "platform").mkdir(exist_ok=True)
    (out / "synth").mkdir(exist_ok=True)
    for stale in [*(out / "platform").iterdir(), *(out / "synth").iterdir()]:
        stale.unlink()
    rng = np.random.default_rng([seed, 18])

    def add(split: str, folder: str, name: str, data: bytes, ext: str, label: int, kind: str, source: str,
            info: dict, mask: np.ndarray | None = None) -> None:
        rows.append(casia_set.write_set_image(out, split, folder, name, data, ext, label, kind, source, info, mask))

    # The labelled set's images through platform chains: the same share of each class's rows
    # (exactly, so "processed" cannot mean either class) and the same chain cycle.
    base = list(rows)
    for label in (0, 1):
        members = [r for r in base if int(r["label"]) == label]
        chosen = rng.permutation(len(members))[: int(round(chained_fraction * len(members)))]
        cycle = ChainCycle(rng)  # every copy processed: an unprocessed one would be the same image again
        for k in tqdm(sorted(chosen), desc=f"platform copies, label {label}"):
            row = members[k]
            chain = cycle.next()
            shared, ext, done = apply_chain((out / row["image"]).read_bytes(), ".jpg", chain, rng)
            add(row["split"], "platform", Path(row["image"]).stem + "__platform", shared, ext, label, row["kind"],
                row["source"], {"save": "jpeg", "chain": chain, "from": row["image"], **done})

    pool = host_pool(labels_csv, data_root, val_fraction, extra_sources)
    by_split = {s: [p for p in pool if p.split == s] for s in ("train", "val")}
    # The pairs are processed at the labelled part's share (copies / (images + copies)), so that the
    # two parts, which hold the classes in different proportions, have the same chain mix.
    pair_cycle = ChainCycle(rng, chained_fraction / (1.0 + chained_fraction))
    for index in tqdm(range(synth_pairs), desc="synthesized pairs"):
        split = "val" if rng.random() < val_fraction and len(by_split["val"]) >= 2 else "train"
        hosts = by_split[split]
        kind = kinds[index % len(kinds)]
        host = hosts[int(rng.integers(len(hosts)))]
        donor = None
        if kind in ("splice", "offgrid-paste"):
            donor = host
            while donor is host:
                donor = hosts[int(rng.integers(len(hosts)))]
        host_rgb = host.rgb()
        donor_rgb = donor.rgb() if donor is not None else None
        image, mask, extra = make_forgery(kind, host_rgb, host.segmentation(rng), donor_rgb,
                                          donor.segmentation(rng) if donor is not None else None, rng)
        save = SAVES[int(rng.integers(len(SAVES)))]
        quality = int(rng.integers(SAVE_QUALITY[0], SAVE_QUALITY[1] + 1))
        chain = pair_cycle.next()
        # One draw of the chain's randomness per pair, replayed for both twins.
        chain_seed = int(rng.integers(2**31))
        common = {"save": save, **({"quality": quality} if save == "jpeg" else {}), "chain": chain}
        for label, rgb in ((1, image), (0, host_rgb)):
            data, ext = encode(rgb, save, quality)
            data, ext, done = apply_chain(data, ext, chain, np.random.default_rng(chain_seed))
            info = {**common, **done, "pair": index, "host": host.name}
            if label:
                add(split, "synth", f"pair{index:05d}_{kind}", data, ext, 1, f"synth-{kind}", host.name,
                    {**info, **extra, "donor": donor.name if donor is not None else None},
                    _resized_mask(mask, decode(data).shape[:2]))
            else:
                add(split, "synth", f"pair{index:05d}_authentic", data, ext, 0, "authentic", host.name, info)

    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    meta = json.loads((out / "set.json").read_text())
    counts = {s: {"images": sum(r["split"] == s for r in rows),
                  "tampered": sum(r["split"] == s and int(r["label"]) == 1 for r in rows)} for s in ("train", "val")}
    kinds_count = {}
    for r in rows:
        kinds_count[r["kind"]] = kinds_count.get(r["kind"], 0) + 1
    meta.update(weak_set={"synth_pairs": synth_pairs, "kinds": list(kinds), "chained_fraction": chained_fraction,
                          "extra_sources": extra_sources, "hosts": len(pool), "kinds_count": kinds_count},
                counts=counts)
    (out / "set.json").write_text(json.dumps(meta, indent=2))
    return manifest


def _resized_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", required=True, help="image,label CSV (paths relative to it)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--pairs", type=int, default=600, help="synthesized forgeries (each with an authentic twin)")
    parser.add_argument("--labels-synth", type=int, default=600, help="training.casia_set's own forgeries")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--data", help="shared data root with bsds500/ and kodak/ (default $WSLOC_DATA or ../shared/data)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_weak_set(args.labels, args.out, args.pairs, args.labels_synth, args.seed, data_root=args.data,
                         kinds=args.kinds))


if __name__ == "__main__":
    main()
