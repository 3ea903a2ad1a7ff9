"""Compare two folders of ``wsloc evaluate`` reports set by set: scores, verdict counts, and how many
per-photo rows are identical (the check that a speed change kept the outputs).

    python -m studies.compare_evaluations runs/final runs/after

Each folder holds ``SET.json`` files (``python -m wsloc_runtime -q evaluate --pairs SET.csv --out
FOLDER/SET.json``); sets present in only one folder are listed as missing. Exit status 1 when a
score differs by more than ``--tolerance`` (default 0.005, the issue rule for "unchanged").

Per photo it also counts the same verdicts and, with ``--masks``, compares the two runs' masks
(``evaluate --masks-out FOLDER/masks/SET``): the F1 of one run's mask against the other's, 1 where
both are empty. studies/numeric_stability.py uses this to compare two numeric configurations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SCORES = ("pixel_f1", "pixel_auc", "image_auc")
#: A photo's two masks "agree" at this F1 or above (issue 33's target).
MASK_AGREEMENT = 0.98


def mask_agreement(first: np.ndarray, second: np.ndarray) -> float:
    """F1 (Dice) of one boolean mask against another of the same shape; 1.0 when both are empty."""
    if first.shape != second.shape:
        raise ValueError(f"masks differ in shape: {first.shape} and {second.shape}")
    first, second = first.astype(bool), second.astype(bool)
    total = int(first.sum()) + int(second.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(first, second).sum()) / total


def compare_masks(before: Path, after: Path) -> list[float]:
    """The agreement of every mask file present in both folders, by file name."""
    from PIL import Image

    names = sorted({p.name for p in before.glob("*.png")} & {p.name for p in after.glob("*.png")})
    return [mask_agreement(np.asarray(Image.open(before / n)) > 127, np.asarray(Image.open(after / n)) > 127)
            for n in names]


def with_verdicts(report: dict, band: tuple[float, float], readable_from: float, margin: float = 0.0) -> dict:
    """``report`` with each row's verdict (and the verdict counts) recomputed from its probability and
    readability under one verdict rule, the runtime's own ``verdict_of``: two runs whose code
    differed only in the verdict's edges compare on what their scores would say under one set."""
    from studies.verdict_band import rows_from_evaluation, verdicts_of
    from wsloc_runtime.evaluate import count_verdicts

    rows = [dict(r) for r in report.get("per_image", [])]
    scored = [r for r in rows if r.get("tampered") is not None and r.get("probability") is not None]
    verdicts = verdicts_of(rows_from_evaluation({"per_image": scored}), band, readable_from, margin)
    for row, verdict in zip(scored, verdicts):
        row["verdict"] = verdict
    return {**report, "per_image": rows,
            "verdicts": count_verdicts([(r["verdict"], r["tampered"]) for r in scored])}


def compare(before: dict, after: dict) -> dict:
    """Per-score (before, after), the identical-row count and whether the verdict counts match."""
    rows_before, rows_after = before.get("per_image", []), after.get("per_image", [])
    identical = sum(1 for a, b in zip(rows_before, rows_after) if a == b)
    # The same photo by file name: one run may have read the pairs file by a relative path, the other
    # by an absolute one.
    same_verdict = sum(1 for a, b in zip(rows_before, rows_after)
                       if Path(str(a.get("image"))).name == Path(str(b.get("image"))).name
                       and a.get("verdict") == b.get("verdict"))
    return {
        "scores": {k: (before.get(k), after.get(k)) for k in SCORES},
        "rows": len(rows_before),
        "rows_after": len(rows_after),
        "identical_rows": identical,
        "same_verdict_rows": same_verdict,
        "same_verdicts": before.get("verdicts") == after.get("verdicts"),
    }


def largest_change(comparison: dict) -> float:
    changes = [abs(a - b) for a, b in comparison["scores"].values() if a is not None and b is not None]
    return max(changes, default=0.0)


def compare_folders(before: Path, after: Path, masks: bool = False,
                    rule: tuple[tuple[float, float], float, float] | None = None) -> dict:
    """Every set in both folders compared: the table's lines (markdown), the largest score change and
    the totals (``photos``, ``same_verdict``, ``masks``, ``masks_agree``). ``masks`` also compares the
    masks in ``FOLDER/masks/SET/``; ``rule`` = ``(band, readable_from, margin)`` recomputes both runs'
    verdicts with it first (:func:`with_verdicts`)."""
    names = sorted({p.stem for p in before.glob("*.json")} | {p.stem for p in after.glob("*.json")})
    mask_column = f" masks F1 >= {MASK_AGREEMENT} (lowest) |" if masks else ""
    lines = ["| set | " + " | ".join(f"{k} before / after" for k in SCORES)
             + " | identical rows | same verdict | same verdict counts |" + mask_column,
             "| --- |" + " --- |" * (len(SCORES) + 3 + bool(masks))]
    worst = 0.0
    totals = {"photos": 0, "same_verdict": 0, "masks": 0, "masks_agree": 0}
    for name in names:
        paths = before / f"{name}.json", after / f"{name}.json"
        if not all(p.is_file() for p in paths):
            lines.append(f"| {name} | missing in {' and '.join(str(p.parent) for p in paths if not p.is_file())} |")
            continue
        reports = [json.loads(p.read_text()) for p in paths]
        if rule is not None:
            reports = [with_verdicts(r, *rule) for r in reports]
        result = compare(*reports)
        worst = max(worst, largest_change(result))
        cells = [" / ".join("-" if v is None else f"{v:.4f}" for v in pair) for pair in result["scores"].values()]
        mask_cell = ""
        if masks:
            agreement = compare_masks(before / "masks" / name, after / "masks" / name)
            agree = sum(1 for value in agreement if value >= MASK_AGREEMENT)
            totals["masks"] += len(agreement)
            totals["masks_agree"] += agree
            mask_cell = f" {agree}/{len(agreement)} ({min(agreement, default=float('nan')):.3f}) |"
        totals["photos"] += result["rows"]
        totals["same_verdict"] += result["same_verdict_rows"]
        lines.append(f"| {name} | " + " | ".join(cells) +
                     f" | {result['identical_rows']}/{result['rows']} | {result['same_verdict_rows']}/{result['rows']}"
                     f" | {'yes' if result['same_verdicts'] else 'NO'} |" + mask_cell)
    return {"names": names, "lines": lines, "worst": worst, "totals": totals}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--masks", action="store_true",
                        help="also compare the masks in FOLDER/masks/SET/ photo by photo")
    parser.add_argument("--band", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="recompute both runs' verdicts from their scores with this band (and --readable-from, "
                             "--margin) before comparing them")
    parser.add_argument("--readable-from", type=float, default=0.5)
    parser.add_argument("--margin", type=float, default=0.0)
    args = parser.parse_args(argv)
    rule = (tuple(args.band), args.readable_from, args.margin) if args.band else None
    compared = compare_folders(args.before, args.after, args.masks, rule)
    if not compared["names"]:
        parser.error(f"no SET.json in {args.before} or {args.after}")
    print("\n".join(compared["lines"]))
    totals = compared["totals"]
    print(f"largest score change: {compared['worst']:.4f} (tolerance {args.tolerance})")
    if totals["photos"]:
        print(f"same verdict: {totals['same_verdict']}/{totals['photos']} photos "
              f"({totals['same_verdict'] / totals['photos']:.2%})")
    if totals["masks"]:
        print(f"masks agreeing (F1 >= {MASK_AGREEMENT}): {totals['masks_agree']}/{totals['masks']} photos "
              f"({totals['masks_agree'] / totals['masks']:.2%})")
    return 0 if compared["worst"] <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
