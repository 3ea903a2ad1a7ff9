"""Helpers shared by the benchmark scripts: machine description, tables, JSON results, test photos."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Sequence

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: A lossless Kodak photo when ../shared is present; skimage's bundled photo otherwise.
KODAK_PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim05.png"
#: Megapixel sizes as (width, height), 4:3 like most camera sensors.
PHOTO_SIZES = {1: (1152, 864), 12: (4000, 3000), 48: (8000, 6000), 108: (12000, 9000)}


def machine() -> dict:
    """What the numbers were measured on; load matters because the host is shared."""
    import onnxruntime
    import psutil

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-markdown table (also readable in a terminal)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
             "| " + " | ".join("-" * w for w in widths) + " |"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def result_name(kind: str, models: str | os.PathLike, views: str) -> str:
    """``<kind>_<models folder>[_<views>]``: results measured before test-time views existed
    ran one pass and keep their names, so ``none`` adds no suffix."""
    suffix = "" if views == "none" else f"_{views}"
    return f"{kind}_{Path(models).name}{suffix}"


def write_result(name: str, payload: dict, out: str | os.PathLike | None = None) -> Path:
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def stats_ms(times: Sequence[float]) -> dict:
    """Median is what the tables show: the host runs other jobs, which inflates the mean."""
    array = np.asarray(times) * 1000.0
    return {"median_ms": round(float(np.median(array)), 2), "min_ms": round(float(array.min()), 2),
            "mean_ms": round(float(array.mean()), 2), "runs": int(array.size)}


def source_photo() -> np.ndarray:
    """An RGB uint8 photo to synthesize test images from."""
    import cv2

    if KODAK_PHOTO.is_file():
        return cv2.cvtColor(cv2.imread(str(KODAK_PHOTO)), cv2.COLOR_BGR2RGB)
    from skimage import data

    return data.astronaut()


def synth_photo_jpeg(path: str | os.PathLike, width: int, height: int, quality: int = 90, seed: int = 0) -> Path:
    """A camera-like JPEG of ``width x height``: a photo upscaled, with sensor-like noise, JPEG-encoded.

    Noise is added in strips so that a 108-MP photo does not need a float copy in memory.
    """
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.resize(source_photo(), (width, height), interpolation=cv2.INTER_CUBIC)
    for top in range(0, height, 1024):
        strip = big[top : top + 1024]
        noise = rng.normal(0.0, 3.0, strip.shape).astype(np.int16)
        strip[...] = np.clip(strip.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("could not encode the test photo")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.tobytes())
    return path


#: The reference workload's photo: skimage's astronaut (bundled with scikit-image, the same on
#: every machine) at 1 MP, JPEG quality 90.
REFERENCE_SIZE = (1152, 864)


def _reference_jpeg() -> bytes:
    import cv2
    from skimage import data

    photo = cv2.resize(data.astronaut(), REFERENCE_SIZE, interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("could not encode the reference photo")
    return encoded.tobytes()


def reference_workload_s(repeats: int = 7) -> float:
    """Seconds for a fixed workload on a fixed photo, median of ``repeats``: decode a 1 MP JPEG,
    Gaussian blur, JPEG encode, 2-D FFT of its luminance. The kinds of work the pipeline does,
    none of wsloc's own code: two machines of the same kind (or one machine, busy and quiet) that
    differ in speed differ in it too, so a figure divided by it travels between machines better
    than seconds do. Benchmarks time it in the process that measures, before and after."""
    import cv2

    encoded = np.frombuffer(_reference_jpeg(), np.uint8)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        bgr = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        blurred = cv2.GaussianBlur(bgr, (0, 0), 2.0)
        cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, 90])
        luminance = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        np.fft.rfft2(luminance)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def relative(seconds: float, reference_s: float) -> float:
    """``seconds`` in units of the reference workload (see :func:`reference_workload_s`)."""
    return round(seconds / reference_s, 2)
