"""Signed error levels (SEL): the one implementation shared by training, export and runtime.

SEL = float(image) - float(JPEG_q(image)), per channel, at the image's own resolution
(resizing first would destroy the 8x8 JPEG grid the signal lives on), then resized to
the network input with area interpolation and scaled as the model's metadata says.

Large images are processed in horizontal strips so that no full-size float copy of
the image is ever held: JPEG blocks are independent, and a 16-row margin around each
strip makes the strip's error levels bit-identical to those of the whole image
(4:2:0 MCUs are 16x16 and the decoder's chroma upsampling reads one neighbour row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

#: JPEG encoder settings that define SEL. Changing any of them changes every model's input.
JPEG_SAMPLING = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
_MCU = 16
#: Images up to this many pixels are processed in one piece.
STRIP_THRESHOLD_PIXELS = 4_000_000
#: Rows per strip for larger images (a multiple of the MCU height).
STRIP_ROWS = 512


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``rgb`` (HxWx3 uint8) as baseline 4:2:0 JPEG at ``quality`` and decode it again."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, JPEG_SAMPLING]
    ok, encoded = cv2.imencode(".jpg", bgr, params)
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the image")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def signed_error_levels(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """Full-resolution SEL.

    Args:
        rgb: ``HxWx3`` ``uint8`` RGB image.
        quality: JPEG quality of the re-encoding (1..100).

    Returns:
        ``HxWx3`` ``float32`` array in ``[-255, 255]``: image minus its re-encoded copy.
    """
    _check_rgb(rgb)
    # One pass straight to float32 (the same exact integer differences as subtracting two float copies).
    return cv2.subtract(rgb, jpeg_roundtrip(rgb, quality), dtype=cv2.CV_32F)


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("expected an HxWx3 uint8 RGB array (use wsloc_runtime.load_image)")


def _area_weights(source: int, target: int) -> np.ndarray:
    """(target x source) matrix of area-interpolation weights; rows sum to 1 (downsampling only)."""
    scale = source / target
    starts = np.arange(target) * scale
    ends = starts + scale
    edges = np.arange(source + 1, dtype=np.float64)
    overlap = np.clip(
        np.minimum(ends[:, None], edges[None, 1:]) - np.maximum(starts[:, None], edges[None, :-1]), 0.0, None
    )
    return (overlap / scale).astype(np.float32)


def _area_bands(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_area_weights` as bands: each output row's first source row ``(target,)`` and the weights
    of it and the next rows ``(target, K)`` (zero-padded): an output row overlaps at most
    ``ceil(source / target) + 1`` source rows, so the dense matrix is almost all zeros."""
    dense = _area_weights(source, target)
    nonzero = dense > 0
    first = np.argmax(nonzero, axis=1)
    last = source - np.argmax(nonzero[:, ::-1], axis=1)
    width = int((last - first).max()) if target else 0
    columns = first[:, None] + np.arange(width)[None, :]
    weights = np.where(columns < source, np.take_along_axis(dense, np.minimum(columns, source - 1), axis=1), 0.0)
    return first.astype(np.int64), weights.astype(np.float32)


def resized_error_levels(
    rgb: np.ndarray, sizes: Sequence[tuple[int, int]], quality: int = 90
) -> list[np.ndarray]:
    """SEL computed at native resolution, area-resized to each ``(height, width)`` in ``sizes``.

    Memory stays bounded for large images: SEL is computed strip by strip and each
    strip is folded into every output at once.

    Returns:
        One ``float32`` array of shape ``(height, width, 3)`` per requested size.
    """
    return error_levels_pass(rgb, sizes, quality).resized


