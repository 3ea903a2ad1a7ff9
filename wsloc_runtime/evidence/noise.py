"""``noise``: where the photo's grain (sensor noise) does not fit the rest of the photo.

A camera leaves a fine grain on every pixel whose strength depends only on the sensor, the
settings and the brightness. A region pasted from another photo, retouched, blurred, inpainted
(diffusion inpaintings are smoother than camera grain) or upscaled carries a different grain.

Method (training-free, in the spirit of noise-level inconsistency methods such as Splicebuster
and Mahdian & Saic's, but with a much simpler local statistic):

1. Luminance at the photo's own resolution (area-downscaled by an integer factor only beyond
   :data:`MAX_ANALYSIS_PIXELS`, in strips, so that a 48 MP photo never has a full float copy).
2. A second-order high-pass residual (Immerkaer's 3x3 kernel, which cancels flat areas and
   linear ramps) whose mean absolute value per 8x8 cell estimates the local noise sigma.
3. Texture inflates that estimate, never deflates it, so each cell takes the *flattest* cell of
   its 3x3 neighbourhood (a 24x24 block); cells clipped to black or white carry no grain and are
   left out.
4. The photo's own noise model: the median log-sigma as a function of brightness (noise grows
   with brightness on a sensor); each block's deviation from it, smoothed, divided by its
   robust spread (MAD), is a z-score. A logistic of ``|z|`` centred on :data:`Z_MID` is the map, so its 0.5
   means "the grain here is two robust spreads or more off the photo's own".
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence

#: Beyond this many pixels the luminance is area-downscaled by an integer factor first: it keeps
#: time and memory bounded on 12-108 MP photos; averaging k x k pixels lowers every region's grain
#: by the same factor k, so differences between regions survive.
MAX_ANALYSIS_PIXELS = 3_000_000
#: Rows of the photo converted to float at a time: 256 rows of an 8000-px-wide photo are 24 MB.
STRIP_NATIVE_ROWS = 256
#: Side of the cell whose mean absolute residual is one noise sample, in analysis pixels.
CELL = 8
#: Neighbourhood (in cells) in which the flattest cell stands for the block.
BLOCK_CELLS = 3
#: Immerkaer's kernel: zero response to constants and linear ramps; sum of squares 36.
_HIGH_PASS = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
#: mean |residual| = sigma * 6 * sqrt(2 / pi) for Gaussian noise through :data:`_HIGH_PASS`.
_MEAN_ABS_TO_SIGMA = 1.0 / (6.0 * math.sqrt(2.0 / math.pi))
#: Luminance at or beyond these levels is clipped by the sensor or the encoder: no grain left.
DARK_LEVEL, BRIGHT_LEVEL = 6.0, 249.0
#: Floor of sigma in grey levels inside the logarithm, so that perfectly flat areas stay finite.
SIGMA_FLOOR = 0.15
#: Smallest robust spread of log-sigma: a photo whose grain varies less than this is even,
#: and natural grain differences of ~15 % must not become "inconsistencies".
MIN_SPREAD = 0.12
#: The map is 0.5 at |z| = Z_MID (two robust spreads off the photo's grain), rising with Z_SLOPE.
Z_MID, Z_SLOPE = 2.0, 2.0
#: |z| past which a cell counts as clearly off for the strength, and the odd area's median |z|
#: at which the strength reaches its full value.
STRONG_Z, Z_STRONG = 3.0, 6.0
#: Gaussian smoothing of the deviation, in cells: an edit is an area, not a cell.
SMOOTH_CELLS = 1.5
#: Fewer valid cells than this (e.g. a 64x64 photo) cannot make a noise model.
MIN_VALID_CELLS = 96
#: Median noise sigma (grey levels) below which the grain is gone (smoothed, strongly compressed,
#: or rendered) and at which the trace is fully usable.
SIGMA_UNUSABLE, SIGMA_USABLE = 0.1, 0.9
#: Area (fraction of the valid photo) of the largest odd area at which strength reaches 1 - 1/e.
STRENGTH_AREA = 0.04


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("noise evidence expects an HxWx3 uint8 RGB array")


def analysis_luminance(rgb: np.ndarray, max_pixels: int = MAX_ANALYSIS_PIXELS) -> tuple[np.ndarray, int, tuple[int, int]]:
    """Luminance of ``rgb`` for noise analysis, bounded in size.

    Args:
        rgb: ``(H, W, 3)`` ``uint8`` RGB.
        max_pixels: largest analysed pixel count; beyond it an integer area downscale is applied.

    Returns:
        ``(luma, factor, offset)``: ``luma`` ``(h, w)`` ``float32`` in [0, 255] covering the native
        rows ``offset[0] .. offset[0] + h * factor`` and columns ``offset[1] .. offset[1] + w * factor``
        (the remainder of the integer downscale is cropped evenly on both sides, keeping the centre).
    """
    height, width = rgb.shape[:2]
    factor = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    out_h, out_w = height // factor, width // factor
    top, left = (height - out_h * factor) // 2, (width - out_w * factor) // 2
    weights = np.array([0.299, 0.587, 0.114], np.float32).reshape(1, 3)
    luma = np.empty((out_h, out_w), np.float32)
    # Strips keep the float copy small: a 48 MP photo as float32 RGB would be 576 MB.
    strip_rows = max(1, STRIP_NATIVE_ROWS // factor)
    for row in range(0, out_h, strip_rows):
        rows = min(strip_rows, out_h - row)
        strip = rgb[top + row * factor: top + (row + rows) * factor, left: left + out_w * factor]
        strip_luma = cv2.transform(strip.astype(np.float32), weights)
        if factor > 1:
            strip_luma = cv2.resize(strip_luma, (out_w, rows), interpolation=cv2.INTER_AREA)
        luma[row: row + rows] = strip_luma.reshape(rows, out_w)
    return luma, factor, (top, left)


def _cell_means(values: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    """Mean of each ``CELL x CELL`` cell of ``values`` cropped to ``cells`` (rows, cols)."""
    cropped = values[: cells[0] * CELL, : cells[1] * CELL]
    return cv2.resize(cropped, (cells[1], cells[0]), interpolation=cv2.INTER_AREA)


def _normalized_blur(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of ``values`` over ``valid`` cells only (invalid ones neither give nor take)."""
    weights = valid.astype(np.float32)
    numerator = cv2.GaussianBlur(np.where(valid, values, 0).astype(np.float32), (0, 0), sigma)
    denominator = cv2.GaussianBlur(weights, (0, 0), sigma)
    return numerator / np.maximum(denominator, 1e-6)


