"""onnxruntime thread settings for one WCBnet file: intra-op threads x thread-pool spinning.

    nice -n 15 python -m bench.bench_threads build/bench_models/resnet50_384/wcbnet2.onnx

Spinning workers keep polling for work between operators: cheaper wake-ups on an idle
machine, burnt CPU on a shared one. The settings take turns, so the host's load falls on
all of them alike; medians of wall and CPU time are reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.bench_wcbnet import interleaved
from bench.common import machine, stats_ms, table, write_result


def session(path: str, threads: int, spinning: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a wcbnet*.onnx file")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    settings = {"default threads, spinning": (0, True), "default threads, no spinning": (0, False),
                "1 thread": (1, True)}
    sessions = {name: session(args.model, *value) for name, value in settings.items()}
    first = next(iter(sessions.values())).get_inputs()[0]
    feed = {first.name: np.random.default_rng(0).normal(0, 1, first.shape).astype(np.float32)}
    wall, cpu = interleaved({k: (lambda s=s: s.run(None, feed)) for k, s in sessions.items()}, args.runs, args.warmup)
    results = {k: {**stats_ms(wall[k]), "cpu_median_ms": round(float(np.median(cpu[k])) * 1000, 2)} for k in sessions}
    payload = {"benchmark": "onnxruntime intra-op threads and spinning, one WCBnet forward pass",
               "command": "python -m bench.bench_threads " + " ".join(argv if argv is not None else sys.argv[1:]),
               "model": args.model, "machine": machine(), "results": results}
    out = write_result(f"threads_{Path(args.model).parent.name}_{Path(args.model).stem}", payload, args.out)
    print(table(["setting", "wall ms (median)", "CPU ms (median)"],
                [[k, v["median_ms"], v["cpu_median_ms"]] for k, v in results.items()]))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
