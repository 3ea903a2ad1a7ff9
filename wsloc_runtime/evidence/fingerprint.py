"""``fingerprint``: where the photo's processing history differs from its dominant one.

A small network (``assets/models/fingerprint.onnx``, trained by ``training/fingerprint.py``
self-supervised on pristine photos only, no manipulation label) maps the photo's luminance to a
dense 16-dimensional embedding of its processing history: resampling, JPEG / WebP compression,
blur, sharpening, denoising, noise, gamma, a region re-rendered from a lower resolution. Patches
that went through the same history sit close together whatever they show. A region pasted in,
resized differently or filled in by a generator carries another history than its host, so its
embeddings depart from the photo's own, even after the whole photo was resized and re-saved.

Per photo (Splicebuster's recipe on learned features, :func:`embedding_anomaly`, pure numpy):

1. the embedding field, averaged over a small window and L2-normalized (as in training, where
   the loss reads patch averages);
2. a robust Gaussian of the photo's dominant history: mean and covariance refitted on the 70 %
   of positions closest to it, three times (on an even subsample of at most 8192 positions);
3. each position's squared Mahalanobis distance to it, divided by the inliers' median: the map
   is a logistic of that ratio, 0.5 where it passes the chi-square 99.9 % point of an inlier;
4. the positions past it form the second class; how cleanly the photo splits is the reliability:
   the part of their distance that is one common direction (a tight second cluster, not outliers
   scattered in every direction) times the share of them in one connected area;
5. the strength: the reliability times the area of that connected part (1 - 1/e at 4 %).

Without the model file (a models folder that lacks it), the evidence reports itself unavailable:
reliability 0, an empty map, and a reason that says so.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ..config import build_config, read_config_json
from ..errors import ModelContractError, ModelNotFoundError
from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence

MODEL_FILENAME = "fingerprint.onnx"
METADATA_KEY = "wsloc.fingerprint"
CONTRACT_VERSION = 1
EXPORT_HINT = "python -m export.fingerprint_export --run RUN_DIR (after python -m training.fingerprint --out RUN_DIR)"

#: Beyond this many pixels the photo is area-downscaled by an integer factor first (time and memory
#: bounded; a uniform downscale is one more resize in every region's history, which the network
#: was trained to see through).
MAX_ANALYSIS_PIXELS = 1_200_000
#: Side of the averaging window on the embedding field, in output positions (stride 4 -> 20 px).
SMOOTH_POSITIONS = 5
#: Fewer positions than this (about a 100 x 100 photo) make no statistics.
MIN_POSITIONS = 400
#: Share of positions kept when refitting the dominant history, and refits.
TRIM_KEEP, TRIM_ROUNDS = 0.7, 3
#: The robust fit reads at most this many positions (an even subsample).
MAX_FIT_POINTS = 8192
#: Ridge added to the covariance (relative to its trace / D).
RIDGE = 1e-3
#: The share of positions past the threshold below which the photo does not split at all.
MIN_SPLIT = 0.01
#: Area (share of positions) of the connected odd part at which the strength reaches 1 - 1/e.
STRENGTH_AREA = 0.04


@dataclass(frozen=True)
class FingerprintConfig:
    """What the runtime reads from ``metadata_props["wsloc.fingerprint"]``.

    Attributes:
        input_name / output_name: tensor names; input ``float32 [1, 1, H, W]`` with H and W
            multiples of ``stride``, output ``float32 [1, embedding_dim, H / stride, W / stride]``.
        luma_weights: RGB weights of the luminance; the input is ``Y * input_scale + input_offset``.
        embedding_dim, stride, receptive_field: the field's channels, output stride and the
            pixels one output position sees.
        model_version, training_data, histories: for the model card.
    """

    input_name: str = "luma"
    output_name: str = "embedding"
    luma_weights: tuple[float, float, float] = (0.299, 0.587, 0.114)
    input_scale: float = 1.0 / 255.0
    input_offset: float = -0.5
    embedding_dim: int = 16
    stride: int = 4
    receptive_field: int = 60
    model_version: str = "untrained"
    training_data: str = ""
    histories: str = ""
    contract_version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        if self.stride < 1 or self.embedding_dim < 2 or len(self.luma_weights) != 3:
            raise ModelContractError(f"fingerprint config is not usable: {self}")
        object.__setattr__(self, "luma_weights", tuple(float(v) for v in self.luma_weights))

    def to_json(self) -> str:
        import dataclasses
        import json

        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FingerprintConfig":
        raw = read_config_json(text, source=MODEL_FILENAME, key=METADATA_KEY, max_version=CONTRACT_VERSION)
        return build_config(cls, raw, source=MODEL_FILENAME, key=METADATA_KEY)


# --------------------------------------------------------------------------------------------
# the per-photo anomaly step: pure numpy, no model


def _chi2_quantile(dof: int, p: float) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (no scipy in the runtime)."""
    z = {0.5: 0.0, 0.99: 2.326348, 0.999: 3.090232, 0.99999: 4.264891}[p]
    a = 2.0 / (9.0 * dof)
    return dof * (1.0 - a + z * math.sqrt(a)) ** 3


