"""WCBnet inference: onnxruntime vs TensorFlow on the same network, weights and input.

The variants are built with ``export/wcbnet.py`` exactly as ``training/train.py`` builds a
run (``--preset cpu``: MobileNetV3-Small, 256 px, D=64, variants sharing one backbone;
``--preset paper``: ResNet50, 384 px, D=256, one backbone per variant), with random
weights from a fixed seed (the cost does not depend on their values). Each variant is
converted by ``export.convert.export_variant`` -- the shipping converter, including its
TF-vs-ORT parity check -- and both runtimes are timed computing the contract's three
tensors (logit, F_c, dz/dF_c) for one image: TensorFlow runs the converter's
``tf.function``, onnxruntime the converted file through ``WCBnetModel`` (default threads,
and one thread). Runs are interleaved so the shared host's load falls on both alike;
medians are reported.

    nice -n 15 python -m bench.bench_wcbnet --preset cpu --runs 10

The ONNX files stay in ``--export-dir`` for ``bench_pipeline --models``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import machine, stats_ms, table, write_result  # noqa: E402

#: Model settings of training/train.py's presets (only what the network's shape depends on).
PRESETS = {
    "cpu": dict(backbone="mobilenetv3small", input_size=256, feature_dim=64, joint=True),
    "paper": dict(backbone="resnet50", input_size=384, feature_dim=256, joint=False),
}


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


def _unstacked_block_sum(self, inputs):
    """``sum_j w_j * P_j`` as a chain of adds: the value of ``WeightedBlockSum.call`` without its
    5-D ``[B, N, h, w, D]`` stack, which onnxruntime pays for with a large Concat and Transpose."""
    from keras import ops

    *blocks, weights = inputs
    total = blocks[0] * weights[:, 0, None, None, None]
    for index, block in enumerate(blocks[1:], start=1):
        total = ops.add(total, block * weights[:, index, None, None, None])
    return total


def build_variants(settings: dict, scales: list[int], seed: int = 0) -> dict:
    """``{scale: WCBnetParts}`` as training/train.py builds them (joint: one shared backbone)."""
    import keras

    from export.wcbnet import build_wcbnet, build_wcbnet_multi

    keras.utils.set_random_seed(seed)
    common = (settings["backbone"], (settings["input_size"],) * 2, settings["feature_dim"])
    if settings["joint"]:
        return build_wcbnet_multi(scales, *common)[1]
    return {scale: build_wcbnet(scale, *common) for scale in scales}


def load_run(run_dir: Path, scales: list[int]) -> dict:
    """``{scale: WCBnetParts}`` of a training run with its best weights, as export.convert loads them."""
    from training.train import build_from_run

    run = json.loads((run_dir / "run.json").read_text())
    joint, parts = build_from_run(run)
    joint.load_weights(run_dir / "best.weights.h5")
    return {scale: parts[scale] for scale in scales}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="training/train.py preset")
    parser.add_argument("--run", help="a training run folder (training/train.py --out): its trained weights "
                                      "(best.weights.h5) and settings instead of a preset's random weights")
    parser.add_argument("--backbone", help="override the preset's backbone")
    parser.add_argument("--input-size", type=int, help="override the preset's input size")
    parser.add_argument("--feature-dim", type=int, help="override the preset's D")
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    parser.add_argument("--unstacked-sum", action="store_true",
                        help="build WeightedBlockSum as a chain of adds (proposed export/wcbnet.py change)")
    parser.add_argument("--export-dir", default=None, help="where the ONNX files go (default build/bench_models/NAME)")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/wcbnet_NAME.json)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from export import wcbnet as wcbnet_module
    from export.convert import export_variant, serving_function
    from wsloc_runtime.config import WCBnetConfig
    from wsloc_runtime.wcbnet import WCBnetModel

    settings = dict(PRESETS[args.preset])
    if args.run:
        run = json.loads((Path(args.run) / "run.json").read_text())
        settings = {"backbone": run["backbone"], "input_size": run["input_size"], "feature_dim": run["feature_dim"],
                    "joint": run["joint"], "run": str(args.run)}
    for key in ("backbone", "input_size", "feature_dim"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.unstacked_sum:
        wcbnet_module.WeightedBlockSum.call = _unstacked_block_sum
    name = f"{settings['backbone']}_{settings['input_size']}" + ("_unstacked" if args.unstacked_sum else "")
    if args.run:
        name = f"run_{Path(args.run).name}" + ("_unstacked" if args.unstacked_sum else "")
    export_dir = Path(args.export_dir or f"build/bench_models/{name}")
    scales = [int(s) for s in args.scales.split(",")]
    size = settings["input_size"]
    # Scaled SEL is roughly unit-scale and clipped at +-8; the values do not change the cost.
    sel = np.clip(np.random.default_rng(0).normal(0, 1, (1, size, size, 3)), -8, 8).astype(np.float32)

    start = time.perf_counter()
    if args.run:
        variants = load_run(Path(args.run), scales)
    else:
        variants = build_variants(settings, scales)
    rows, results = [], {}
    totals = {"tensorflow": 0.0, "ort": 0.0, "ort_1thread": 0.0}
    for scale in scales:
        parts = variants[scale]
        config = WCBnetConfig(cbam_scale=scale, input_size=(size, size), backbone=settings["backbone"],
                              feature_dim=settings["feature_dim"],
                              model_version=f"bench-{Path(args.run).name}" if args.run else "bench-random",
                              training_data="benchmark only")
        report = export_variant(parts.encoder, parts.head, config, export_dir / f"wcbnet{scale}.onnx")
        print(f"wcbnet{scale}: converted ({time.perf_counter() - start:.0f} s so far), parity {report['parity']}",
              file=sys.stderr)
        serve = serving_function(parts.encoder, parts.head, (size, size))
        sessions = {
            "ort": WCBnetModel(report["path"], ["CPUExecutionProvider"], args.threads),
            "ort_1thread": WCBnetModel(report["path"], ["CPUExecutionProvider"], 1),
        }
        runners = {"tensorflow": lambda: {k: v.numpy() for k, v in serve(tf.constant(sel)).items()},
                   **{k: (lambda m=m: m.forward(sel)) for k, m in sessions.items()}}
        wall, cpu = interleaved(runners, args.runs, args.warmup)
        entry = {k: {**stats_ms(wall[k]), "cpu_median_ms": round(float(np.median(cpu[k])) * 1000, 2)}
                 for k in runners}
        tf_ms, ort_ms, one_ms = (entry[k]["median_ms"] for k in ("tensorflow", "ort", "ort_1thread"))
        for key in totals:
            totals[key] += entry[key]["median_ms"]
        results[f"wcbnet{scale}"] = {**entry, "speedup": round(tf_ms / ort_ms, 2),
                                     "speedup_1thread": round(tf_ms / one_ms, 2),
                                     "parity_max_abs_difference": report["parity"], "onnx_bytes": report["bytes"]}
        rows.append([f"wcbnet{scale}", tf_ms, ort_ms, f"{tf_ms / ort_ms:.2f}x", one_ms, f"{tf_ms / one_ms:.2f}x",
                     entry["tensorflow"]["cpu_median_ms"], entry["ort"]["cpu_median_ms"],
                     f"{max(report['parity'].values()):.1e}"])
        del sessions  # free the sessions before the next variant is built
    tf_total, ort_total, one_total = totals["tensorflow"], totals["ort"], totals["ort_1thread"]
    rows.append(["all three", tf_total, ort_total, f"{tf_total / ort_total:.2f}x", one_total,
                 f"{tf_total / one_total:.2f}x", "", "", ""])
    payload = {
        "benchmark": "wcbnet onnxruntime vs tensorflow, one image, logit + F_c + dz/dF_c",
        "command": "python -m bench.bench_wcbnet " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {**settings, "preset": args.preset, "unstacked_sum": args.unstacked_sum,
                   "ort_intra_op_threads": args.threads, "tensorflow": tf.__version__},
        "machine": machine(),
        "variants": results,
        "all_three": {"tensorflow_ms": round(tf_total, 2), "onnxruntime_ms": round(ort_total, 2),
                      "onnxruntime_1thread_ms": round(one_total, 2), "speedup": round(tf_total / ort_total, 2),
                      "speedup_1thread": round(tf_total / one_total, 2)},
        "onnx_dir": str(export_dir),
    }
    out = write_result(f"wcbnet_{name}", payload, args.out)
    print(table(["variant", "TF ms", "ORT ms", "speed-up", "ORT 1-thread ms", "speed-up (1 thread)",
                 "TF CPU ms", "ORT CPU ms", "parity max |diff|"], rows))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
