"""What a training run's folder says about its model: its input features, where its input caches
live, and the network its ``run.json`` describes (:func:`build_from_run`).

Here rather than in :mod:`training.train` so that conversion (:mod:`export.convert`) rebuilds a run's
model without importing the trainer: ``export`` never imports ``training`` (the trainer imports
these names from here).
"""

from __future__ import annotations

import os
from pathlib import Path

from wsloc_runtime.inputs import DEFAULT_INPUT_FEATURES, feature_channels


def input_features(run: dict) -> tuple[str, ...]:
    """The run's input features (runs from before they were configurable used SEL alone)."""
    return tuple(run.get("input_features", DEFAULT_INPUT_FEATURES))


def sel_cache_path(set_dir: str | os.PathLike, split: str, run: dict) -> Path:
    """Where one split's input cache for a run's input size, SEL quality and features lives."""
    size = run["input_size"]
    features = input_features(run)
    suffix = "" if features == DEFAULT_INPUT_FEATURES else "_" + "+".join(features)
    return Path(set_dir) / "cache" / f"{split}_{size}x{size}_q{run['sel_jpeg_quality']}{suffix}.npz"


def build_from_run(run: dict):
    """``(joint, parts)`` for the settings in a ``run.json``."""
    from export.wcbnet import build_wcbnet_multi

    return build_wcbnet_multi(
        run["cbam_scales"], run["backbone"], (run["input_size"], run["input_size"]), run["feature_dim"],
        run.get("imagenet_weights"), tuple(run.get("tiny_widths", (24, 32, 64, 96, 128))), run.get("dropout", 0.2),
        run.get("bn_momentum"), feature_channels(input_features(run)), run.get("head", "gap"),
    )