def smooth_field(field: np.ndarray, window: int = SMOOTH_POSITIONS) -> np.ndarray:
    """``(h, w, D)`` field averaged over ``window x window`` positions, then L2-normalized per position."""
    field = np.asarray(field, np.float32)
    if window > 1:
        field = np.stack([cv2.blur(field[..., c], (window, window), borderType=cv2.BORDER_REFLECT)
                          for c in range(field.shape[2])], axis=2)
    norm = np.linalg.norm(field, axis=2, keepdims=True)
    return field / np.maximum(norm, 1e-6)


def _mahalanobis2(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    centred = x - mean
    return np.sum((centred @ precision) * centred, axis=1)


def robust_gaussian(x: np.ndarray, keep: float = TRIM_KEEP, rounds: int = TRIM_ROUNDS,
                    max_fit: int = MAX_FIT_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, inverse covariance and squared Mahalanobis distances of the dominant cluster of ``x`` ``(N, D)``.

    Starts from the coordinate-wise median and refits on the ``keep`` share of points closest to
    the current fit, ``rounds`` times (a concentration step, as in the MCD estimator). The fit
    reads at most ``max_fit`` points (an even subsample); the distances cover all of ``x``.
    """
    x = np.asarray(x, np.float64)
    n, dim = x.shape
    sample = x[:: max(1, -(-n // max_fit))]
    count = max(dim + 1, int(keep * len(sample)))

    def closest(d2: np.ndarray) -> np.ndarray:
        return np.argpartition(d2, count - 1)[:count] if count < len(d2) else np.arange(len(d2))

    inliers = closest(np.sum((sample - np.median(sample, axis=0)) ** 2, axis=1))
    for _ in range(rounds):
        mean = sample[inliers].mean(axis=0)
        cov = np.cov(sample[inliers], rowvar=False)
        cov += np.eye(dim) * (RIDGE * np.trace(cov) / dim + 1e-12)
        precision = np.linalg.inv(cov)
        inliers = closest(_mahalanobis2(sample, mean, precision))
    mean = sample[inliers].mean(axis=0)
    cov = np.cov(sample[inliers], rowvar=False)
    cov += np.eye(dim) * (RIDGE * np.trace(cov) / dim + 1e-12)
    precision = np.linalg.inv(cov)
    return mean, precision, _mahalanobis2(x, mean, precision)


def embedding_anomaly(field: np.ndarray, window: int = SMOOTH_POSITIONS) -> tuple[np.ndarray, float, float, dict]:
    """The per-photo anomaly step on an embedding field.

    Args:
        field: ``(h, w, D)`` ``float32`` embeddings (one per output position).
        window: smoothing window in positions (1: none).

    Returns:
        ``(map, reliability, strength, details)``: ``map`` ``(h, w)`` ``float32`` in [0, 1] (0.5
        where a position's distance to the dominant history passes the chi-square 99.9 % point of
        an inlier; exactly 0 at the inliers' median distance); ``reliability`` and ``strength`` in
        [0, 1] (see the module's docstring).
    """
    field = smooth_field(field, window)
    h, w, dim = field.shape
    x = field.reshape(-1, dim)
    mean, precision, d2 = robust_gaussian(x)
    # Scale so that the median position sits at the chi-square median: the trimmed fit underestimates
    # the spread and real embeddings are not Gaussian; the median (an inlier while the odd part is
    # under half the photo) fixes both to first order.
    scale = _chi2_quantile(dim, 0.5) / max(float(np.median(d2)), 1e-12)
    d2 = d2 * scale
    ratio = d2 / _chi2_quantile(dim, 0.5)
    mid = _chi2_quantile(dim, 0.999) / _chi2_quantile(dim, 0.5)
    slope = 4.0 / (mid - 1.0)
    floor = 1.0 / (1.0 + math.exp(slope * (mid - 1.0)))
    values = (1.0 / (1.0 + np.exp(-slope * (ratio - mid))) - floor) / (1.0 - floor)
    values = np.clip(values, 0.0, 1.0).reshape(h, w).astype(np.float32)

    odd = (ratio > mid).reshape(h, w)
    odd_share = float(odd.mean())
    details = {"positions": int(h * w), "odd_share": round(odd_share, 4)}
    if odd_share < MIN_SPLIT:
        return values, 0.0, 0.0, {**details, "direction": 0.0, "coherence": 0.0, "area": 0.0}
    # Direction: |mean offset of the odd positions|^2 over their mean squared distance, both in the
    # dominant history's metric. 1 = one tight second cluster; ~0 = outliers in every direction.
    centred = x[odd.reshape(-1)] - mean
    offset = centred.mean(axis=0)
    direction = float(offset @ precision @ offset * scale / max(float(np.mean(d2[odd.reshape(-1)])), 1e-12))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(odd.astype(np.uint8), connectivity=8)
    largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0
    coherence = largest / max(int(odd.sum()), 1)
    area = largest / float(h * w)
    # A "second class" bigger than the host is the host seen from the wrong side: no clean split.
    balance = float(np.clip((0.5 - odd_share) / 0.2, 0.0, 1.0))
    reliability = float(np.clip(direction, 0.0, 1.0) * coherence * balance)
    strength = reliability * (1.0 - math.exp(-area / STRENGTH_AREA))
    details.update(direction=round(direction, 4), coherence=round(coherence, 4), area=round(area, 4))
    return values, reliability, float(strength), details


# --------------------------------------------------------------------------------------------
# the model


def fingerprint_input(rgb: np.ndarray, config: FingerprintConfig, max_pixels: int = MAX_ANALYSIS_PIXELS) -> tuple[np.ndarray, int, tuple[int, int]]:
    """The network input of ``rgb``: ``(1, 1, H', W')`` ``float32`` (H', W' multiples of the stride).

    Returns ``(tensor, factor, covered)``: ``factor`` the integer downscale applied first (1 when
    the photo fits ``max_pixels``) and ``covered = (rows, cols)`` of native pixels the tensor spans
    from the top-left corner.
    """
    height, width = rgb.shape[:2]
    factor = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    stride = config.stride
    out_h, out_w = (height // factor) // stride * stride, (width // factor) // stride * stride
    weights = np.array(config.luma_weights, np.float32).reshape(1, 3)
    crop = rgb[: out_h * factor, : out_w * factor]
    luma = cv2.transform(crop.astype(np.float32), weights).reshape(crop.shape[:2])
    if factor > 1:
        luma = cv2.resize(luma, (out_w, out_h), interpolation=cv2.INTER_AREA)
    tensor = (luma * np.float32(config.input_scale) + np.float32(config.input_offset))[None, None]
    return np.ascontiguousarray(tensor, np.float32), factor, (out_h * factor, out_w * factor)


class FingerprintModel:
    """``fingerprint.onnx`` behind the runtime's session class (CUDA where the GPU build has it)."""

    def __init__(self, path, providers=None, intra_op_threads: int = 0) -> None:
        from ..session import OnnxModel

        self.session = OnnxModel(path, providers=providers, intra_op_threads=intra_op_threads)
        text = self.session.metadata.get(METADATA_KEY)
        if text is None:
            raise ModelContractError(f"{path}: no {METADATA_KEY} in its metadata_props")
        self.config = FingerprintConfig.from_json(text)
        self.session.require_names([self.config.input_name], [self.config.output_name])

    def field(self, tensor: np.ndarray) -> np.ndarray:
        """``(h, w, D)`` embedding field of a ``(1, 1, H, W)`` input."""
        (out,) = self.session.run({self.config.input_name: tensor}, [self.config.output_name])
        return np.ascontiguousarray(np.transpose(out[0], (1, 2, 0)), np.float32)


def fingerprint_evidence(rgb: np.ndarray, model: FingerprintModel, size: tuple[int, int] | None = None) -> EvidenceMap:
    """The fingerprint reading of ``rgb`` (``(H, W, 3)`` ``uint8``) with its map at ``size`` (default ``(H, W)``)."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("fingerprint evidence expects an HxWx3 uint8 RGB array")
    size = tuple(int(v) for v in (size or rgb.shape[:2]))
    tensor, factor, covered = fingerprint_input(rgb, model.config)
    stride = model.config.stride
    if (tensor.shape[2] // stride) * (tensor.shape[3] // stride) < MIN_POSITIONS:
        return EvidenceMap(name="fingerprint", map=np.zeros(size, np.float32), reliability=0.0,
                           reason="the photo is too small to read its processing history", strength=0.0)
    field = model.field(tensor)
    grid, reliability, strength, details = embedding_anomaly(field)
    # The field covers the top-left ``covered`` native pixels; the uncovered edge takes its neighbours' values.
    scale_y, scale_x = size[0] / rgb.shape[0], size[1] / rgb.shape[1]
    inner_h = min(size[0], max(1, round(covered[0] * scale_y)))
    inner_w = min(size[1], max(1, round(covered[1] * scale_x)))
    inner = cv2.resize(grid, (inner_w, inner_h), interpolation=cv2.INTER_LINEAR)
    values = cv2.copyMakeBorder(inner, 0, size[0] - inner_h, 0, size[1] - inner_w, cv2.BORDER_REPLICATE)
    share = details["area"] if "area" in details else 0.0
    if reliability < 0.05:
        reason = "the processing history looks the same across the photo"
    elif strength < 0.2:
        reason = "a small area seems to have gone through another processing history than the rest"
    else:
        reason = (f"an area of {100 * share:.0f}% of the photo went through another processing history "
                  "(resizing, compression, filtering or generation) than the rest")
    details.update(downscale=factor, model_version=model.config.model_version)
    return EvidenceMap(name="fingerprint", map=values, reliability=reliability, reason=reason,
                       strength=strength, details=details)


@register_evidence("fingerprint", "a learned fingerprint of the processing history that differs from the photo's own")
class FingerprintEvidence(Evidence):
    """Loads ``fingerprint.onnx`` on first use (from ``models_dir``, ``$WSLOC_MODELS`` or the bundled models)."""

    name = "fingerprint"
    title = "Fingerprint"

    def __init__(self, models_dir=None, providers=None, intra_op_threads: int = 0) -> None:
        self.models_dir, self.providers, self.intra_op_threads = models_dir, providers, intra_op_threads
        self._model: FingerprintModel | None = None
        self._missing: str | None = None
        self._lock = threading.Lock()

    def model(self) -> FingerprintModel | None:
        """The loaded model, or ``None`` when the file is missing (:attr:`unavailable_reason` says why)."""
        with self._lock:
            if self._model is None and self._missing is None:
                from ..models import resolve_model

                try:
                    path = resolve_model(MODEL_FILENAME, self.models_dir, export_hint=EXPORT_HINT)
                    self._model = FingerprintModel(path, self.providers, self.intra_op_threads)
                except ModelNotFoundError as error:
                    self._missing = str(error)
            return self._model

    @property
    def unavailable_reason(self) -> str | None:
        self.model()
        return self._missing

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        model = self.model()
        if model is None:
            return EvidenceMap(name=self.name, map=np.zeros(inputs.working_size, np.float32), reliability=0.0,
                               reason="the fingerprint model (fingerprint.onnx) is not installed, so this trace was not read",
                               strength=0.0, details={"available": False})
        return fingerprint_evidence(inputs.native, model, inputs.working_size)
