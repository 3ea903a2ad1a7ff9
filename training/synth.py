"""Deterministic synthesizer of spliced, copy-moved and authentic training images.

Sources are the BSDS500 photos (JPEG, with human segmentations that give
object-shaped regions) and the Kodak photos (lossless, never compressed). Every
sample follows one JPEG processing chain, whatever its label, so that compression
alone cannot give the label away:

1. host history: the source photo, optionally rescaled (Kodak), optionally JPEG
   compressed at ``q_host``;
2. authentic: nothing more, or a whole-image decoy edit (a second JPEG pass or a
   global brightness change) that forgeries do not get;
   spliced: an object cut from ANOTHER photo of the same split, compressed at its own
   ``q_donor``, rotated / scaled / brightness-shifted, pasted with feathered edges;
   copy-moved: an object cut from the host itself, optionally re-compressed alone,
   rotated / scaled, pasted elsewhere at a grid-misaligned offset;
3. final save: lossless PNG or JPEG at ``q_final``.

Each sample ``i`` draws from ``numpy.random.default_rng([seed, i])`` only, so a
sample is identical whatever the number of worker processes or the order of
generation. The split (train / val / test) is decided per SOURCE PHOTO by a hash of
its name: a photo and every object cut from it stay on one side.

Masks (``uint8``, 255 = manipulated) are written for evaluation only; training uses
image-level labels.

Command line: ``python -m training.synth --out data_cache/synth --train 3000 --val 400 --test 600``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

SPLITS = ("train", "val", "test")
KINDS = ("authentic", "spliced", "copymove")
#: Sample kinds in generation order: half authentic, so the image-level classes are balanced.
KIND_CYCLE = ("authentic", "spliced", "authentic", "copymove")
#: Manipulated regions cover this fraction of the image.
REGION_AREA_RANGE = (0.015, 0.25)
#: Fraction of samples saved losslessly (PNG) at the end.
LOSSLESS_FRACTION = 0.4
#: Final JPEG quality range (inclusive). SEL re-encodes at q90, and an image last saved
#: at a quality near or below 90 re-encodes almost unchanged: its SEL is near zero
#: everywhere and carries no trace of the edit (measured: image-level AUC ~0.5 for
#: q_final 75..91 against ~0.85 for PNG and q_final >= 92 after two epochs). Such
#: samples only add label noise, so the default set ends with lossless or q >= 93 saves.
FINAL_QUALITY_RANGE = (93, 100)
REPO_ROOT = Path(__file__).resolve().parents[1]


def default_data_root() -> Path:
    """``$WSLOC_DATA`` if set, else ``../shared/data`` next to the repository."""
    env = os.environ.get("WSLOC_DATA")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data").resolve()


@dataclass(frozen=True)
class SourcePhoto:
    """One source photo: ``name`` is unique (``bsds/<id>`` or ``kodak/<stem>``)."""

    name: str
    image_path: Path
    segmentation_path: Path | None


def list_sources(data_root: str | os.PathLike) -> list[SourcePhoto]:
    """All BSDS500 and Kodak photos under ``data_root``, sorted by name.

    Raises:
        FileNotFoundError: neither ``bsds500/images`` nor ``kodak`` exists.
    """
    root = Path(data_root)
    sources: list[SourcePhoto] = []
    for image in sorted((root / "bsds500" / "images").glob("*/*.jpg")):
        seg = root / "bsds500" / "groundTruth" / image.parent.name / f"{image.stem}.mat"
        sources.append(SourcePhoto(f"bsds/{image.stem}", image, seg if seg.is_file() else None))
    for image in sorted((root / "kodak").glob("*.png")):
        sources.append(SourcePhoto(f"kodak/{image.stem}", image, None))
    if not sources:
        raise FileNotFoundError(f"no BSDS500 or Kodak photos under {root}")
    return sorted(sources, key=lambda s: s.name)


def split_of(source_name: str, val_fraction: float = 0.1, test_fraction: float = 0.15) -> str:
    """Deterministic split of a source photo by a hash of its name (not of the seed)."""
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions val={val_fraction} test={test_fraction}")
    u = int.from_bytes(hashlib.sha256(source_name.encode()).digest()[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def sources_by_split(sources: Sequence[SourcePhoto], val_fraction: float = 0.1, test_fraction: float = 0.15):
    """``{split: [SourcePhoto, ...]}`` for the three splits."""
    groups: dict[str, list[SourcePhoto]] = {s: [] for s in SPLITS}
    for source in sources:
        groups[split_of(source.name, val_fraction, test_fraction)].append(source)
    return groups


# --------------------------------------------------------------------------- image ops


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    """Baseline 4:2:0 JPEG encoding, the kind cameras and editors write."""
    ok, data = cv2.imencode(
        ".jpg",
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420],
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def decode(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    return decode(jpeg_bytes(rgb, quality))


def read_segmentations(mat_path: str | os.PathLike) -> list[np.ndarray]:
    """All human segmentations (``uint16`` label maps) of a BSDS500 ``groundTruth`` ``.mat`` file."""
    import scipy.io

    truth = scipy.io.loadmat(str(mat_path))["groundTruth"]
    return [np.asarray(truth[0, k]["Segmentation"][0, 0]) for k in range(truth.shape[1])]


def load_segmentation(source: SourcePhoto, rng: np.random.Generator) -> np.ndarray | None:
    """One randomly chosen human segmentation (``uint16`` label map) or ``None``."""
    if source.segmentation_path is None:
        return None
    maps = read_segmentations(source.segmentation_path)
    return maps[int(rng.integers(len(maps)))]


def random_blob(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An irregular polygon mask (``bool``) for photos without segmentations."""
    height, width = shape
    area = rng.uniform(*REGION_AREA_RANGE) * height * width
    radius = np.sqrt(area / np.pi)
    cy, cx = rng.uniform(radius, height - radius), rng.uniform(radius, width - radius)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(6, 14))))
    radii = radius * rng.uniform(0.6, 1.4, angles.size)
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).round().astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [points], 1)
    return mask.astype(bool)


