"""Pack the synthesizer's source photos into one compact file, and unpack them elsewhere.

For training on a machine that cannot read ``../shared/data`` (a rented GPU box) when the
transfer is size-limited: BSDS500 JPEG files travel byte for byte (their compression
history is part of what the synthesizer varies), their human segmentations as
LZMA-compressed label maps, Kodak photos as lossless WebP (the same pixels as the PNG
files). ``unpack`` rebuilds the ``bsds500/`` + ``kodak/`` layout that
:func:`training.synth.list_sources` reads, so ``python -m training.synth`` gives the same
samples from the unpacked folder as from the original one (for the packed splits).

The pack is a transfer format, never a thing to commit or publish: BSDS500's terms
forbid redistribution.

Usage::

    python -m training.pack_sources pack --out .devicepack/sources.npz --splits train val
    python -m training.pack_sources unpack --pack .devicepack/sources.npz --out /tmp/wsloc_data
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from training.synth import SPLITS, default_data_root, list_sources, read_segmentations, split_of


def pack(data_root: str | os.PathLike, out: str | os.PathLike, splits: Sequence[str] = SPLITS) -> dict:
    """Write the sources of ``splits`` (by :func:`training.synth.split_of`) to ``out`` (``.npz``).

    Returns:
        ``{"sources": n, "bytes": size of the pack}``.
    """
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected some of {list(SPLITS)}")
    arrays: dict[str, np.ndarray] = {}
    index = []
    for number, source in enumerate(list_sources(data_root)):
        if split_of(source.name) not in splits:
            continue
        key = f"s{number:04d}"
        entry = {"key": key, "name": source.name, "folder": source.image_path.parent.name}
        if source.name.startswith("kodak/"):
            bgr = cv2.imread(str(source.image_path), cv2.IMREAD_COLOR)
            ok, data = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100 = lossless
            if not ok or not np.array_equal(cv2.imdecode(data, cv2.IMREAD_COLOR), bgr):
                raise RuntimeError(f"lossless WebP round trip failed for {source.image_path}")
            arrays[key + "_webp"] = data.ravel()
        else:
            arrays[key + "_jpg"] = np.frombuffer(source.image_path.read_bytes(), np.uint8)
            if source.segmentation_path is not None:
                maps = np.stack(read_segmentations(source.segmentation_path))
                entry["seg_shape"], entry["seg_dtype"] = list(maps.shape), str(maps.dtype)
                arrays[key + "_seg"] = np.frombuffer(lzma.compress(maps.tobytes(), preset=9), np.uint8)
        index.append(entry)
    if not index:
        raise FileNotFoundError(f"no sources of splits {list(splits)} under {data_root}")
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), np.uint8)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part.npz")
    np.savez(partial, **arrays)
    os.replace(partial, target)
    return {"sources": len(index), "bytes": target.stat().st_size}


def unpack(pack_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Rebuild ``out/bsds500/{images,groundTruth}/<folder>/`` and ``out/kodak/`` from a pack."""
    import scipy.io

    root = Path(out)
    with np.load(pack_path) as packed:
        index = json.loads(packed["index"].tobytes().decode())
        for entry in index:
            key, stem = entry["key"], entry["name"].split("/", 1)[1]
            if entry["name"].startswith("kodak/"):
                bgr = cv2.imdecode(packed[key + "_webp"], cv2.IMREAD_COLOR)
                (root / "kodak").mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(root / "kodak" / f"{stem}.png"), bgr):
                    raise OSError(f"cannot write {root / 'kodak' / stem}.png")
                continue
            image_dir = root / "bsds500" / "images" / entry["folder"]
            image_dir.mkdir(parents=True, exist_ok=True)
            (image_dir / f"{stem}.jpg").write_bytes(packed[key + "_jpg"].tobytes())
            if "seg_shape" in entry:
                maps = np.frombuffer(lzma.decompress(packed[key + "_seg"].tobytes()), entry["seg_dtype"])
                maps = maps.reshape(entry["seg_shape"])
                truth = np.empty((1, len(maps)), dtype=object)
                for k, label_map in enumerate(maps):
                    truth[0, k] = {"Segmentation": label_map}
                truth_dir = root / "bsds500" / "groundTruth" / entry["folder"]
                truth_dir.mkdir(parents=True, exist_ok=True)
                scipy.io.savemat(str(truth_dir / f"{stem}.mat"), {"groundTruth": truth}, do_compression=True)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pack_parser = commands.add_parser("pack", help="shared data -> one .npz")
    pack_parser.add_argument("--data", default=None, help="shared data root (default $WSLOC_DATA or ../shared/data)")
    pack_parser.add_argument("--out", required=True)
    pack_parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    unpack_parser = commands.add_parser("unpack", help=".npz -> a data root for training.synth --data")
    unpack_parser.add_argument("--pack", required=True)
    unpack_parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        print(json.dumps(pack(args.data or default_data_root(), args.out, args.splits)))
    else:
        print(unpack(args.pack, args.out))


if __name__ == "__main__":
    main()
