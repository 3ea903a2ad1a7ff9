"""The weight-free default segmenter: Felzenszwalb-Huttenlocher graph segmentation.

Always available (scikit-image, no model files). Runs on a downscaled copy whose
longer side is ``max_side`` pixels and upsamples the labels, which keeps its cost
flat in the image size. It segments at several ``scales`` and returns the regions
of all of them (overlapping), so that the similarity step can pick an object
whichever granularity fits it. Defaults were chosen by the oracle IoU (best region
vs. reference mask) on the 35 tampered development images (CASIA2 samples + NoSo):
one scale 400 at 384 px gave 0.41 in 0.3 s, scales (200, 800) at 256 px 0.46 in
0.2 s (``python bench/sweep_graph_segmenter.py`` reproduces the sweep).
"""

from __future__ import annotations

import time
from typing import Sequence

import cv2
import numpy as np

from ..regions import Regions
from .base import Segmenter, register_segmenter


@register_segmenter("graph", "Felzenszwalb graph segmentation (no model files; always available)")
class GraphSegmenter(Segmenter):
    """Felzenszwalb segmentation tuned for object-sized regions.

    Args:
        scales: Felzenszwalb ``scale`` values; higher gives larger regions.
        sigma: Gaussian pre-smoothing.
        min_area_fraction: smallest region, as a fraction of the image area.
        max_side: the longer side of the copy that is segmented.
    """

    name = "graph"

    def __init__(
        self,
        scales: Sequence[float] = (200.0, 800.0),
        sigma: float = 0.8,
        min_area_fraction: float = 0.002,
        max_side: int = 256,
    ) -> None:
        super().__init__()
        # Imported here, not on the first segment() call: scikit-image loads lazily and this
        # import alone costs about 1.3 s of CPU, which would otherwise land on the first photo.
        from skimage.segmentation import felzenszwalb

        self._felzenszwalb = felzenszwalb
        if not scales:
            raise ValueError("GraphSegmenter needs at least one scale")
        self.scales = tuple(float(s) for s in scales)
        self.sigma = float(sigma)
        self.min_area_fraction = float(min_area_fraction)
        self.max_side = int(max_side)

    def segment(self, rgb: np.ndarray) -> Regions:
        start = time.perf_counter()
        height, width = rgb.shape[:2]
        factor = min(1.0, self.max_side / max(height, width))
        small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA) if factor < 1.0 else rgb
        min_size = max(1, int(self.min_area_fraction * small.shape[0] * small.shape[1]))
        label_maps = []
        for scale in self.scales:
            labels = self._felzenszwalb(small, scale=scale, sigma=self.sigma, min_size=min_size)
            if factor < 1.0:
                labels = cv2.resize(labels.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
            label_maps.append(labels)
        # Every scale's regions in one array, with their bounding boxes (the similarity reads them).
        regions = Regions.from_label_maps(label_maps, source=self.name)
        self.last_timings = {"graph": time.perf_counter() - start}
        return regions