def pick_region(segmentation: np.ndarray | None, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A ``bool`` object mask: a human-segmented region of suitable area, else a random blob."""
    if segmentation is not None and segmentation.shape == shape:
        counts = np.bincount(segmentation.ravel())
        fraction = counts / segmentation.size
        candidates = np.flatnonzero((fraction >= REGION_AREA_RANGE[0]) & (fraction <= REGION_AREA_RANGE[1]))
        if candidates.size:
            return segmentation == candidates[int(rng.integers(candidates.size))]
    return random_blob(shape, rng)


def transform_patch(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, max_size: tuple[int, int]):
    """Cut ``mask``'s bounding box from ``image``, rotate and scale it.

    Returns ``(patch uint8 [h, w, 3], alpha float32 [h, w] in [0, 1])`` that fits in ``max_size``.
    """
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    patch = image[top:bottom, left:right]
    alpha = mask[top:bottom, left:right].astype(np.float32)
    angle = float(rng.uniform(-30, 30)) if rng.random() < 0.6 else 0.0
    scale = float(rng.uniform(0.7, 1.3)) if rng.random() < 0.6 else 1.0
    h, w = alpha.shape
    # Shrink if the rotated box would not fit in 90% of the host.
    rad = np.deg2rad(abs(angle))
    out_w = (w * np.cos(rad) + h * np.sin(rad)) * scale
    out_h = (w * np.sin(rad) + h * np.cos(rad)) * scale
    fit = min(1.0, 0.9 * max_size[0] / out_h, 0.9 * max_size[1] / out_w)
    scale *= fit
    out_w, out_h = max(2, int(np.ceil(out_w * fit))), max(2, int(np.ceil(out_h * fit)))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += (out_w / 2 - w / 2, out_h / 2 - h / 2)
    if angle == 0.0 and scale == 1.0:
        return patch.copy(), alpha
    patch = cv2.warpAffine(patch, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    alpha = cv2.warpAffine(alpha, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)
    return patch, alpha


def paste(host: np.ndarray, patch: np.ndarray, alpha: np.ndarray, rng: np.random.Generator,
          avoid: tuple[int, int] | None = None):
    """Alpha-blend ``patch`` into ``host`` at a random position with feathered edges.

    Returns ``(image uint8, mask bool)``; ``avoid`` is a ``(top, left)`` that copy-move
    should not land on (the region would cover its own source).
    """
    height, width = host.shape[:2]
    ph, pw = alpha.shape
    sigma = float(rng.uniform(0.0, 2.5))
    if sigma > 0.3:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    gain, bias = float(rng.uniform(0.85, 1.15)), float(rng.uniform(-12, 12))
    if rng.random() < 0.5:
        patch = np.clip(patch.astype(np.float32) * gain + bias, 0, 255)
    top = left = 0
    for _ in range(20):
        top, left = int(rng.integers(0, height - ph + 1)), int(rng.integers(0, width - pw + 1))
        if avoid is None or abs(top - avoid[0]) > ph // 2 or abs(left - avoid[1]) > pw // 2:
            break
    out = host.astype(np.float32)
    region = out[top : top + ph, left : left + pw]
    a = alpha[..., None]
    out[top : top + ph, left : left + pw] = region * (1 - a) + patch.astype(np.float32) * a
    mask = np.zeros((height, width), bool)
    mask[top : top + ph, left : left + pw] = alpha >= 0.5
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask


def _different_quality(rng: np.random.Generator, other: int | None) -> int:
    while True:
        q = int(rng.integers(55, 99))
        if other is None or abs(q - other) >= 8:
            return q


# --------------------------------------------------------------------------- one sample


@dataclass(frozen=True)
class Sample:
    """A synthesized image as written to disk.

    Attributes:
        encoded: the file's bytes (``.png`` or ``.jpg``, see ``extension``).
        mask: ``bool`` ``[H, W]``, True where manipulated (all False if authentic).
        label: 1 manipulated, 0 authentic.
        info: the random choices, for the manifest.
    """

    encoded: bytes
    extension: str
    mask: np.ndarray
    label: int
    info: dict


def _host_history(source: SourcePhoto, rng: np.random.Generator, info: dict) -> np.ndarray:
    image = read_rgb(source.image_path)
    if source.segmentation_path is None and rng.random() < 0.7:
        # Kodak is 768x512; rescaling (a lossless operation here) varies sizes and content scale.
        factor = float(rng.uniform(0.5, 1.0))
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        info["host_rescale"] = round(factor, 3)
    if rng.random() < 0.8:
        info["q_host"] = int(rng.integers(60, 99))
        image = jpeg(image, info["q_host"])
    return image


def make_sample(
    seed: int,
    index: int,
    split_sources: Sequence[SourcePhoto],
    final_quality: tuple[int, int] = FINAL_QUALITY_RANGE,
    lossless_fraction: float = LOSSLESS_FRACTION,
) -> Sample:
    """Sample ``index`` of the stream ``seed``, drawn from ``split_sources`` only.

    ``final_quality`` is the inclusive range of the final JPEG quality; a
    ``lossless_fraction`` of samples are saved as PNG instead.
    """
    if not (1 <= final_quality[0] <= final_quality[1] <= 100 and 0.0 <= lossless_fraction <= 1.0):
        raise ValueError(f"bad final save settings {final_quality}, {lossless_fraction}")
    if len(split_sources) < 2:
        raise ValueError("a split needs at least two source photos (splicing takes a donor)")
    rng = np.random.default_rng([int(seed), int(index)])
    kind = KIND_CYCLE[index % len(KIND_CYCLE)]
    host_source = split_sources[int(rng.integers(len(split_sources)))]
    info: dict = {"kind": kind, "host": host_source.name}
    image = _host_history(host_source, rng, info)
    shape = image.shape[:2]
    mask = np.zeros(shape, bool)

    if kind == "authentic":
        decoy = rng.random()
        if decoy < 0.3:
            info["q_decoy"] = _different_quality(rng, info.get("q_host"))
            image = jpeg(image, info["q_decoy"])
        elif decoy < 0.5:
            image = np.clip(image.astype(np.float32) * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8), 0, 255).astype(np.uint8)
            info["decoy"] = "brightness"
    elif kind == "spliced":
        donor_source = host_source
        while donor_source.name == host_source.name:
            donor_source = split_sources[int(rng.integers(len(split_sources)))]
        info["donor"] = donor_source.name
        donor = read_rgb(donor_source.image_path)
        region = pick_region(load_segmentation(donor_source, rng), donor.shape[:2], rng)
        if rng.random() < 0.85:
            info["q_donor"] = _different_quality(rng, info.get("q_host"))
            donor = jpeg(donor, info["q_donor"])
        patch, alpha = transform_patch(donor, region, rng, shape)
        image, mask = paste(image, patch, alpha, rng)
    else:  # copymove
        region = pick_region(load_segmentation(host_source, rng), shape, rng)
        source_image = image
        if rng.random() < 0.5:
            info["q_donor"] = _different_quality(rng, info.get("q_host"))
            source_image = jpeg(image, info["q_donor"])
        ys, xs = np.nonzero(region)
        patch, alpha = transform_patch(source_image, region, rng, shape)
        image, mask = paste(image, patch, alpha, rng, avoid=(int(ys.min()), int(xs.min())))

    if rng.random() < lossless_fraction:
        ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        encoded, extension = data.tobytes(), ".png"
    else:
        info["q_final"] = int(rng.integers(final_quality[0], final_quality[1] + 1))
        encoded, extension = jpeg_bytes(image, info["q_final"]), ".jpg"
    label = int(mask.any())
    if kind != "authentic" and not label:
        info["note"] = "region vanished after feathering"
    return Sample(encoded, extension, mask, label, info)


# --------------------------------------------------------------------------- writing a set


def _write_one(job) -> dict:
    seed, index, split, sources, out_dir, final_quality, lossless_fraction = job
    sample = make_sample(seed, index, sources, final_quality, lossless_fraction)
    name = f"{split}_{index:05d}"
    image_path = out_dir / split / f"{name}{sample.extension}"
    mask_path = out_dir / split / f"{name}_mask.png"
    image_path.write_bytes(sample.encoded)
    cv2.imwrite(str(mask_path), sample.mask.astype(np.uint8) * 255)
    return {
        "split": split,
        "image": str(image_path.relative_to(out_dir)),
        "mask": str(mask_path.relative_to(out_dir)),
        "label": sample.label,
        "kind": sample.info["kind"],
        "source": sample.info["host"],
        "info": json.dumps(sample.info, sort_keys=True),
    }


def synthesize(
    data_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    counts: dict[str, int],
    seed: int = 0,
    workers: int = 2,
    val_fraction: float = 0.1,
    test_fraction: float = 0.15,
    final_quality: tuple[int, int] = FINAL_QUALITY_RANGE,
    lossless_fraction: float = LOSSLESS_FRACTION,
) -> Path:
    """Write ``counts[split]`` samples per split under ``out_dir/<split>/`` and ``out_dir/manifest.csv``.

    Each split uses its own seed stream (``seed * 10 + split index``) so that changing
    one split's count leaves the others' samples unchanged.

    Returns:
        The manifest path. Columns: split, image, mask, label, kind, source, info.
    """
    out = Path(out_dir)
    groups = sources_by_split(list_sources(data_root), val_fraction, test_fraction)
    jobs = []
    for split_index, split in enumerate(SPLITS):
        if counts.get(split, 0) <= 0:
            continue
        (out / split).mkdir(parents=True, exist_ok=True)
        jobs += [(seed * 10 + split_index, i, split, groups[split], out, tuple(final_quality), lossless_fraction)
                 for i in range(counts[split])]
    from tqdm import tqdm

    if workers > 1:
        with Pool(workers) as pool:
            rows = list(tqdm(pool.imap(_write_one, jobs, chunksize=8), total=len(jobs), desc="synthesize"))
    else:
        rows = [_write_one(job) for job in tqdm(jobs, desc="synthesize")]
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    meta = {"seed": seed, "counts": counts, "val_fraction": val_fraction, "test_fraction": test_fraction,
            "final_quality": list(final_quality), "lossless_fraction": lossless_fraction,
            "sources": {s: len(g) for s, g in groups.items()}}
    (out / "synth.json").write_text(json.dumps(meta, indent=2))
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="shared data root (default $WSLOC_DATA or ../shared/data)")
    parser.add_argument("--out", default=str(REPO_ROOT / "data_cache" / "synth"))
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--test", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--final-quality", type=int, nargs=2, default=list(FINAL_QUALITY_RANGE), metavar=("LOW", "HIGH"))
    parser.add_argument("--lossless-fraction", type=float, default=LOSSLESS_FRACTION)
    args = parser.parse_args(argv)
    manifest = synthesize(args.data or default_data_root(), args.out,
                          {"train": args.train, "val": args.val, "test": args.test}, args.seed, args.workers,
                          final_quality=tuple(args.final_quality), lossless_fraction=args.lossless_fraction)
    print(manifest)


if __name__ == "__main__":
    main()
