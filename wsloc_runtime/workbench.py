"""The pictures of the app's workbench, redrawn from a stored result without analysing again.

One analysis gives a :class:`Workbench` (the photo at full resolution, the posterior map and the
copy-move segments); the threshold and opacity sliders then only redraw pictures from it:
:func:`after_picture` (the full-resolution "after" side of the before/after comparison) and
:func:`mask_panel` (the mask outlined on the working-size photo). No score, map, mask or verdict
of the pipeline is changed: the threshold cuts the stored map for display only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import viz
from .pipeline import MASK_THRESHOLD, LocalizationResult

#: Largest photo (in pixels) the comparison shows at full resolution; a larger one is shown reduced
#: to this many pixels (a 48 MP photo and its overlay would hold ~300 MB per visitor).
COMPARE_MAX_PIXELS = 24_000_000


@dataclass
class Workbench:
    """What the sliders redraw from, kept per visitor.

    Attributes:
        photo: the photo at full resolution (or reduced to :data:`COMPARE_MAX_PIXELS`),
            ``(H, W, 3)`` ``uint8`` RGB.
        image: the photo at the working size, ``(h, w, 3)`` ``uint8`` RGB.
        enhanced: the posterior map A*, ``(h, w)`` ``float32`` in [0, 1].
        no_mask: True for a photo judged likely authentic: no mask is drawn at any threshold
            (``LocalizationResult.mask`` is empty for it).
        segments: copy-move point pairs ``[[[x0, y0], [x1, y1]], ...]`` in working-size pixels.
        heat: ``photo`` with the heatmap blended over it at the current opacity (cached: the
            threshold does not change it).
    """

    photo: np.ndarray
    image: np.ndarray
    enhanced: np.ndarray
    no_mask: bool
    segments: list = field(default_factory=list)
    heat: np.ndarray | None = None
    opacity: float = viz.DEFAULT_OPACITY

    @property
    def scale(self) -> float:
        """The full-resolution picture's width over the working size's."""
        return self.photo.shape[1] / self.image.shape[1]


def comparison_photo(photo: np.ndarray, max_pixels: int = COMPARE_MAX_PIXELS) -> np.ndarray:
    """``photo`` as the comparison shows it: itself up to ``max_pixels``, else reduced (INTER_AREA)."""
    height, width = photo.shape[:2]
    if height * width <= max_pixels:
        return photo
    factor = (max_pixels / (height * width)) ** 0.5
    return cv2.resize(photo, (max(1, int(width * factor)), max(1, int(height * factor))), interpolation=cv2.INTER_AREA)


def clone_segments(result: LocalizationResult) -> list:
    """The copy-move evidence's point pairs (working-size px), or ``[]`` when it found no copy."""
    reading = (getattr(result, "evidence", None) or {}).get("copy_move")
    return list((reading.details or {}).get("segments") or []) if reading is not None else []


def workbench_of(result: LocalizationResult, photo: np.ndarray, opacity: float = viz.DEFAULT_OPACITY) -> Workbench:
    """The stored state of one analysis: ``photo`` is the decoded upload, ``(H, W, 3)`` ``uint8`` RGB."""
    bench = Workbench(comparison_photo(photo), result.image, result.enhanced, result.is_manipulated is False,
                      clone_segments(result))
    set_opacity(bench, opacity)
    return bench


def set_opacity(bench: Workbench, opacity: float) -> Workbench:
    """Recompute the cached full-resolution heatmap blend at ``opacity`` (in [0, 1])."""
    bench.opacity = float(opacity)
    bench.heat = viz.overlay(bench.photo, bench.enhanced, bench.opacity)
    return bench


def shown_mask(bench: Workbench, threshold: float) -> np.ndarray:
    """The mask the page shows at ``threshold``: the map cut there, empty for a photo judged
    likely authentic. ``(h, w)`` ``bool``."""
    if bench.no_mask:
        return np.zeros(bench.enhanced.shape, bool)
    return viz.mask_at(bench.enhanced, threshold)


def after_picture(bench: Workbench, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """The comparison's "after" side: heatmap, mask outline at ``threshold`` and copy-move lines,
    at the comparison's resolution, ``(H, W, 3)`` ``uint8`` RGB."""
    picture = viz.outline_scaled(bench.heat, shown_mask(bench, threshold), colour=(40, 200, 255))
    return viz.draw_clone_lines(picture, bench.segments, bench.scale) if bench.segments else picture


def mask_panel(bench: Workbench, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """The mask at ``threshold`` tinted and outlined on the working-size photo, with the copy-move
    lines: ``(h, w, 3)`` ``uint8`` RGB."""
    picture = viz.outline_mask(bench.image, shown_mask(bench, threshold))
    return viz.draw_clone_lines(picture, bench.segments) if bench.segments else picture


def mask_share(bench: Workbench, threshold: float) -> float:
    """The share of the photo the shown mask marks at ``threshold``, in [0, 1]."""
    return float(shown_mask(bench, threshold).mean())
