"""Untouched photos saved twice more as JPEG, the way a camera and then an app would: does the
verdict leave them alone?

    python -m studies.resave_chains make --out runs/resave            # the photos and resaved.csv
    python -m wsloc_runtime -q evaluate --pairs runs/resave/resaved.csv --out runs/resave/default.json
    python -m studies.resave_chains summarize runs/resave/default.json

``make`` takes untouched photos (Kodak's lossless PNGs, BSDS500's JPEGs, and CASIA v1.0's authentic
training photos, ``Au_*`` in ``casia1-train.csv``: never a development set's) and saves each through
chains of two JPEG qualities (:data:`CHAINS`) with Pillow's encoder (libjpeg-turbo, 4:2:0 chroma,
as most apps save). Every photo is authentic: a "likely manipulated" on any of them is a false
accusation. The photos are written under ``--out`` (never into the repository: BSDS500 and CASIA
may not be copied there), with ``resaved.csv`` (``image,mask``, empty masks) beside them.

``summarize`` reads an ``evaluate`` report of them: how often each verdict was said, per chain and
per source, and, for the photos called "likely manipulated", which parts of the score were strong
(the models' probability, each evidence's strength): where a fix has to go.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
#: (first save, second save) JPEG qualities: a camera's (or the first app's) save, then an app's.
CHAINS = ((95, 92), (90, 90), (85, 95), (93, 85), (75, 90), (80, 80), (92, 75), (70, 95))
#: A part of the score counts as having driven a verdict from this strength (probability) on.
STRONG = 0.5


def save_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """``rgb`` (``(h, w, 3)`` uint8) encoded as JPEG at ``quality`` by Pillow (4:2:0 chroma)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=int(quality), subsampling=2)
    return buffer.getvalue()


def resave_chain(rgb: np.ndarray, chain: tuple[int, ...]) -> bytes:
    """``rgb`` saved as JPEG at each quality of ``chain`` in turn, decoded in between; the last file's bytes."""
    if not chain:
        raise ValueError("a chain needs at least one quality")
    data = b""
    for quality in chain:
        data = save_jpeg(rgb, quality)
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return data


def sources(data: Path, kodak: int, bsds: int, casia: int) -> list[tuple[str, Path]]:
    """``(source set, path)`` of the untouched photos: the first ``kodak`` Kodak PNGs, ``bsds``
    BSDS500 photos (sorted, spread over the set) and ``casia`` CASIA v1.0 authentic training photos."""
    found: list[tuple[str, Path]] = []
    found += [("kodak", p) for p in sorted((data / "kodak").glob("*.png"))[:kodak]]
    bsds_all = sorted((data / "bsds500" / "images").rglob("*.jpg"))
    if bsds and bsds_all:
        found += [("bsds500", bsds_all[i]) for i in np.linspace(0, len(bsds_all) - 1, bsds).astype(int)]
    train = data / "casia1-train.csv"
    if casia and train.is_file():
        with open(train, newline="") as stream:
            authentic = [row["image"] for row in csv.DictReader(stream) if Path(row["image"]).name.startswith("Au_")]
        if authentic:
            picks = np.linspace(0, len(authentic) - 1, min(casia, len(authentic))).astype(int)
            found += [("casia1-authentic", data / authentic[i]) for i in picks]
    return found


def make(out: Path, data: Path, kodak: int, bsds: int, casia: int, chains_per_photo: int) -> Path:
    """Write the re-saved photos and ``out/resaved.csv``; each photo goes through ``chains_per_photo``
    chains, taken in turn from :data:`CHAINS` so that every chain is used about as often."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    turn = 0
    for source_set, path in sources(data, kodak, bsds, casia):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for _ in range(chains_per_photo):
            chain = CHAINS[turn % len(CHAINS)]
            turn += 1
            name = f"{source_set}__{path.stem}__q{chain[0]}-q{chain[1]}.jpg"
            (out / name).write_bytes(resave_chain(rgb, chain))
            rows.append({"image": name, "mask": ""})
    listing = out / "resaved.csv"
    with open(listing, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["image", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    return listing


def _parts(name: str) -> tuple[str, str]:
    """(source set, chain) from a file name that :func:`make` wrote."""
    stem = Path(name).stem
    pieces = stem.split("__")
    return pieces[0], pieces[-1] if len(pieces) > 2 else "?"


def summarize(report: dict) -> dict:
    """Verdict counts overall, per chain and per source, and what was strong where "likely manipulated" was said."""
    rows = [r for r in report.get("per_image", []) if "verdict" in r]
    by_chain: dict[str, Counter] = defaultdict(Counter)
    by_source: dict[str, Counter] = defaultdict(Counter)
    drivers: Counter = Counter()
    for row in rows:
        source, chain = _parts(row["image"])
        by_chain[chain][row["verdict"]] += 1
        by_source[source][row["verdict"]] += 1
        if row["verdict"] == "likely manipulated":
            if (row.get("model_probability") or 0.0) >= STRONG:
                drivers["models' probability"] += 1
            for name, reading in (row.get("evidence") or {}).items():
                claim = reading.get("claim", reading.get("strength", 0.0))  # what the verdict read
                if name != "activation" and claim * reading.get("reliability", 0.0) >= STRONG:
                    drivers[name] += 1
    total = Counter(row["verdict"] for row in rows)
    accused = total.get("likely manipulated", 0)
    return {"photos": len(rows), "verdicts": dict(total),
            "likely_manipulated_share": round(accused / len(rows), 4) if rows else None,
            "by_chain": {k: dict(v) for k, v in sorted(by_chain.items())},
            "by_source": {k: dict(v) for k, v in sorted(by_source.items())},
            "strong_where_accused": dict(drivers)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    making = commands.add_parser("make", help="write the re-saved photos and resaved.csv")
    making.add_argument("--out", type=Path, required=True)
    making.add_argument("--data", type=Path, default=DEFAULT_DATA)
    making.add_argument("--kodak", type=int, default=24)
    making.add_argument("--bsds", type=int, default=40)
    making.add_argument("--casia", type=int, default=40)
    making.add_argument("--chains-per-photo", type=int, default=3)
    summarizing = commands.add_parser("summarize", help="what the verdict said of them")
    summarizing.add_argument("report", type=Path)
    args = parser.parse_args(argv)
    if args.command == "make":
        if not (args.data / "kodak").is_dir():
            parser.error(f"no photos in {args.data} (../shared/data): nothing to re-save")
        listing = make(args.out, args.data, args.kodak, args.bsds, args.casia, args.chains_per_photo)
        print(f"written {listing}")
        return 0
    print(json.dumps(summarize(json.loads(args.report.read_text())), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
