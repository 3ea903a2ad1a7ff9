"""Large photos: strip-wise SEL equals whole-image SEL, big inputs run end to end within a memory
bound, and inputs above the pixel limit are refused before they are decoded."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from tests.contract_models import build_contract_model_set
from wsloc_runtime import sel as sel_module
from wsloc_runtime.errors import InvalidImageError
from wsloc_runtime.imageio import DEFAULT_MAX_PIXELS, load_image

REPO = Path(__file__).resolve().parents[1]


def camera_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo upscaled to ``width x height`` with noise, so every 8x8 block carries signal."""
    rng = np.random.default_rng(seed)
    big = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(big.astype(np.int16) + rng.normal(0, 3, big.shape).astype(np.int16), 0, 255).astype(np.uint8)


def test_strip_sel_equals_whole_image_sel(monkeypatch):
    rgb = camera_like(2600, 1750)  # 4.55 MP: above STRIP_THRESHOLD_PIXELS
    assert rgb.shape[0] * rgb.shape[1] > sel_module.STRIP_THRESHOLD_PIXELS
    whole = sel_module.signed_error_levels(rgb, 90)
    sizes = [(384, 384), (669, 1024), (257, 301)]  # square, aspect-kept, and a ratio that is not an integer
    expected = [cv2.resize(whole, (w, h), interpolation=cv2.INTER_AREA) for h, w in sizes]

    heights = []
    original = sel_module.signed_error_levels

    def recording(strip, quality=90):
        heights.append(strip.shape[0])
        return original(strip, quality)

    monkeypatch.setattr(sel_module, "signed_error_levels", recording)
    stripped = sel_module.resized_error_levels(rgb, sizes, 90)
    assert len(heights) > 1 and max(heights) < rgb.shape[0]  # the strip path really ran
    # The strip path area-resizes separably (OpenCV on columns, our float32 weights on rows) where
    # the reference resizes in one OpenCV call: the same weighted means in another summation order.
    # An output value is a mean of <= rows x cols float32 terms of size <= max|SEL|, taken as a sum
    # over <= rows source rows of sums over <= cols source columns (rows = ceil(H / h) + 1 touched
    # rows, likewise cols): each pass rounds within (terms) * eps32 * max|SEL|.
    peak = float(np.abs(whole).max())
    for (h, w), got, want in zip(sizes, stripped, expected):
        assert got.shape == (h, w, 3) and got.dtype == np.float32
        rows, cols = -(-rgb.shape[0] // h) + 1, -(-rgb.shape[1] // w) + 1
        tolerance = (rows + cols) * np.finfo(np.float32).eps * peak
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)


def test_big_photo_runs_end_to_end_within_memory(tmp_path):
    """A 17-MP JPEG through ``wsloc localize`` in a fresh process: full-size outputs, bounded peak RSS."""
    width, height = 4800, 3600
    photo = tmp_path / "big.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(camera_like(width, height), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    models = build_contract_model_set(tmp_path / "models")
    out = tmp_path / "out"
    script = (
        "import sys\n"
        "from wsloc_runtime.cli import main\n"
        "code = main(['-q', 'localize', sys.argv[1], '--out', sys.argv[2], '--models', sys.argv[3]])\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so this child would report
        # the peak of the pytest process that spawned it.
        "print([int(l.split()[1]) // 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, WSLOC_PROVIDERS="CPUExecutionProvider",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", script, str(photo), str(out), str(models)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.strip().splitlines()[-1])
    # 17 MP is 52 MB as uint8 RGB and 207 MB as one float32 RGB copy; bench/bench_pipeline.py measured
    # about 0.5 GB here. A bound of 1 GB fails if full-size float copies start to pile up.
    assert peak_mb < 1024, f"peak RSS {peak_mb} MB"
    payload = json.loads((out / "big.json").read_text())
    assert payload["original_size"] == [height, width]
    assert max(payload["working_size"]) == 1024
    for name in ("big_heatmap.png", "big_mask.png"):
        assert cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED).shape[:2] == (height, width)
    assert cv2.imread(str(out / "big_overlay.png")).shape[:2] == tuple(payload["working_size"])


def jpeg_claiming_size(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header claims ``width x height``: refused before any decoding."""
    ok, encoded = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data_bytes = bytearray(encoded.tobytes())
    sof = data_bytes.index(b"\xff\xc0")
    data_bytes[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data_bytes)


def test_photo_above_the_pixel_limit_is_refused_with_its_size():
    assert 12000 * 9000 <= DEFAULT_MAX_PIXELS  # a 108-MP photo is accepted (about 1.6 GB peak, see docs)
    with pytest.raises(InvalidImageError, match=r"12000x11000 = 132\.0 MP; the limit is 120 MP"):
        load_image(jpeg_claiming_size(12000, 11000))


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG header (IHDR, an empty IDAT, IEND) that claims a size; nothing to decode."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_photo_beyond_what_pillow_opens_is_refused_with_its_real_size():
    """Pillow refuses to open over 179 MP without saying the size; the message once read "over 179 MP"."""
    with pytest.raises(InvalidImageError, match=r"<\d+ bytes>: image is 20000x20000 = 400\.0 MP; the limit is 120 MP$"):
        load_image(png_claiming_size(20000, 20000))
    with pytest.raises(InvalidImageError, match=r"20000x20000 = 400\.0 MP, over the 179 MP that Pillow will open"):
        load_image(png_claiming_size(20000, 20000), max_pixels=500_000_000)


def test_cli_limit_comes_before_pillow_and_its_warning_never_reaches_the_user(tmp_path):
    """Each header is refused by wsloc's own check, with its size and the limit set on the command
    line, without Pillow's DecompressionBombWarning (Pillow warns above 89 MP) on stderr."""
    headers = {"ninety.jpg": (10000, 9000), "large.jpg": (12000, 11000), "beyond_pillow.jpg": (15000, 15000)}
    for name, size in headers.items():
        (tmp_path / name).write_bytes(jpeg_claiming_size(*size))
    models = build_contract_model_set(tmp_path / "models")
    env = dict(os.environ, WSLOC_PROVIDERS="CPUExecutionProvider",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "wsloc_runtime", "-q", "localize", *(str(tmp_path / name) for name in headers),
         "--out", str(tmp_path / "out"), "--models", str(models), "--max-megapixels", "50"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    assert "ninety.jpg: image is 10000x9000 = 90.0 MP; the limit is 50 MP" in done.stderr
    assert "large.jpg: image is 12000x11000 = 132.0 MP; the limit is 50 MP" in done.stderr
    assert "beyond_pillow.jpg: image is 15000x15000 = 225.0 MP; the limit is 50 MP" in done.stderr
    assert "DecompressionBomb" not in done.stderr and "warn" not in done.stderr.lower(), done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    usage = subprocess.run([sys.executable, "-m", "wsloc_runtime", "localize", "--help"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert "--max-megapixels" in usage.stdout and "default 120" in " ".join(usage.stdout.split())
