"""Choose the verdict's "uncertain" band from scored development sets.

``python -m studies.verdict_band --report runs/X/eval_best.json --sets casia1-dev-swap noso``

The band ``(low, high)`` is written into each model's config by ``export.convert
--verdict-band LOW HIGH`` and read by the runtime: at or above ``high`` the verdict is
"likely manipulated", below ``low`` "likely authentic", between them "uncertain". The edges
are chosen so that each confident verdict was right at least ``precision`` of the time on
the given sets (by default the compression-swapped CASIA set and NoSo, whose photos differ
from the training photos' in compression and in kind):

* ``high``: the lowest probability at which the photos scoring at or above it were tampered
  at least ``precision`` of the time (1.0 when no such probability exists: the models are
  then never "likely manipulated");
* ``low``: the highest probability at which the photos scoring below it were authentic at
  least ``precision`` of the time (0.0 when none).

Each side needs at least ``min_count`` photos, so one lucky photo does not set an edge.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_SETS = ("casia1-dev-swap", "noso")


def choose_band(scores: Sequence[float], tampered: Sequence[bool], precision: float = 0.9,
                min_count: int = 5) -> tuple[float, float]:
    """``(low, high)`` for image probabilities ``scores`` of photos whose truth is ``tampered``."""
    scores = np.asarray(scores, np.float64)
    tampered = np.asarray(tampered, bool)
    if scores.shape != tampered.shape or scores.size == 0:
        raise ValueError("scores and tampered must be non-empty and of one length")
    if not 0.5 < precision <= 1.0:
        raise ValueError(f"precision must be in (0.5, 1], got {precision}")
    candidates = np.unique(scores)
    high = 1.0
    for threshold in candidates:  # ascending: the first that qualifies is the lowest
        above = scores >= threshold
        if above.sum() >= min_count and tampered[above].mean() >= precision:
            high = float(threshold)
            break
    low = 0.0
    for threshold in np.append(candidates, 1.0)[::-1]:  # descending: the first that qualifies is the highest
        below = scores < threshold
        if below.sum() >= min_count and (~tampered[below]).mean() >= precision:
            low = float(threshold)
            break
    if low > high:  # both verdicts are reliable everywhere between: no uncertain zone left
        low = high = float((low + high) / 2)
    return round(low, 4), round(high, 4)


def scores_from_report(report: dict, sets: Sequence[str]) -> tuple[list[float], list[bool]]:
    """Image probabilities and truths of ``sets`` in an ``studies.evaluate_run`` report."""
    scores, truth = [], []
    for name in sets:
        if name not in report:
            raise KeyError(f"the report has no set {name!r}; it has {sorted(k for k in report if not k.startswith('_'))}")
        for row in report[name]["per_image"]:
            if row.get("image_score") is not None and row.get("tampered") is not None:
                scores.append(float(row["image_score"]))
                truth.append(bool(row["tampered"]))
    return scores, truth


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", required=True, help="studies.evaluate_run report (RUN/eval_best.json)")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--min-count", type=int, default=5)
    args = parser.parse_args(argv)
    scores, truth = scores_from_report(json.loads(Path(args.report).read_text()), args.sets)
    low, high = choose_band(scores, truth, args.precision, args.min_count)
    print(json.dumps({"verdict_band": [low, high], "sets": args.sets, "precision": args.precision,
                      "n": len(scores), "n_tampered": int(sum(truth))}))


if __name__ == "__main__":
    main()
