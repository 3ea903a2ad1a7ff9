"""Batch throughput (images/s) of ``wsloc batch`` with 1..N local worker processes.

Runs the batch module's own worker loop (the code behind ``wsloc batch --workers N``) on
a folder of photos and records when each image finishes. Throughput is steady-state:
the first image of each worker (process start, model loading, first-call warm-up) is
left out, then ``images / seconds`` over the rest.

    nice -n 15 python -m bench.bench_batch --models build/bench_models/resnet50 --images 24

Configurations are ``WORKERSxTHREADS``: threads per worker for onnxruntime, OpenCV and numpy's
BLAS alike (``wsloc batch --threads-per-worker``); ``0`` is the batch's default rule,
``max(1, usable cores // workers)`` (``wsloc_runtime.threads``), and the table shows the number it
gave. ``vs 1 worker`` is against one worker with the default rule. ``CPU s/img`` is all processes' CPU time over the images (start-up
included): on a host shared with other jobs it shows whether more workers cost more work per
image, which wall-clock throughput there cannot.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import KODAK_PHOTO, machine, reference_workload_s, result_name, source_photo, table, write_result
from wsloc_runtime.views import DEFAULT_TEST_TIME_VIEWS, TEST_TIME_VIEWS

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, count: int, width: int, height: int) -> list[str]:
    """``count`` distinct JPEGs (Kodak photos when available, else crops of one photo)."""
    folder.mkdir(parents=True, exist_ok=True)
    kodak = sorted(KODAK_PHOTO.parent.glob("kodim*.png")) if KODAK_PHOTO.is_file() else []
    paths = []
    rng = np.random.default_rng(0)
    for index in range(count):
        if kodak:
            rgb = cv2.cvtColor(cv2.imread(str(kodak[index % len(kodak)])), cv2.COLOR_BGR2RGB)
        else:
            base = source_photo()
            top, left = (index * 17) % (base.shape[0] // 4), (index * 29) % (base.shape[1] // 4)
            rgb = base[top:, left:]
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
        rgb = np.clip(rgb.astype(np.int16) + rng.normal(0, 3, rgb.shape).astype(np.int16), 0, 255).astype(np.uint8)
        path = folder / f"photo{index:03d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(str(path))
    return paths


def measure(paths: list[str], models: str, workers: int, threads: int, views: str = DEFAULT_TEST_TIME_VIEWS) -> dict:
    import argparse as ap

    from wsloc_runtime.batch import _local_rows, worker_threads
    from wsloc_runtime.threads import usable_cores
    from wsloc_runtime.cli import output_stems

    settings = ap.Namespace(models=models, variants="2,3,4", segmenter="graph", segmenter_models=None,
                            providers="CPUExecutionProvider", work_max_side=1024, threads=0, views=views,
                            threads_per_worker=threads)
    with tempfile.TemporaryDirectory() as out:
        # CPU of this process (1 worker runs here) plus that of reaped worker processes.
        cpu_start = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime \
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
        start = time.perf_counter()
        finished = []
        for row in _local_rows(list(zip(paths, output_stems(paths))), Path(out), settings, workers):
            if row["error"]:
                raise RuntimeError(row["error"])
            finished.append(time.perf_counter() - start)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = time.process_time() + children.ru_utime + children.ru_stime - cpu_start
    steady = finished[workers - 1 :]  # from the moment every worker has finished its first image
    images_per_s = (len(steady) - 1) / (steady[-1] - steady[0])
    return {"workers": workers, "threads_setting": threads or "default",
            "threads_per_worker": worker_threads(workers, threads), "usable_cores": usable_cores(),
            "images": len(paths), "total_s": round(finished[-1], 2), "images_per_s": round(images_per_s, 3),
            "end_to_end_images_per_s": round(len(paths) / finished[-1], 3),
            "cpu_s_per_image": round(cpu_seconds / len(paths), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=None, help="wcbnet{2,3,4}.onnx folder (default: contract test models)")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", default="1152x864", help="photo size WxH (default 1 MP)")
    parser.add_argument("--configs", default="1x0,2x0,2x2",
                        help="WORKERSxTHREADS, comma-separated (threads per worker for onnxruntime, OpenCV and "
                             "BLAS; 0 = the default rule, max(1, cores // workers))")
    parser.add_argument("--views", default=DEFAULT_TEST_TIME_VIEWS, choices=list(TEST_TIME_VIEWS),
                        help="test-time views averaged per model (default: the runtime's)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.models is None:
        from tests.contract_models import build_contract_model_set

        args.models = str(build_contract_model_set(REPO / "build" / "bench_models" / "contract"))
    width, height = (int(v) for v in args.size.split("x"))
    reference_before = reference_workload_s()
    with tempfile.TemporaryDirectory() as folder:
        paths = make_photos(Path(folder), args.images, width, height)
        results = []
        for config in args.configs.split(","):
            workers, threads = (int(v) for v in config.split("x"))
            result = measure(paths, str(Path(args.models).resolve()), workers, threads, args.views)
            print(f"{config}: {result['images_per_s']:.2f} img/s", file=sys.stderr)
            results.append(result)
    base = next((r["images_per_s"] for r in results if r["workers"] == 1 and r["threads_setting"] == "default"),
                results[0]["images_per_s"])
    reference_s = (reference_before + reference_workload_s()) / 2
    for result in results:
        result["speedup_vs_1_worker"] = round(result["images_per_s"] / base, 2)
        # Seconds per photo in units of the reference workload (bench.common.reference_workload_s).
        result["s_per_image_vs_reference"] = round(1.0 / result["images_per_s"] / reference_s, 2)
    payload = {
        "benchmark": "wsloc batch steady-state throughput, local worker processes",
        "command": "python -m bench.bench_batch " + " ".join(argv if argv is not None else sys.argv[1:]),
        "models": args.models,
        "photo_size": [width, height],
        "test_time_views": args.views,
        "machine": machine(),
        "reference_s": round(reference_s, 4),
        "results": results,
    }
    out = write_result(result_name("batch", args.models, args.views), payload, args.out)
    rows = [[r["workers"], f"{r['threads_per_worker']} ({'rule' if r['threads_setting'] == 'default' else 'set'})",
             r["images_per_s"], f"{r['speedup_vs_1_worker']:.2f}x", r["s_per_image_vs_reference"],
             r["end_to_end_images_per_s"], r["total_s"], r["cpu_s_per_image"]] for r in results]
    print(f"reference workload (bench.common.reference_workload_s): {reference_s * 1000:.0f} ms")
    print(table(["workers", "threads/worker", "img/s (steady)", "vs 1 worker", "s/img / reference",
                 "img/s (incl. start-up)", "total s",
                 "CPU s/img (incl. start-up)"], rows))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
