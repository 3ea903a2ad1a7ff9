"""The weight-free default segmenter: Felzenszwalb-Huttenlocher graph segmentation.

Always available (scikit-image, no model files). Runs on a downscaled copy whose
longer side is ``max_side`` pixels and upsamples the labels, which keeps its cost
flat in the image size; ``scale`` and ``min_area_fraction`` are tuned to give
object-sized regions rather than superpixels.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from ..regions import Regions
from .base import Segmenter, register_segmenter


@register_segmenter("graph", "Felzenszwalb graph segmentation (no model files; always available)")
class GraphSegmenter(Segmenter):
    """Felzenszwalb segmentation tuned for object-sized regions.

    Args:
        scale: higher gives larger regions (scikit-image's ``scale``).
        sigma: Gaussian pre-smoothing.
        min_area_fraction: smallest region, as a fraction of the image area.
        max_side: the longer side of the copy that is segmented.
    """

    name = "graph"

    def __init__(
        self, scale: float = 400.0, sigma: float = 0.8, min_area_fraction: float = 0.005, max_side: int = 384
    ) -> None:
        super().__init__()
        self.scale = float(scale)
        self.sigma = float(sigma)
        self.min_area_fraction = float(min_area_fraction)
        self.max_side = int(max_side)

    def segment(self, rgb: np.ndarray) -> Regions:
        from skimage.segmentation import felzenszwalb

        start = time.perf_counter()
        height, width = rgb.shape[:2]
        factor = min(1.0, self.max_side / max(height, width))
        small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA) if factor < 1.0 else rgb
        min_size = max(1, int(self.min_area_fraction * small.shape[0] * small.shape[1]))
        labels = felzenszwalb(small, scale=self.scale, sigma=self.sigma, min_size=min_size)
        if factor < 1.0:
            labels = cv2.resize(labels.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
        regions = Regions.from_labels(labels, source=self.name)
        self.last_timings = {"graph": time.perf_counter() - start}
        return regions
