"""Whole-pipeline latency per stage, and peak memory, at several photo sizes.

Each size runs in a fresh subprocess so that its peak resident memory (VmHWM)
belongs to that size alone. Test photos are a Kodak photo (skimage's astronaut without
../shared) upscaled to the size, with sensor-like noise, JPEG-encoded at quality 90.

    nice -n 15 python -m bench.bench_pipeline --models build/bench_models/resnet50 --sizes 1,12,48

Stages are :attr:`LocalizationResult.timings` plus ``encode`` (writing the heatmap and
mask at the photo's size, the overlay and the JSON, as ``wsloc localize`` does).
``cpu_s`` is the process's CPU time per image: on a shared host it is steadier than
wall time, and it is higher than wall time when onnxruntime uses several cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import (PHOTO_SIZES, machine, reference_workload_s, relative, result_name, synth_photo_jpeg, table,
                          write_result)
from wsloc_runtime.fusion import DEFAULT_EVIDENCE, DEFAULT_FUSION, FUSION_MODES
from wsloc_runtime.views import DEFAULT_TEST_TIME_VIEWS, TEST_TIME_VIEWS

REPO = Path(__file__).resolve().parents[1]
#: One column per model-free evidence the default pipeline computes (the activation is the models').
EVIDENCE_COLUMNS = [f"evidence_{name}" for name in DEFAULT_EVIDENCE if name != "activation"]
STAGE_COLUMNS = ["decode", "jpeg_traces", "sel", *EVIDENCE_COLUMNS, "wcbnet2", "wcbnet3", "wcbnet4", "cam",
                 "evidence_fusion", "segmenter", "similarity", "enhancement", "encode"]


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    ``/proc/self/status`` VmHWM, not ``getrusage().ru_maxrss``: Linux carries ru_maxrss across
    exec, so a child spawned (vfork + exec) by a big parent reports the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux; see above


def _cpu_stage(progress_name: str) -> str:
    """Stage names of the progress callback -> the table's CPU columns (a model's stage includes its CAM)."""
    if progress_name.startswith("segmenting"):
        return "segmenter"
    if progress_name.startswith("evidence: "):
        return "evidence_" + progress_name.removeprefix("evidence: ")
    return {"JPEG traces": "jpeg_traces", "error levels": "sel", "enhancement": "similarity+enhancement", "done": "done"}.get(progress_name,
                                                                                                progress_name)


def child(args) -> dict:
    """Run in the subprocess: construct once, localize ``runs`` times, report medians and the peak RSS."""
    from wsloc_runtime.cli import write_result_files
    from wsloc_runtime.pipeline import Localizer

    rss_imports = peak_rss_mb()
    localizer = Localizer(args.models, providers=["CPUExecutionProvider"], intra_op_threads=args.threads,
                          segmenter=args.segmenter, work_max_side=args.work_max_side, test_time_views=args.views,
                          fusion=args.fusion)
    rss_models = peak_rss_mb()
    reference_before = reference_workload_s()
    samples = []
    with tempfile.TemporaryDirectory() as out:
        for run in range(args.warmup + args.runs):
            marks = []  # (stage, process CPU time) at the start of each stage, via the progress callback
            wall, cpu = time.perf_counter(), time.process_time()
            result = localizer.localize(args.child, progress=lambda _, stage: marks.append((stage, time.process_time())))
            if run == 0:  # where the peak is reached: localizing, or writing the full-size outputs
                rss_localized = peak_rss_mb()
            encode_start, encode_cpu = time.perf_counter(), time.process_time()
            write_result_files(result, Path(out), "bench", args.child, beside=localizer.stages_beside)
            stages = dict(result.timings, encode=time.perf_counter() - encode_start)
            marks.append(("encode", encode_cpu))
            marks.append(("end", time.process_time()))
            stages.update({f"cpu:{_cpu_stage(name)}": after - before
                           for (name, before), (_, after) in zip(marks, marks[1:])})
            stages["cam"] = sum(v for k, v in stages.items() if k.startswith("cam_")) + stages.pop("fusion", 0.0)
            stages = {k: v for k, v in stages.items() if not k.startswith("cam_")}
            stages["total"] = time.perf_counter() - wall
            stages["cpu"] = time.process_time() - cpu
            if run >= args.warmup:
                samples.append(stages)
            original, working = result.original_size, result.working_size
            del result
    keys = samples[0].keys()
    reference_after = reference_workload_s()
    return {
        "stages_s": {k: round(float(np.median([s[k] for s in samples])), 4) for k in keys},
        # The fixed reference workload timed in this process before and after (bench.common).
        "reference_s": round((reference_before + reference_after) / 2, 4),
        "reference_before_after_s": [round(reference_before, 4), round(reference_after, 4)],
        "runs": len(samples),
        "original_size": list(original),
        "working_size": list(working),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_imports_mb": round(rss_imports, 1),
        "rss_after_models_mb": round(rss_models, 1),
        "peak_rss_before_encode_mb": round(rss_localized, 1),
        "providers": localizer.providers,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=None, help="wcbnet{2,3,4}.onnx folder (default: contract test models)")
    parser.add_argument("--sizes", default="1,12,48", help=f"megapixels, from {sorted(PHOTO_SIZES)}")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (1 for sizes of 12 MP and more)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--segmenter", default="graph")
    parser.add_argument("--work-max-side", type=int, default=1024)
    parser.add_argument("--views", default=DEFAULT_TEST_TIME_VIEWS, choices=list(TEST_TIME_VIEWS),
                        help="test-time views averaged per model (default: the runtime's)")
    parser.add_argument("--fusion", default=DEFAULT_FUSION, choices=list(FUSION_MODES),
                        help="evidence: every trace (the default pipeline); paper: the models' activation alone")
    parser.add_argument("--photos", default="build/bench_photos", help="where the synthesized JPEGs are cached")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0

    if args.models is None:
        from tests.contract_models import build_contract_model_set

        args.models = str(build_contract_model_set(REPO / "build" / "bench_models" / "contract"))
    rows, results = [], {}
    for megapixels in [int(s) for s in args.sizes.split(",")]:
        width, height = PHOTO_SIZES[megapixels]
        photo = Path(args.photos) / f"photo_{megapixels}mp.jpg"
        if not photo.is_file():
            synth_photo_jpeg(photo, width, height)
        runs = args.runs if megapixels < 12 else 1
        command = [sys.executable, "-m", "bench.bench_pipeline", "--child", str(photo), "--models", args.models,
                   "--runs", str(runs), "--warmup", str(args.warmup if megapixels < 12 else 0),
                   "--threads", str(args.threads), "--segmenter", args.segmenter,
                   "--work-max-side", str(args.work_max_side), "--views", args.views, "--fusion", args.fusion]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            results[f"{megapixels}mp"] = {"error": done.stderr.strip().splitlines()[-1]}
            rows.append([f"{megapixels} MP", *["-"] * (len(STAGE_COLUMNS) + 4), "failed: " + done.stderr.strip().splitlines()[-1]])
            continue
        report = json.loads(done.stdout.strip().splitlines()[-1])
        report["photo"] = {"path": str(photo), "bytes": photo.stat().st_size, "size": [width, height]}
        results[f"{megapixels}mp"] = report
        stages = report["stages_s"]
        report["total_vs_reference"] = relative(stages["total"], report["reference_s"])
        rows.append([f"{megapixels} MP", *[round(stages.get(k, 0.0) * 1000) for k in STAGE_COLUMNS],
                     round(stages["total"], 2), report["total_vs_reference"], round(report["reference_s"] * 1000),
                     round(stages["cpu"], 2), round(report["peak_rss_mb"])])
        print(f"{megapixels} MP done: {stages['total']:.2f} s, peak {report['peak_rss_mb']:.0f} MB", file=sys.stderr)
    payload = {
        "benchmark": "whole pipeline per stage (ms) and peak RSS, one image per run, fresh process per size",
        "command": "python -m bench.bench_pipeline " + " ".join(argv if argv is not None else sys.argv[1:]),
        "models": args.models,
        "model_config": _model_config(args.models),
        "segmenter": args.segmenter,
        "test_time_views": args.views,
        "fusion": args.fusion,
        "machine": machine(),
        "sizes": results,
    }
    out = write_result(result_name("pipeline", args.models, args.views) + f"_{args.fusion}", payload, args.out)
    print("wall time per stage (ms), total wall time (s, and in units of the reference workload timed in the same\n"
          "process: bench.common.reference_workload_s), CPU time (s), peak RSS:")
    print(table(["size", *[f"{k} ms" for k in STAGE_COLUMNS], "total s", "total / reference", "reference ms",
                 "CPU s", "peak RSS MB"], rows))
    cpu_columns = ["decode", "jpeg_traces", "sel", *EVIDENCE_COLUMNS, "wcbnet2", "wcbnet3", "wcbnet4", "segmenter",
                   "similarity+enhancement", "encode"]
    cpu_rows = [[size, *[round(r["stages_s"].get(f"cpu:{k}", 0.0) * 1000) for k in cpu_columns]]
                for size, r in results.items() if "stages_s" in r]
    print("process CPU time per stage (ms; a model's column includes its Grad-CAM):")
    print(table(["size", *cpu_columns], cpu_rows))
    print(f"written {out}")
    return 0


def _model_config(models: str) -> dict:
    import onnx

    configs = {}
    for path in sorted(Path(models).glob("wcbnet*.onnx")):
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        configs[path.name] = json.loads(meta.get("wsloc.config", "{}"))
    return configs


if __name__ == "__main__":
    sys.exit(main())
