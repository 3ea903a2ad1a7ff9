"""Grad-CAM from exported tensors, and the multi-view fusion of several variants.

Pure numpy/OpenCV: no autograd is needed because every WCBnet ONNX file returns
dz/dF_c as an output.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

#: Added to every map before the geometric mean, so one variant's zero cannot erase
#: a region that the other variants see.
DEFAULT_FUSION_EPSILON = 0.05


def grad_cam(features: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Grad-CAM of one feature map.

    ``A = ReLU(sum_k alpha_k F[..., k])`` with ``alpha_k = mean_{h,w} dz/dF[h, w, k]``.

    Args:
        features: F_c, ``(h, w, D)`` float.
        gradient: dz/dF_c, same shape.

    Returns:
        ``(h, w)`` ``float32``, non-negative, not normalised.
    """
    if features.shape != gradient.shape or features.ndim != 3:
        raise ValueError(f"features {features.shape} and gradient {gradient.shape} must both be (h, w, D)")
    alpha = gradient.mean(axis=(0, 1), dtype=np.float64)
    cam = np.tensordot(features.astype(np.float64), alpha, axes=([2], [0]))
    return np.maximum(cam, 0.0).astype(np.float32)


def normalize_map(activation: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its maximum; an all-zero map stays zero."""
    activation = np.asarray(activation, dtype=np.float32)
    peak = float(activation.max()) if activation.size else 0.0
    if not np.isfinite(peak) or peak <= 0.0:
        return np.zeros_like(activation, dtype=np.float32)
    return np.clip(activation / peak, 0.0, 1.0)


def upsample_map(activation: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a coarse map to ``(height, width)``, then scale to [0, 1]."""
    height, width = size
    resized = cv2.resize(activation.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return normalize_map(np.maximum(resized, 0.0))


def geometric_mean_fusion(maps: Sequence[np.ndarray], epsilon: float = DEFAULT_FUSION_EPSILON) -> np.ndarray:
    """Multi-view activation: ``(prod_i (A_i + eps)) ** (1/n)``, min-max rescaled to [0, 1].

    Args:
        maps: one or more maps of identical shape with values in [0, 1].
        epsilon: floor added before the product (>= 0).

    Returns:
        ``float32`` map in [0, 1]; a constant result maps to all zeros.
    """
    if len(maps) == 0:
        raise ValueError("geometric_mean_fusion needs at least one map")
    shapes = {m.shape for m in maps}
    if len(shapes) != 1:
        raise ValueError(f"maps must share one shape, got {sorted(shapes)}")
    if epsilon < 0:
        raise ValueError("epsilon must be >= 0")
    log_sum = np.zeros(maps[0].shape, np.float64)
    for activation in maps:
        log_sum += np.log(np.clip(activation.astype(np.float64), 0.0, None) + epsilon + 1e-300)
    fused = np.exp(log_sum / len(maps))
    low, high = float(fused.min()), float(fused.max())
    if high - low <= 1e-12:
        return np.zeros(fused.shape, np.float32)
    return ((fused - low) / (high - low)).astype(np.float32)
