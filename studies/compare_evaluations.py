"""Compare two folders of ``wsloc evaluate`` reports set by set: scores, verdict counts, and how many
per-photo rows are identical (the check that a speed change kept the outputs).

    python -m studies.compare_evaluations runs/final runs/after

Each folder holds ``SET.json`` files (``python -m wsloc_runtime -q evaluate --pairs SET.csv --out
FOLDER/SET.json``); sets present in only one folder are listed as missing. Exit status 1 when a
score differs by more than ``--tolerance`` (default 0.005, the issue rule for "unchanged").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SCORES = ("pixel_f1", "pixel_auc", "image_auc")


def compare(before: dict, after: dict) -> dict:
    """Per-score (before, after), the identical-row count and whether the verdict counts match."""
    rows_before, rows_after = before.get("per_image", []), after.get("per_image", [])
    identical = sum(1 for a, b in zip(rows_before, rows_after) if a == b)
    return {
        "scores": {k: (before.get(k), after.get(k)) for k in SCORES},
        "rows": len(rows_before),
        "rows_after": len(rows_after),
        "identical_rows": identical,
        "same_verdicts": before.get("verdicts") == after.get("verdicts"),
    }


def largest_change(comparison: dict) -> float:
    changes = [abs(a - b) for a, b in comparison["scores"].values() if a is not None and b is not None]
    return max(changes, default=0.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.005)
    args = parser.parse_args(argv)
    names = sorted({p.stem for p in args.before.glob("*.json")} | {p.stem for p in args.after.glob("*.json")})
    if not names:
        parser.error(f"no SET.json in {args.before} or {args.after}")
    worst = 0.0
    print("| set | " + " | ".join(f"{k} before / after" for k in SCORES) + " | identical rows | same verdicts |")
    print("| --- |" + " --- |" * (len(SCORES) + 2))
    for name in names:
        paths = args.before / f"{name}.json", args.after / f"{name}.json"
        if not all(p.is_file() for p in paths):
            print(f"| {name} | missing in {' and '.join(str(p.parent) for p in paths if not p.is_file())} |")
            continue
        result = compare(*(json.loads(p.read_text()) for p in paths))
        worst = max(worst, largest_change(result))
        cells = [" / ".join("-" if v is None else f"{v:.4f}" for v in pair) for pair in result["scores"].values()]
        print(f"| {name} | " + " | ".join(cells) +
              f" | {result['identical_rows']}/{result['rows']} | {'yes' if result['same_verdicts'] else 'NO'} |")
    print(f"largest score change: {worst:.4f} (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