@dataclass
class ErrorLevels:
    """What one JPEG re-encoding of a photo gives (:func:`error_levels_pass`).

    Attributes:
        resized: the SEL area-resized to each requested size, ``float32`` ``(h, w, 3)``.
        ela: :func:`error_level_map` of the photo area-resized to ``ela_size`` (``None`` when not asked).
        ela_peak: the error-level map's maximum before its division (0: JPEG changes nothing).
        quality: the re-encoding's JPEG quality.
    """

    resized: list[np.ndarray]
    ela: np.ndarray | None = None
    ela_peak: float = 0.0
    quality: int = 90


#: The error-level map's Gaussian blur (:func:`error_level_map`).
ELA_SIGMA = 3.0


def error_levels_pass(
    rgb: np.ndarray, sizes: Sequence[tuple[int, int]], quality: int = 90, ela_size: tuple[int, int] | None = None,
) -> ErrorLevels:
    """The SEL resized to each of ``sizes`` and, when ``ela_size`` is given, the error-level map
    (:func:`error_level_map` at ``quality``, area-resized to ``ela_size``), from ONE JPEG re-encoding.

    Both are the same numbers as computing them apart (bit for bit): the map's blur reads
    :data:`_BLUR_MARGIN` rows beyond each strip, whose SEL is exact because each strip is re-encoded
    with a margin of :data:`_ELA_MCU_MARGIN` rows (whole MCUs). Memory: no full-size float copy of
    the photo; the blurred map (one float per pixel) is the one full-size array kept when the map is
    asked for.
    """
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    sizes = [(int(h), int(w)) for h, w in sizes]
    downsampling_only = all(h <= height and w <= width for h, w in sizes)
    if height * width <= STRIP_THRESHOLD_PIXELS or not downsampling_only:
        sel = signed_error_levels(rgb, quality)
        resized = [cv2.resize(sel, (w, h), interpolation=cv2.INTER_AREA) for h, w in sizes]
        if ela_size is None:
            return ErrorLevels(resized, quality=int(quality))
        blurred = _blurred_magnitude(sel)
        del sel
        return _ela_levels(resized, blurred, ela_size, quality)

    row_bands = [_area_bands(height, h) for h, _ in sizes]
    outputs = [np.zeros((h, w * 3), np.float32) for h, w in sizes]
    blurred = np.empty((height, width), np.float32) if ela_size is not None else None
    margin = _MCU if ela_size is None else _ELA_MCU_MARGIN
    for top in range(0, height, STRIP_ROWS):
        bottom = min(top + STRIP_ROWS, height)
        pad_top, pad_bottom = max(0, top - margin), min(height, bottom + margin)
        padded_sel = signed_error_levels(rgb[pad_top:pad_bottom], quality)
        strip_sel = padded_sel[top - pad_top : bottom - pad_top]
        if blurred is not None:
            # The blur of rows [top, bottom) reads _BLUR_MARGIN rows each side; at the photo's
            # edges the strip's edge is the photo's, and the border rule the same.
            low, high = max(0, top - _BLUR_MARGIN), min(height, bottom + _BLUR_MARGIN)
            window = _blurred_magnitude(padded_sel[low - pad_top : high - pad_top])
            blurred[top:bottom] = window[top - low : bottom - low]
            del window
        for (h, w), (first_rows, weights), out in zip(sizes, row_bands, outputs):
            # Area resize is separable: columns with OpenCV, rows with the weights. Each output row
            # reads a few source rows only (its band): for the k-th of them, the output rows whose
            # k-th source row lies in this strip get weight x that row, a few multiply-adds per
            # output value where a dense matrix product would spend one per strip row.
            narrowed = cv2.resize(strip_sel, (w, bottom - top), interpolation=cv2.INTER_AREA)
            narrowed = narrowed.reshape(bottom - top, w * 3)
            for k in range(weights.shape[1]):
                source_rows = first_rows + k
                low, high = np.searchsorted(source_rows, [top, bottom])
                if high > low:
                    out[low:high] += weights[low:high, k, None] * narrowed[source_rows[low:high] - top]
        del padded_sel, strip_sel
    resized = [out.reshape(h, w, 3) for (h, w), out in zip(sizes, outputs)]
    if blurred is None:
        return ErrorLevels(resized, quality=int(quality))
    return _ela_levels(resized, blurred, ela_size, quality)


