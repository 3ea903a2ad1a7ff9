"""How fast the output PNGs encode, and how large they are, under OpenCV's PNG settings.

The pictures are what ``wsloc localize`` writes at the photo's size: the heatmap of a smooth map
(colour-mapped at the working size, enlarged bilinearly) and a mask. Each setting is checked to
decode to the same pixels.

    python -m bench.bench_png --sizes 1,12 --runs 3
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from bench.common import PHOTO_SIZES, machine, table, write_result
from wsloc_runtime.imageio import PNG_COMPRESSION, png_parameters
from wsloc_runtime.viz import heatmap, mask_image

SETTINGS = {
    "opencv default (zlib 3)": [],
    "zlib 1": [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION],
    "runtime (png_parameters)": png_parameters(),
}


def pictures(width: int, height: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A heatmap and a mask at ``width x height``, from a smooth random map at 1024 px."""
    rng = np.random.default_rng(seed)
    work = (1024, round(1024 * height / width))
    smooth = cv2.GaussianBlur(rng.random(work[::-1]).astype(np.float32), (0, 0), 30)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return {
        "heatmap": cv2.resize(heatmap(smooth), (width, height), interpolation=cv2.INTER_LINEAR),
        "mask": mask_image(cv2.resize(smooth, (width, height)) >= 0.5),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,12", help=f"megapixels, from {sorted(PHOTO_SIZES)}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    rows, results = [], []
    for megapixels in [int(s) for s in args.sizes.split(",")]:
        for picture_name, picture in pictures(*PHOTO_SIZES[megapixels]).items():
            for setting, parameters in SETTINGS.items():
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    ok, encoded = cv2.imencode(".png", picture, parameters)
                    times.append(time.perf_counter() - start)
                if not ok:
                    raise RuntimeError(f"OpenCV could not encode with {setting}")
                same = bool(np.array_equal(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED), picture))
                row = {"megapixels": megapixels, "picture": picture_name, "setting": setting,
                       "median_ms": round(float(np.median(times)) * 1000, 1), "kilobytes": encoded.size // 1024,
                       "same_pixels": same}
                results.append(row)
                rows.append(list(row.values()))
    print(table(["MP", "picture", "setting", "median ms", "KB", "same pixels"], rows))
    path = write_result("png_encode", {"machine": machine(), "command": "python -m bench.bench_png " +
                                       f"--sizes {args.sizes} --runs {args.runs}", "results": results}, args.out)
    print(f"written {path}")
    return 0 if all(r["same_pixels"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
