"""Score a training run on the development and cross-dataset sets, as the model card reports them.

``python -m studies.evaluate_run --run runs/X [--weights best|last]``

Converts the run's weights to ONNX (``RUN/onnx_<weights>/``, skipped when up to date), then
scores the runtime's default pipeline with :func:`wsloc_runtime.evaluate.evaluate_pairs`,
exactly what ``python -m wsloc_runtime evaluate --models RUN/onnx_<weights> --map M`` computes,
for the enhanced map and the activation before enhancement (one pipeline run per image
serves both), on each pairs file:

* ``casia1-dev`` (checkpoints are selected here), ``casia1-dev-swap`` (its compression
  swapped: the shortcut test, always reported beside it);
* ``casia2-samples``, ``noso`` and ``nist16-dev`` (NIST Nimble 2016: splices, removals, copy-moves,
  resized and re-saved; pixel scores only): cross-dataset, all five judged together by the
  model card's selection rule.

Writes ``RUN/eval_<weights>.json`` and prints one markdown row per set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_SETS = ("casia1-dev", "casia1-dev-swap", "casia2-samples", "noso", "nist16-dev")
SUMMARY_KEYS = ("pixel_auc", "pixel_f1", "pixel_f1_best", "pixel_iou", "image_auc", "image_accuracy",
                "n_tampered", "n_authentic", "n_skipped")


def converted_models(run_dir: Path, weights: str) -> Path:
    """``RUN/onnx_<weights>``, converted again when the weights are newer than the files."""
    from export.convert import convert_run

    out = run_dir / f"onnx_{weights}"
    weights_file = run_dir / f"{weights}.weights.h5"
    files = sorted(out.glob("wcbnet*.onnx"))
    if not files or min(f.stat().st_mtime for f in files) < weights_file.stat().st_mtime:
        convert_run(run_dir, out, weights)
    return out


def score_sets(models_dir: Path, data_root: Path, sets: Sequence[str], views: str = "hflip",
               segmenter: str = "graph") -> dict:
    """``{set: {"enhanced": summary, "activation": summary, "seconds": s}}`` for the models in ``models_dir``."""
    from wsloc_runtime.evaluate import evaluate_pairs, read_pairs
    from wsloc_runtime.pipeline import Localizer

    localizer = Localizer(models_dir=models_dir, segmenter=segmenter, test_time_views=views)
    report: dict = {}
    for name in sets:
        pairs = read_pairs(data_root / f"{name}.csv")
        memo: dict[bytes, tuple[np.ndarray, np.ndarray, float]] = {}

        def pipeline(rgb: np.ndarray):
            key = hashlib.sha1(rgb.tobytes()).digest()
            if key not in memo:
                result = localizer.localize(rgb)
                memo[key] = (result.full_size(result.enhanced), result.full_size(result.activation), result.probability)
            return memo[key]

        started = time.time()
        entry = {}
        for kind, index in (("enhanced", 0), ("activation", 1)):
            full = evaluate_pairs(pairs, lambda rgb: (pipeline(rgb)[index], pipeline(rgb)[2]),
                                  localizer.decision_threshold, show_progress=False)
            entry[kind] = {k: full[k] for k in SUMMARY_KEYS}
            if kind == "enhanced":
                entry["per_image"] = [{k: row.get(k) for k in ("image", "tampered", "image_score", "pixel_auc",
                                                                 "pixel_f1", "pixel_f1_best")}
                                      for row in full["per_image"]]
        entry["seconds"] = round(time.time() - started, 1)
        report[name] = entry
        print(markdown_row(name, entry), flush=True)
    return report


def markdown_row(name: str, entry: dict) -> str:
    def f(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    e, a = entry["enhanced"], entry["activation"]
    return (f"| {name} | {f(e['pixel_auc'])} / {f(e['pixel_f1'])} / {f(e['pixel_f1_best'])} / {f(e['pixel_iou'])} "
            f"| {f(a['pixel_auc'])} / {f(a['pixel_f1'])} / {f(a['pixel_f1_best'])} / {f(a['pixel_iou'])} "
            f"| {f(e['image_auc'])} |")


def main(argv: Sequence[str] | None = None) -> None:
    from training.synth import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="training run directory (training.train --out)")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--models", help="score these ONNX files instead of converting the run's weights")
    parser.add_argument("--data", help="shared data root (default $WSLOC_DATA or ../shared/data)")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    parser.add_argument("--views", default="hflip")
    parser.add_argument("--segmenter", default="graph")
    parser.add_argument("--name", help="report file name (default eval_<weights>.json)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run)
    models = Path(args.models) if args.models else converted_models(run_dir, args.weights)
    print("| set | enhanced AUC / F1 / best F1 / IoU | activation AUC / F1 / best F1 / IoU | image AUC |")
    print("| --- | --- | --- | --- |")
    report = score_sets(models, Path(args.data) if args.data else default_data_root(), args.sets, args.views,
                        args.segmenter)
    report["_settings"] = {"models": str(models), "weights": args.weights, "views": args.views,
                           "segmenter": args.segmenter}
    out = run_dir / (args.name or f"eval_{args.weights}.json")
    out.write_text(json.dumps(report, indent=2))
    print(out)


if __name__ == "__main__":
    main()