#: Gaussian kernel radius OpenCV uses for ELA_SIGMA on float maps (ksize = round(8 sigma + 1) | 1).
_BLUR_MARGIN = int(round(ELA_SIGMA * 4 * 2 + 1)) // 2 + 1
#: A strip re-encoded with this many more rows each side (whole MCUs) has exact SEL over
#: _MCU rows more than without: enough for the blur's margin.
_ELA_MCU_MARGIN = _MCU * (1 + -(-_BLUR_MARGIN // _MCU))


def _blurred_magnitude(sel: np.ndarray, sigma: float = ELA_SIGMA) -> np.ndarray:
    """``|sel|``'s channel mean, blurred. The channel mean as ``(|r| + |g|) + |b|`` then ``/ 3``: the
    same float32 operations as ``np.abs(sel).mean(axis=2)`` (SEL values are integers, so the sum
    is exact either way), without numpy's slow reduction over an axis of length 3."""
    absolute = np.abs(sel)
    magnitude = absolute[..., 0] + absolute[..., 1]
    magnitude += absolute[..., 2]
    del absolute
    magnitude /= 3
    return cv2.GaussianBlur(magnitude, (0, 0), sigmaX=sigma, sigmaY=sigma)


def _ela_levels(resized: list[np.ndarray], blurred: np.ndarray, ela_size: tuple[int, int],
                quality: int) -> ErrorLevels:
    """The error-level map from its blurred magnitude, as :func:`error_level_map` then the evidence's
    area resize would make it (division first, then the resize, in float32)."""
    from .evidence.base import resize_map

    peak = float(blurred.max())
    if peak > 0:
        blurred /= peak
    else:
        blurred = np.zeros_like(blurred, np.float32)
    return ErrorLevels(resized, resize_map(blurred, ela_size), peak, int(quality))


def scale_error_levels(sel: np.ndarray, mode: str, scale: float, clip: float) -> np.ndarray:
    """Map resized SEL to the network's input range.

    Args:
        sel: ``float32`` SEL (any shape).
        mode: ``"fixed"`` divides by ``scale``; ``"std"`` divides by the image's own
            standard deviation times ``scale`` (robust to how much area-resizing
            averaged the signal away).
        clip: the result is clipped to ``[-clip, clip]``.
    """
    if mode == "fixed":
        scaled = sel / np.float32(scale)
    elif mode == "std":
        scaled = sel / np.float32(scale * (float(sel.std()) + 1e-3))
    else:
        raise ValueError(f"unknown SEL scaling mode {mode!r}; expected 'fixed' or 'std'")
    return np.clip(scaled, -clip, clip).astype(np.float32)


def sel_display(sel: np.ndarray) -> np.ndarray:
    """Render signed error levels for people: mid-gray is zero, brighter/darker is +/- error.

    Returns ``HxWx3`` ``uint8``; the contrast is stretched by the 99th percentile of |SEL|.
    """
    magnitude = float(np.percentile(np.abs(sel), 99)) if sel.size else 0.0
    magnitude = max(magnitude, 1e-3)
    return np.clip(127.5 + 127.5 * sel / magnitude, 0, 255).astype(np.uint8)


def error_level_map(rgb: np.ndarray, quality: int = 90, sigma: float = 3.0) -> np.ndarray:
    """The plain error-level baseline: ``|image - JPEG_q(image)|``, channel mean, Gaussian blur,
    divided by its maximum.

    Returns ``(H, W)`` ``float32`` in [0, 1] (all zeros for an image JPEG leaves unchanged).
    """
    blurred = _blurred_magnitude(signed_error_levels(rgb, quality), sigma)
    peak = float(blurred.max())
    return (blurred / peak).astype(np.float32) if peak > 0 else np.zeros_like(blurred, np.float32)
