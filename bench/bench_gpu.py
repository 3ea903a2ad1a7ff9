"""The CUDA provider: the three WCBnet variants and the whole pipeline, fp32 and fp16, batch 1.

Meant for a machine with an NVIDIA GPU and onnxruntime-gpu (``bench/gpu_check.sh`` sets one up on
the lent GPU machine); the CPU of the same machine is measured alongside for the speed-up.

    python -m bench.bench_gpu --models assets/models --fp16 build/models_fp16 --sizes 1,12

* variants: one forward pass (logit, F_c, dz/dF_c, copied back to the host, as the pipeline
  uses them) on a random ``[1, H, W, C]`` input, ``H, W`` and ``C`` read from each model's own
  config (:func:`input_shape`: its ``input_size`` and ``input_features``' channels), per file and
  precision, and the largest difference of the fp16 outputs from fp32 on that input;
* pipeline: ``Localizer.localize`` on camera-like JPEGs of 1 and 12 MP (default test-time
  views, ``graph`` segmenter), medians of ``--runs`` after ``--warmup`` (the first CUDA runs
  pay for cuDNN's algorithm search), per stage.

Every row records the providers each session really got; the command fails (exit 2, JSON still
written) when a row that asked for CUDA ran without it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.bench_wcbnet import interleaved
from bench.common import PHOTO_SIZES, machine, stats_ms, synth_photo_jpeg, table, write_result

CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
CPU = ["CPUExecutionProvider"]
VARIANTS = ("wcbnet2", "wcbnet3", "wcbnet4")


def gpu_description() -> dict:
    """The GPU and driver as nvidia-smi reports them, and what onnxruntime was built with."""
    import onnxruntime as ort

    described = {"onnxruntime": ort.__version__, "device": ort.get_device(),
                 "available_providers": ort.get_available_providers()}
    build_info = getattr(ort.capi._pybind_state, "get_build_info", None)
    if build_info:
        described["build_info"] = build_info()
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        described["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        described["nvidia_smi"] = f"not available: {error}"
    return described


def input_shape(model) -> tuple[int, int, int, int]:
    """``[1, H, W, C]`` of a WCBnet's input as its config says (the contract: ``input_size`` and the
    channels of ``input_features``; the bundled models read 4: SEL's three and ``jpeg_sq``)."""
    height, width = model.config.input_size
    return 1, int(height), int(width), int(model.config.input_channels)


def bench_variants(folders: dict[str, Path], runs: int, warmup: int) -> list[dict]:
    """Per variant: CPU fp32, CUDA fp32, CUDA fp16 (where given), taking turns."""
    from wsloc_runtime.wcbnet import WCBnetModel

    rows = []
    for variant in VARIANTS:
        settings = [("CPU", "fp32", CPU), ("CUDA", "fp32", CUDA)] + ([("CUDA", "fp16", CUDA)] if "fp16" in folders else [])
        models = {(device, precision): WCBnetModel(folders[precision] / f"{variant}.onnx", providers)
                  for device, precision, providers in settings}
        shape = input_shape(models[("CPU", "fp32")])
        tensor = np.random.default_rng(0).normal(0.0, 1.0, shape).astype(np.float32)
        wall, _ = interleaved({key: (lambda m=model: m.forward(tensor)) for key, model in models.items()},
                              runs, warmup)
        reference = models[("CUDA", "fp32")].forward(tensor)
        for key, model in models.items():
            output = model.forward(tensor)
            rows.append({
                "variant": variant, "device": key[0], "precision": key[1], "file": str(model.path),
                "input": list(shape), "providers": model.providers, **stats_ms(wall[key]),
                "features_max_rel_diff_vs_cuda_fp32": float(np.abs(output.features - reference.features).max()
                                                            / max(float(np.abs(reference.features).max()), 1e-12)),
                "logit_abs_diff_vs_cuda_fp32": abs(output.logit - reference.logit),
            })
    return rows


