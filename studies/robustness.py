"""Robustness of the default pipeline to what sharing does to photos (as TruFor and CAT-Net report it).

``python -m studies.robustness --pairs ../shared/data/casia1-dev.csv --out runs/robustness [--models DIR]``

Every photo of the pairs file (tampered and authentic) is re-saved as JPEG at quality 70, 80,
90 and 95, and resized by 0.75 (area interpolation, saved losslessly, its mask resized by
nearest neighbour), into ``OUT/<perturbation>/`` with a pairs file of its own, outside the
repository (the source photos' terms forbid redistribution). Each set is then scored with
:func:`wsloc_runtime.evaluate.evaluate_pairs` (enhanced map, and the free baselines beside
it) and the table is written to ``OUT/robustness.json`` and printed.
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

#: name -> (JPEG quality or None, scale)
PERTURBATIONS: dict[str, tuple[int | None, float]] = {
    "jpeg70": (70, 1.0), "jpeg80": (80, 1.0), "jpeg90": (90, 1.0), "jpeg95": (95, 1.0), "resize0.75": (None, 0.75),
}
MAPS = ("enhanced", "jpeg_dq", "ela")


def perturb(rgb: np.ndarray, quality: int | None, scale: float) -> tuple[bytes, str]:
    """The photo after one perturbation, encoded: ``(bytes, extension)``."""
    if scale != 1.0:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    if quality is None:
        Image.fromarray(rgb).save(buffer, "PNG")
        return buffer.getvalue(), ".png"
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue(), ".jpg"


def write_perturbed_set(pairs_csv: Path, out_dir: Path, name: str) -> Path:
    """``out_dir/name/`` with every photo of ``pairs_csv`` perturbed, and its ``pairs.csv``."""
    from wsloc_runtime.evaluate import read_mask, read_pairs
    from wsloc_runtime.imageio import load_image

    quality, scale = PERTURBATIONS[name]
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for pair in read_pairs(pairs_csv):
        encoded, extension = perturb(load_image(pair.image), quality, scale)
        image_name = pair.image.stem + extension
        (folder / image_name).write_bytes(encoded)
        mask_name = ""
        if pair.mask is not None:
            mask = read_mask(pair.mask).astype(np.uint8) * 255
            if scale != 1.0:
                height, width = Image.open(io.BytesIO(encoded)).size[::-1]
                mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
            mask_name = pair.mask.stem + ".png"
            cv2.imwrite(str(folder / mask_name), mask)
        rows.append({"image": image_name, "mask": mask_name})
    listing = folder / "pairs.csv"
    with listing.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    return listing


def main(argv: Sequence[str] | None = None) -> None:
    from wsloc_runtime.evaluate import evaluate_pairs, map_function, read_pairs
    from wsloc_runtime.pipeline import Localizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", required=True, help="image,mask CSV (e.g. ../shared/data/casia1-dev.csv)")
    parser.add_argument("--out", required=True, help="folder for the perturbed copies and the report")
    parser.add_argument("--models", help="WCBnet models folder (default: the bundled ones)")
    parser.add_argument("--perturbations", nargs="+", default=list(PERTURBATIONS), choices=list(PERTURBATIONS))
    parser.add_argument("--tampered-only", action="store_true",
                        help="score only the photos with a mask (the pixel scores; no image AUC), in half the time")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    localizer = Localizer(models_dir=args.models)
    sets = {"original": Path(args.pairs)}
    sets.update({name: write_perturbed_set(Path(args.pairs), out_dir, name) for name in args.perturbations})
    report: dict = {}
    print("| set | map | pixel AUC | pixel F1 | best F1 | image AUC |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, listing in sets.items():
        pairs = read_pairs(listing)
        if args.tampered_only:
            pairs = [pair for pair in pairs if pair.mask is not None]
        report[name] = {}
        for kind in MAPS:
            full = evaluate_pairs(pairs, map_function(kind, localizer), localizer.decision_threshold, show_progress=False)
            row = {k: full[k] for k in ("pixel_auc", "pixel_f1", "pixel_f1_best", "pixel_iou", "image_auc")}
            report[name][kind] = row
            image_auc = "-" if row["image_auc"] is None else f"{row['image_auc']:.3f}"
            print(f"| {name} | {kind} | {row['pixel_auc']:.3f} | {row['pixel_f1']:.3f} | {row['pixel_f1_best']:.3f} "
                  f"| {image_auc} |", flush=True)
    (out_dir / "robustness.json").write_text(json.dumps({"pairs": str(args.pairs), "models": args.models,
                                                         "tampered_only": args.tampered_only, "report": report},
                                                        indent=2))


if __name__ == "__main__":
    main()
