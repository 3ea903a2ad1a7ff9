"""A WCBnet's input tensor: the features its config names, computed once, stacked as channels.

One implementation for training (``training.data``), export and runtime, so a model never
sees inputs prepared differently. Each feature is computed at the photo's own resolution
(resizing first would destroy the 8x8 JPEG grid its evidence lives on), then resized to the
network input with area interpolation; scaling to the network's range happens last, from
the model's config (:func:`scale_input`), so one cache of unscaled inputs serves every
scaling.

Registered features (``WCBnetConfig.input_features``). A name stands for one fixed computation
(models and training caches are keyed by it): a changed algorithm is registered under a new
name, never swapped in under an old one.

* ``sel`` (3 channels): signed error levels at ``sel_jpeg_quality`` (the paper's input),
  scaled as ``sel_scaling`` / ``sel_scale`` / ``sel_clip`` say;
* ``jpeg_dq`` (1 channel): per 8x8 block, the log-likelihood ratio of double vs single
  quantization (:mod:`wsloc_runtime.jpeg_traces`), divided by :data:`DQ_SCALE`, clipped;
* ``jpeg_lattice`` (1 channel): per block, how well its DCT coefficients sit on the
  photo's quantization lattice, in [-1, 1];
* ``jpeg_sq`` (1 channel): per block, the one-sided evidence of single compression amid
  double compression (the ratio pooled over 5x5 blocks, negated, floored at 0), divided by
  :data:`SQ_SCALE`, clipped: positive only where a region looks pasted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ModelContractError
from .jpeg_traces import JpegTraces, block_map_to_size, jpeg_traces, single_compression_evidence
from .sel import resized_error_levels, scale_error_levels


@dataclass(frozen=True)
class InputFeature:
    channels: int
    description: str


INPUT_FEATURES: dict[str, InputFeature] = {
    "sel": InputFeature(3, "signed error levels (image - JPEG_q(image)), per RGB channel"),
    "jpeg_dq": InputFeature(1, "per-block log-likelihood ratio, double vs single JPEG quantization"),
    "jpeg_lattice": InputFeature(1, "per-block fit of the DCT coefficients to the photo's quantization lattice"),
    "jpeg_sq": InputFeature(1, "per-block one-sided evidence of single compression amid double compression"),
}
#: The JPEG-trace features, computed together from one analysis of the photo.
TRACE_FEATURES = ("jpeg_dq", "jpeg_lattice", "jpeg_sq")
DEFAULT_INPUT_FEATURES = ("sel",)
#: A block's double-quantization log-likelihood ratio sums up to 45 frequencies' clipped
#: ratios; 16 brings a typical block into [-2, 2].
DQ_SCALE = 16.0
DQ_CLIP = 4.0
#: Pooled single-compression evidence reaches 2-8 in a pasted region and stays below 1 elsewhere.
SQ_SCALE = 4.0


def check_features(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, or ModelContractError naming the registered features."""
    names = tuple(names)
    unknown = [n for n in names if n not in INPUT_FEATURES]
    if not names or unknown or len(set(names)) != len(names):
        raise ModelContractError(
            f"input_features must be distinct names from {sorted(INPUT_FEATURES)}, got {list(names)}"
        )
    return names


def feature_channels(names: Sequence[str]) -> int:
    """Channels of the input tensor that stacks ``names``."""
    return sum(INPUT_FEATURES[n].channels for n in check_features(names))


def raw_inputs(
    rgb: np.ndarray, features: Sequence[str], sizes: Sequence[tuple[int, int]], sel_quality: int = 90,
    traces: JpegTraces | None = None, sel: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Unscaled input maps of ``rgb`` resized to each ``(height, width)`` in ``sizes``.

    Args:
        rgb: ``HxWx3`` ``uint8`` RGB photo.
        features: names from :data:`INPUT_FEATURES`, in channel order.
        sizes: output sizes.
        sel_quality: JPEG quality of the SEL re-encoding.
        traces: ``jpeg_traces(rgb)`` when the caller already has them (computed here otherwise).
        sel: ``resized_error_levels(rgb, sizes, sel_quality)`` when the caller already has them.

    Returns:
        One ``float32`` ``(height, width, C)`` array per size, channels in ``features`` order.
    """
    features = check_features(features)
    sizes = [(int(h), int(w)) for h, w in sizes]
    per_feature: dict[str, list[np.ndarray]] = {}
    if "sel" in features:
        per_feature["sel"] = list(sel) if sel is not None else resized_error_levels(rgb, sizes, sel_quality)
    if any(name in features for name in TRACE_FEATURES):
        traces = traces if traces is not None else jpeg_traces(rgb)
        image_size = rgb.shape[:2]
        maps = {"jpeg_dq": lambda: traces.double_quantization, "jpeg_lattice": lambda: traces.lattice_fit,
                "jpeg_sq": lambda: single_compression_evidence(traces)}
        for name in TRACE_FEATURES:
            if name in features:
                block_map = maps[name]()
                per_feature[name] = [
                    block_map_to_size(block_map, traces.offset, image_size, size)[..., None] for size in sizes
                ]
    return [
        np.concatenate([per_feature[name][k] for name in features], axis=2).astype(np.float32)
        for k in range(len(sizes))
    ]


def select_channels(raw: np.ndarray, features: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """The channels of ``wanted`` features from maps stacked in ``features`` order (last axis)."""
    features, wanted = check_features(features), check_features(wanted)
    starts = np.cumsum([0] + [INPUT_FEATURES[n].channels for n in features])
    missing = [n for n in wanted if n not in features]
    if missing:
        raise ValueError(f"maps hold {list(features)}, not {missing}")
    index = np.concatenate([np.arange(starts[features.index(n)], starts[features.index(n) + 1]) for n in wanted])
    return raw[..., index]


def scale_input(raw: np.ndarray, features: Sequence[str], sel_scaling: str, sel_scale: float,
                sel_clip: float) -> np.ndarray:
    """Map unscaled input maps (``(..., H, W, C)``, from :func:`raw_inputs`) to the network's range."""
    features = check_features(features)
    raw = np.asarray(raw, np.float32)
    if raw.shape[-1] != feature_channels(features):
        raise ValueError(f"input has {raw.shape[-1]} channels; {list(features)} need {feature_channels(features)}")
    parts, start = [], 0
    for name in features:
        channels = raw[..., start : start + INPUT_FEATURES[name].channels]
        start += INPUT_FEATURES[name].channels
        if name == "sel":
            parts.append(scale_error_levels(channels, sel_scaling, sel_scale, sel_clip))
        elif name == "jpeg_dq":
            parts.append(np.clip(channels / np.float32(DQ_SCALE), -DQ_CLIP, DQ_CLIP))
        elif name == "jpeg_sq":
            parts.append(np.clip(channels / np.float32(SQ_SCALE), 0.0, DQ_CLIP))
        else:
            parts.append(channels)
    return np.concatenate(parts, axis=-1).astype(np.float32)
