"""WCBnet inference: onnxruntime vs TensorFlow on the same network, weights and input.

For each variant (CBAM scale 2, 3, 4) a Keras model is built with ``export/wcbnet.py``
(random weights, fixed seed), converted to ONNX with the runtime's contract (logit,
F_c, dz/dF_c), and both are timed computing those three tensors for one image:
TensorFlow runs the ``tf.function`` that was converted, onnxruntime the converted file
(with its default threads, and with one thread). Runs are interleaved; medians are reported.
Outputs are compared so the speed-up is not bought with a different computation.

    nice -n 15 python -m bench.bench_wcbnet --backbone resnet50 --runs 10

The ONNX files are kept in ``--export-dir`` for ``bench_pipeline --models``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import machine, stats_ms, table, write_result  # noqa: E402


def interleaved(runners: dict, runs: int, warmup: int) -> tuple[dict, dict]:
    """Wall and CPU seconds per call, the runners taking turns so that the host's other load
    falls on all of them alike (the machine is shared with a training job)."""
    for _ in range(warmup):
        for run in runners.values():
            run()
    wall = {k: [] for k in runners}
    cpu = {k: [] for k in runners}
    for _ in range(runs):
        for key, run in runners.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[key].append(time.perf_counter() - start_wall)
            cpu[key].append(time.process_time() - start_cpu)
    return wall, cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet50", help="resnet50 (the paper), mobilenetv3small, tinyresnet")
    parser.add_argument("--input-size", type=int, default=384)
    parser.add_argument("--feature-dim", type=int, default=256)
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--unstacked-sum", action="store_true",
                        help="build WeightedBlockSum as a chain of adds (proposed export/wcbnet.py change)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    parser.add_argument("--export-dir", default=None, help="where the ONNX files go (default build/bench_models/BACKBONE)")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/wcbnet_BACKBONE.json)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from bench.wcbnet_export import build_parts, contract_function, export_onnx
    from wsloc_runtime.wcbnet import WCBnetModel

    scales = [int(s) for s in args.scales.split(",")]
    variant = args.backbone + ("_unstacked" if args.unstacked_sum else "")
    export_dir = Path(args.export_dir or f"build/bench_models/{variant}")
    rng = np.random.default_rng(0)
    # Scaled SEL is roughly unit-scale and clipped at +-8; the values do not change the cost.
    sel = np.clip(rng.normal(0, 1, (1, args.input_size, args.input_size, 3)), -8, 8).astype(np.float32)
    rows, results = [], {}
    totals = {"tensorflow": 0.0, "ort": 0.0, "ort_1thread": 0.0}
    for scale in scales:
        start = time.perf_counter()
        parts = build_parts(scale, args.backbone, args.input_size, args.feature_dim, seed=scale,
                            unstacked_sum=args.unstacked_sum)
        path = export_onnx(parts, export_dir / f"wcbnet{scale}.onnx", scale, args.backbone, args.input_size,
                           args.feature_dim)
        print(f"wcbnet{scale}: built and converted in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        tf_function = contract_function(parts)
        # Several onnxruntime thread settings: the host's other load makes the best one non-obvious.
        sessions = {
            "ort": WCBnetModel(path, ["CPUExecutionProvider"], args.threads),
            "ort_1thread": WCBnetModel(path, ["CPUExecutionProvider"], 1),
        }

        def run_tf():
            return [t.numpy() for t in tf_function(tf.constant(sel))]

        reference, ours = run_tf(), sessions["ort"].forward(sel)
        difference = {
            "logit": float(abs(reference[0].reshape(-1)[0] - ours.logit)),
            "features": float(np.abs(reference[1][0] - ours.features).max()),
            "gradient": float(np.abs(reference[2][0] - ours.gradient).max()),
        }
        runners = {"tensorflow": run_tf, **{k: (lambda m=m: m.forward(sel)) for k, m in sessions.items()}}
        wall, cpu = interleaved(runners, args.runs, args.warmup)
        entry = {k: {**stats_ms(wall[k]), "cpu_median_ms": round(float(np.median(cpu[k])) * 1000, 2)}
                 for k in runners}
        tf_ms, ort_ms = entry["tensorflow"]["median_ms"], entry["ort"]["median_ms"]
        one_ms = entry["ort_1thread"]["median_ms"]
        ratio = tf_ms / ort_ms
        totals["tensorflow"] += tf_ms
        totals["ort"] += ort_ms
        totals["ort_1thread"] += one_ms
        results[f"wcbnet{scale}"] = {**entry, "speedup": round(ratio, 2), "speedup_1thread": round(tf_ms / one_ms, 2),
                                     "max_abs_difference": difference, "onnx_file": str(path),
                                     "onnx_bytes": path.stat().st_size}
        rows.append([f"wcbnet{scale}", tf_ms, ort_ms, f"{ratio:.2f}x", one_ms, f"{tf_ms / one_ms:.2f}x",
                     entry["tensorflow"]["cpu_median_ms"], entry["ort"]["cpu_median_ms"],
                     f"{max(difference.values()):.1e}"])
        del sessions, parts, tf_function
        tf.keras.backend.clear_session()
    tf_total, ort_total, one_total = totals["tensorflow"], totals["ort"], totals["ort_1thread"]
    rows.append(["all three", tf_total, ort_total, f"{tf_total / ort_total:.2f}x", one_total,
                 f"{tf_total / one_total:.2f}x", "", "", ""])
    payload = {
        "benchmark": "wcbnet onnxruntime vs tensorflow, one image, logit + F_c + dz/dF_c",
        "command": "python -m bench.bench_wcbnet " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {"backbone": args.backbone, "unstacked_sum": args.unstacked_sum, "input_size": args.input_size, "feature_dim": args.feature_dim,
                   "ort_intra_op_threads": args.threads, "tensorflow": tf.__version__},
        "machine": machine(),
        "variants": results,
        "all_three": {"tensorflow_ms": round(tf_total, 2), "onnxruntime_ms": round(ort_total, 2),
                      "onnxruntime_1thread_ms": round(one_total, 2), "speedup": round(tf_total / ort_total, 2),
                      "speedup_1thread": round(tf_total / one_total, 2)},
    }
    out = write_result(f"wcbnet_{variant}", payload, args.out)
    print(table(["variant", "TF ms", "ORT ms", "speed-up", "ORT 1-thread ms", "speed-up (1 thread)",
                 "TF CPU ms", "ORT CPU ms", "max |diff|"], rows))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
