"""Training datasets: synthesized sets, CASIA2-layout folders, and their cached input tensors.

A dataset is a list of :class:`Record` (image path, image-level label, optional mask
path). :func:`build_input_cache` turns one into network inputs with THE runtime's code
(:func:`wsloc_runtime.inputs.raw_inputs`): the image is read with
:func:`wsloc_runtime.load_image`, each input feature (signed error levels, JPEG traces) is
computed at native resolution and area-resized to the network input. The unscaled maps
are cached as ``float16`` (SEL lies in [-255, 255] and float16 keeps ~3 significant digits
there, far below the JPEG noise); scaling to the model's range happens when batches are
drawn, with :func:`wsloc_runtime.inputs.scale_input`, so one cache serves every scaling.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from wsloc_runtime.imageio import load_image
from wsloc_runtime.inputs import DEFAULT_INPUT_FEATURES, raw_inputs, scale_input

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
#: Folder names where CASIA2 redistributions keep ground-truth masks.
CASIA_MASK_FOLDERS = ("masks", "mask", "GT", "gt", "Groundtruth", "GroundTruth", "CASIA 2 Groundtruth")


@dataclass(frozen=True)
class Record:
    """One labelled image. ``label``: 1 manipulated, 0 authentic; ``mask`` may be None."""

    image: Path
    label: int
    mask: Path | None = None
    group: str = ""


def read_manifest(manifest: str | os.PathLike, split: str | None = None) -> list[Record]:
    """Records of a synthesized set (see :func:`training.synth.synthesize`), optionally one split."""
    path = Path(manifest)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    records = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if split is None or row["split"] == split:
                mask = path.parent / row["mask"] if row["mask"] else None  # real photos come without masks
                records.append(Record(path.parent / row["image"], int(row["label"]), mask, row["split"]))
    return records


def read_casia_layout(root: str | os.PathLike) -> list[Record]:
    """Records of a CASIA2-style folder: ``root/Au/*`` authentic, ``root/Tp/*`` tampered.

    Masks are optional: for a tampered image ``Tp/<stem>.<ext>`` the first of
    ``<mask folder>/<stem>_gt.png`` (then ``<stem>_gt.*``, ``<stem>.png``) found in
    :data:`CASIA_MASK_FOLDERS` under ``root`` is used. Files that are not images
    (CASIA2 ships ``Thumbs.db``) are skipped.

    Raises:
        FileNotFoundError: ``root`` lacks ``Au`` or ``Tp``, or they hold no images.
    """
    base = Path(root)
    folders = {"Au": 0, "Tp": 1}
    for name in folders:
        if not (base / name).is_dir():
            raise FileNotFoundError(f"{base} is not in CASIA2 layout: no {name}/ folder")
    mask_dirs = [base / m for m in CASIA_MASK_FOLDERS if (base / m).is_dir()]
    records = []
    for name, label in folders.items():
        for image in sorted((base / name).iterdir()):
            if image.suffix.lower() not in IMAGE_EXTENSIONS or not image.is_file():
                continue
            mask = _find_mask(image.stem, mask_dirs) if label else None
            records.append(Record(image, label, mask, name))
    if not records:
        raise FileNotFoundError(f"no images in {base}/Au or {base}/Tp")
    return records


def _find_mask(stem: str, mask_dirs: Sequence[Path]) -> Path | None:
    for folder in mask_dirs:
        for candidate in (folder / f"{stem}_gt.png", *sorted(folder.glob(f"{stem}_gt.*")), folder / f"{stem}.png"):
            if candidate.is_file():
                return candidate
    return None


def _inputs_of(job) -> np.ndarray:
    path, size, quality, features = job
    return raw_inputs(load_image(path), features, [size], quality)[0].astype(np.float16)


def build_input_cache(
    records: Sequence[Record],
    cache_path: str | os.PathLike,
    input_size: tuple[int, int],
    jpeg_quality: int = 90,
    workers: int = 2,
    features: Sequence[str] = DEFAULT_INPUT_FEATURES,
) -> tuple[np.ndarray, np.ndarray]:
    """Resized unscaled input maps of every record, cached in ``cache_path`` (``.npz``).

    The cache is keyed by the records' resolved paths and labels, the size, the SEL
    quality and the features: a stale file is rebuilt.

    Returns:
        ``(inputs float16 [N, H, W, C], labels float32 [N])``.
    """
    if not records:
        raise ValueError("no records to cache")
    size = (int(input_size[0]), int(input_size[1]))
    features = tuple(features)
    key_parts = [[str(Path(r.image).resolve()), r.label] for r in records] + [list(size), int(jpeg_quality)]
    if features != DEFAULT_INPUT_FEATURES:  # SEL-only caches keep the keys they were written with
        key_parts.append(list(features))
    key = hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()
    path = Path(cache_path)
    if path.is_file():
        with np.load(path) as cached:
            if str(cached["key"]) == key:
                return cached["sel"], cached["labels"]
    from tqdm import tqdm

    jobs = [(r.image, size, int(jpeg_quality), features) for r in records]
    if workers > 1:
        with Pool(workers) as pool:
            sel = list(tqdm(pool.imap(_inputs_of, jobs, chunksize=16), total=len(jobs), desc=f"inputs {path.name}"))
    else:
        sel = [_inputs_of(job) for job in tqdm(jobs, desc=f"inputs {path.name}")]
    array = np.stack(sel)
    labels = np.array([r.label for r in records], np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part.npz")
    np.savez(partial, sel=array, labels=labels, key=np.array(key))
    os.replace(partial, path)
    return array, labels


def iterate_batches(
    sel: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    scaling: tuple[str, float, float],
    rng: np.random.Generator | None = None,
    augment: bool = False,
    threads: int = 1,
    features: Sequence[str] = DEFAULT_INPUT_FEATURES,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches ``(x float32 [B, H, W, C], y float32 [B, 1])``, scaled as the model expects.

    Args:
        scaling: SEL's ``(mode, scale, clip)`` for :func:`wsloc_runtime.inputs.scale_input`.
        rng: shuffles when given; ``None`` keeps the order (evaluation).
        augment: random horizontal flips (SEL of a mirrored image is the mirrored SEL
            up to JPEG block alignment, which area-resizing already blurs).
        threads: > 1 scales the images of a batch in a thread pool and prepares the next
            batches while the caller trains on this one (an accelerator consumes batches
            faster than one core scales them). Same batches either way.
        features: the input features stacked in ``sel``'s channels.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = rng.permutation(len(sel)) if rng is not None else np.arange(len(sel))
    mode, scale, clip = scaling
    batches = [np.sort(order[start : start + batch_size]) for start in range(0, len(order), batch_size)]
    # Flips are drawn up front so that the threaded and the serial paths give identical batches.
    flips = [rng.random(len(index)) < 0.5 if augment and rng is not None else None for index in batches]

    def scaled(i: int) -> np.ndarray:
        return scale_input(sel[i], features, mode, scale, clip)

    def make(k: int, pool=None) -> tuple[np.ndarray, np.ndarray]:
        index = batches[k]
        x = np.stack(list(pool.map(scaled, index)) if pool is not None else [scaled(i) for i in index])
        if flips[k] is not None:
            x[flips[k]] = x[flips[k], :, ::-1]
        return x, labels[index].reshape(-1, 1).astype(np.float32)

    if threads <= 1:
        for k in range(len(batches)):
            yield make(k)
        return
    from concurrent.futures import ThreadPoolExecutor

    depth = 4
    with ThreadPoolExecutor(threads) as scalers, ThreadPoolExecutor(1) as producer:
        pending = [producer.submit(make, k, scalers) for k in range(min(depth, len(batches)))]
        for k in range(len(batches)):
            batch = pending.pop(0).result()
            if k + depth < len(batches):
                pending.append(producer.submit(make, k + depth, scalers))
            yield batch