def bench_pipeline(folders: dict[str, Path], sizes: list[int], runs: int, warmup: int, photos: Path) -> list[dict]:
    from wsloc_runtime.pipeline import Localizer

    settings = [("CPU", "fp32", CPU), ("CUDA", "fp32", CUDA)] + ([("CUDA", "fp16", CUDA)] if "fp16" in folders else [])
    rows = []
    for device, precision, providers in settings:
        localizer = Localizer(folders[precision], providers=providers)
        for megapixels in sizes:
            width, height = PHOTO_SIZES[megapixels]
            photo = photos / f"photo_{megapixels}mp.jpg"
            if not photo.is_file():
                synth_photo_jpeg(photo, width, height)
            totals, stages = [], []
            for run in range(warmup + runs):
                start = time.perf_counter()
                result = localizer.localize(str(photo))
                if run >= warmup:
                    totals.append(time.perf_counter() - start)
                    stages.append(result.timings)
            rows.append({
                "device": device, "precision": precision, "megapixels": megapixels, "size": [width, height],
                "providers": result.providers, "test_time_views": localizer.test_time_views,
                **stats_ms(totals),
                "stages_ms": {k: round(float(np.median([s[k] for s in stages])) * 1000, 2) for k in stages[0]},
            })
            print(f"pipeline {device} {precision} {megapixels} MP: {np.median(totals):.3f} s", file=sys.stderr)
    return rows


def cuda_missing(rows: list[dict]) -> list[str]:
    """Rows that asked for CUDA and did not get it for every session."""
    missing = []
    for row in rows:
        if row["device"] != "CUDA":
            continue
        providers = row["providers"] if isinstance(row["providers"], dict) else {row.get("variant", "?"): row["providers"]}
        missing += [f"{row['precision']} {name}" for name, got in providers.items()
                    if name in VARIANTS and "CUDAExecutionProvider" not in got]
    return list(dict.fromkeys(missing))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="assets/models", type=Path, help="fp32 wcbnet{2,3,4}.onnx folder")
    parser.add_argument("--fp16", type=Path, help="the same converted by python -m export.fp16 (fp16 rows skipped without)")
    parser.add_argument("--sizes", default="1,12", help=f"pipeline photo sizes in megapixels, from {sorted(PHOTO_SIZES)}")
    parser.add_argument("--runs", type=int, default=20, help="timed forward passes per variant and setting")
    parser.add_argument("--pipeline-runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--photos", default="build/bench_photos", type=Path)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    folders = {"fp32": args.models} | ({"fp16": args.fp16} if args.fp16 else {})
    sizes = [int(s) for s in args.sizes.split(",")]
    variants = bench_variants(folders, args.runs, args.warmup)
    pipeline = bench_pipeline(folders, sizes, args.pipeline_runs, args.warmup, args.photos)
    missing = cuda_missing(variants + pipeline)
    payload = {
        "benchmark": "CUDA provider: WCBnet variants (one forward pass, batch 1) and the whole pipeline, fp32/fp16",
        "command": "python -m bench.bench_gpu " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "gpu": gpu_description(), "variants": variants, "pipeline": pipeline,
        "cuda_missing": missing,
    }
    out = write_result("gpu", payload, args.out)

    print("WCBnet variants, one forward pass (batch 1), median ms:")
    print(table(["variant", "device", "precision", "median ms", "providers", "max rel. diff F_c vs CUDA fp32"],
                [[r["variant"], r["device"], r["precision"], r["median_ms"], ", ".join(r["providers"]),
                  f"{r['features_max_rel_diff_vs_cuda_fp32']:.1e}"] for r in variants]))
    print("Whole pipeline, median s per photo, and its stages (ms):")
    stage_names = list(pipeline[0]["stages_ms"]) if pipeline else []
    print(table(["device", "precision", "MP", "total s", *stage_names, "providers (wcbnet2)"],
                [[r["device"], r["precision"], r["megapixels"], round(r["median_ms"] / 1000, 3),
                  *[r["stages_ms"].get(k) for k in stage_names], ", ".join(r["providers"].get("wcbnet2", []))]
                 for r in pipeline]))
    print(f"written {out}")
    if missing:
        print(f"CUDA did not run for: {', '.join(missing)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
