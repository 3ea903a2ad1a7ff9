"""Time every registered model-free evidence on synthetic 1 MP and 12 MP (optionally 48 MP) photos.

Each photo is a source photo upscaled with sensor-like noise (see :func:`bench.common.source_photo`),
turned into evidence inputs by :func:`wsloc_runtime.evidence.inputs_for_image` exactly as
``wsloc evaluate --map evidence:NAME`` does; only ``compute`` is timed. Peak memory is the
process's resident high-water mark after each evidence, which only ever grows: run one
evidence per process (``--only noise``) to read one evidence's peak.

    nice -n 10 python -m bench.bench_evidence --sizes 1 12 --repeats 3 --out /tmp/evidence.json
"""

from __future__ import annotations

import argparse
import resource
import time

import cv2
import numpy as np

from bench.common import PHOTO_SIZES, machine, source_photo, stats_ms, table, write_result
from wsloc_runtime.evidence import create_evidence, evidence_names, inputs_for_image


def synthetic_photo(megapixels: int, seed: int = 0) -> np.ndarray:
    """``(h, w, 3)`` ``uint8`` RGB of about ``megapixels`` MP, 4:3, with Gaussian grain (sigma 3)."""
    width, height = PHOTO_SIZES[megapixels]
    photo = cv2.resize(source_photo(), (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    for top in range(0, height, 512):  # strips: a 48 MP float copy would be 1 GB
        strip = photo[top: top + 512]
        grain = rng.normal(0.0, 3.0, strip.shape).astype(np.int16)
        strip[...] = np.clip(strip.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    return photo


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 12], choices=sorted(PHOTO_SIZES),
                        help="photo sizes in megapixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=None, help="evidence names (default: all model-free)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    names = args.only or [n for n in evidence_names() if not create_evidence(n).needs_models]
    rows, results = [], []
    for megapixels in args.sizes:
        photo = synthetic_photo(megapixels)
        inputs = inputs_for_image(photo)
        before = peak_rss_mib()
        for name in names:
            evidence = create_evidence(name)
            if evidence.needs_models:
                raise SystemExit(f"evidence {name!r} reads the models' outputs; it cannot be timed alone")
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                reading = evidence.compute(inputs)
                times.append(time.perf_counter() - start)
            stats = stats_ms(times)
            peak = peak_rss_mib()
            results.append({"evidence": name, "megapixels": megapixels, "size": list(photo.shape[:2]),
                            **stats, "peak_rss_mib": round(peak, 1), "rss_before_mib": round(before, 1),
                            "reliability": round(reading.reliability, 3), "strength": round(reading.strength, 3)})
            rows.append([name, f"{photo.shape[1]}x{photo.shape[0]}", stats["median_ms"], stats["min_ms"],
                         round(peak, 0), round(reading.reliability, 2), round(reading.strength, 2)])
        del photo, inputs
    print(table(["evidence", "photo", "median ms", "min ms", "peak RSS MiB", "reliability", "strength"], rows))
    if args.out:
        write_result("evidence", {"machine": machine(), "results": results}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