def _noise_model(intensity: np.ndarray, log_sigma: np.ndarray, bins: int = 8) -> np.ndarray:
    """The photo's median log-sigma as a function of brightness, evaluated at each sample.

    Args:
        intensity, log_sigma: 1-D ``float32`` arrays of the valid cells.
    Returns:
        1-D ``float32``: expected log-sigma at each cell's brightness (linear between bin medians).
    """
    edges = np.quantile(intensity, np.linspace(0, 1, bins + 1))
    centres, medians = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (intensity >= low) & (intensity <= high)
        if inside.sum() >= 8:
            centres.append(float(np.median(intensity[inside])))
            medians.append(float(np.median(log_sigma[inside])))
    if not centres:
        return np.full_like(log_sigma, np.median(log_sigma))
    order = np.argsort(centres)
    return np.interp(intensity, np.array(centres)[order], np.array(medians)[order]).astype(np.float32)


def _place_on(grid: np.ndarray, size: tuple[int, int], native_shape: tuple[int, int],
              covered: tuple[int, int, int, int]) -> np.ndarray:
    """Resize a cell grid covering native rows/cols ``covered = (top, left, bottom, right)`` to ``size``."""
    height, width = native_shape
    scale_y, scale_x = size[0] / height, size[1] / width
    top, left, bottom, right = covered
    y0, x0 = int(round(top * scale_y)), int(round(left * scale_x))
    y1, x1 = max(y0 + 1, int(round(bottom * scale_y))), max(x0 + 1, int(round(right * scale_x)))
    y1, x1 = min(y1, size[0]), min(x1, size[1])
    inner = cv2.resize(grid.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    # The few uncovered edge rows/columns take their neighbours' value.
    return cv2.copyMakeBorder(inner, y0, size[0] - y1, x0, size[1] - x1, cv2.BORDER_REPLICATE)


def noise_evidence(rgb: np.ndarray, size: tuple[int, int] | None = None,
                   max_pixels: int = MAX_ANALYSIS_PIXELS) -> EvidenceMap:
    """Noise-inconsistency map of ``rgb``.

    Args:
        rgb: ``(H, W, 3)`` ``uint8`` RGB at the photo's own resolution.
        size: ``(h, w)`` of the returned map (default: ``(H, W)``).
        max_pixels: analysis pixel budget (see :func:`analysis_luminance`).

    Returns:
        :class:`EvidenceMap` named ``noise``: ``map`` ``(h, w)`` ``float32`` in [0, 1], high where
        the local grain is two robust spreads or more off the photo's own noise model;
        ``reliability`` from the photo's median grain (0 when smoothed, compressed, flat or tiny);
        ``strength`` from the area and the contrast of the odd grain.

    Raises:
        ValueError: ``rgb`` is not ``HxWx3 uint8`` or ``size`` is not two positive ints.
    """
    _check_rgb(rgb)
    size = tuple(int(v) for v in (size or rgb.shape[:2]))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (h, w) with positive sides, got {size}")

    def unusable(reason: str, **details) -> EvidenceMap:
        return EvidenceMap(name="noise", map=np.zeros(size, np.float32), reliability=0.0,
                           reason=reason, strength=0.0, details=details)

    luma, factor, (top, left) = analysis_luminance(rgb, max_pixels)
    cells = (luma.shape[0] - 2) // CELL, (luma.shape[1] - 2) // CELL
    if cells[0] < BLOCK_CELLS or cells[1] < BLOCK_CELLS or cells[0] * cells[1] < MIN_VALID_CELLS:
        return unusable("the photo is too small to read its grain", cells=int(max(0, cells[0]) * max(0, cells[1])))

    # The residual is valid from the 1-pixel border inwards: cells start at pixel 1.
    residual = np.abs(cv2.filter2D(luma, cv2.CV_32F, _HIGH_PASS, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1])
    inner = luma[1:-1, 1:-1]
    sigma = _cell_means(residual, cells) * _MEAN_ABS_TO_SIGMA
    brightness = _cell_means(inner, cells)
    clipped = _cell_means(((inner <= DARK_LEVEL) | (inner >= BRIGHT_LEVEL)).astype(np.float32), cells)
    valid = clipped < 0.05
    del residual

    # Texture only adds to the residual, so the flattest cell nearby is the best grain estimate.
    kernel = np.ones((BLOCK_CELLS, BLOCK_CELLS), np.uint8)
    flattest = cv2.erode(np.where(valid, sigma, np.float32(1e6)), kernel, borderType=cv2.BORDER_REPLICATE)
    valid &= flattest < 1e5
    n_valid = int(valid.sum())
    if n_valid < MIN_VALID_CELLS:
        return unusable("the photo is almost entirely black or white: there is no grain to read",
                        valid_cells=n_valid)

    log_sigma = np.log(np.maximum(flattest, 0) + SIGMA_FLOOR)
    median_sigma = float(np.median(flattest[valid])) * factor  # in the photo's own grey levels
    expected = np.zeros_like(log_sigma)
    expected[valid] = _noise_model(brightness[valid], log_sigma[valid])
    deviation = _normalized_blur(log_sigma - expected, valid, SMOOTH_CELLS)
    centre = float(np.median(deviation[valid]))
    spread = max(MIN_SPREAD, 1.4826 * float(np.median(np.abs(deviation[valid] - centre))))
    z = np.where(valid, (deviation - centre) / spread, 0.0).astype(np.float32)
    # Both directions count: a paste or an upscaled region may carry more grain, a retouch, blur or
    # inpainting less. A logistic, not a clip, so that the map still ranks pixels below the midpoint.
    # Rescaled so that a perfect fit (z = 0) is exactly 0.
    floor = 1.0 / (1.0 + math.exp(Z_SLOPE * Z_MID))
    logistic = 1.0 / (1.0 + np.exp(-Z_SLOPE * (np.abs(z) - Z_MID)))
    grid = np.where(valid, (logistic - floor) / (1.0 - floor), 0.0)

    covered = (top + factor, left + factor, top + factor * (1 + cells[0] * CELL), left + factor * (1 + cells[1] * CELL))
    values = _place_on(grid, size, rgb.shape[:2], covered)

    # Natural grain is heavy-tailed: about 5 % of an authentic photo lies past |z| = 2 in scattered
    # spots (texture, defocus). An edit is one area, clearly off: the strength and the sentence read
    # only the largest connected area past STRONG_Z.
    strong = (valid & (np.abs(z) >= STRONG_Z)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strong, connectivity=8)
    if count > 1:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        odd = labels == largest
    else:
        odd = np.zeros_like(valid)
    odd_fraction = float(odd.sum()) / n_valid
    less_grain = bool(odd.any()) and float(np.median(z[odd])) < 0
    contrast = float(np.median(np.abs(z[odd]))) if odd.any() else 0.0
    strength = (1.0 - math.exp(-odd_fraction / STRENGTH_AREA)) * float(
        np.clip((contrast - STRONG_Z) / (Z_STRONG - STRONG_Z), 0, 1))
    reliability = float(np.clip((median_sigma - SIGMA_UNUSABLE) / (SIGMA_USABLE - SIGMA_UNUSABLE), 0, 1))
    reliability *= float(np.clip(n_valid / (4 * MIN_VALID_CELLS), 0, 1))

    if reliability <= 0.0:
        reason = ("the photo carries almost no grain (smoothed, strongly compressed or computer-made), "
                  "so differences in grain say nothing")
    elif odd_fraction < 0.005:
        reason = "the grain is even across the photo"
    else:
        kind = "less" if less_grain else "more"
        reason = (f"an area of {100 * odd_fraction:.0f}% of the photo has clearly {kind} grain than the rest"
                  if odd_fraction >= 0.01 else f"a small area of the photo has clearly {kind} grain than the rest")
        if reliability < 0.5:
            reason += ", but the photo has little grain to compare"
    return EvidenceMap(
        name="noise", map=values, reliability=reliability, reason=reason, strength=strength,
        details={
            "median_sigma": round(median_sigma, 3),
            "log_sigma_spread": round(spread, 4),
            "odd_fraction": round(odd_fraction, 4),
            "odd_has_less_grain": less_grain,
            "strong_fraction": round(float(strong.sum()) / n_valid, 4),
            "odd_contrast_z": round(contrast, 3),
            "downscale": factor,
            "valid_cells": n_valid,
        },
    )


@register_evidence("noise", "local grain (noise residual) that does not fit the photo's own noise model")
class NoiseEvidence(Evidence):
    name = "noise"
    title = "Noise"

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        return noise_evidence(inputs.native, inputs.working_size)
