"""Test-time views: flips of a network's ``[N, H, W, C]`` input whose answers are averaged.

numpy only, so the trainer (``training.train --report-only --views``) averages exactly as the
runtime does without importing onnxruntime.
"""

from __future__ import annotations

import numpy as np

from .errors import UnknownNameError

#: Test-time views by name. A view is the tuple of axes of the ``[N, H, W, C]`` input that are
#: flipped before the forward pass (2 = left-right, 1 = up-down); its Grad-CAM is flipped back.
#: "hflip" is the default: a mirrored photo is still a natural photo, and averaging the two views
#: raised held-out synthesized AUC and real-forgery localization of the synthetic-trained models
#: shipped before (their card's "Test-time views", ``git show 1ad217f:assets/models/README.md``),
#: for twice the network time. Up-down flips make upside-down photos.
TEST_TIME_VIEWS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "hflip": ((), (2,)),
    "flips": ((), (2,), (1,), (1, 2)),
}
DEFAULT_TEST_TIME_VIEWS = "hflip"


def test_time_views(name: str) -> tuple[tuple[int, ...], ...]:
    """The views registered under ``name``; raises UnknownNameError listing the valid names."""
    if name not in TEST_TIME_VIEWS:
        raise UnknownNameError(f"unknown test-time views {name!r}; choose one of: {', '.join(TEST_TIME_VIEWS)}")
    return TEST_TIME_VIEWS[name]


def view_input(tensor: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``tensor`` (``[N, H, W, C]``) as seen by the view ``axes``, C-contiguous for onnxruntime."""
    return np.ascontiguousarray(np.flip(tensor, axes)) if axes else tensor


def map_to_input(activation: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """A view's ``(h, w)`` map flipped back to the input's orientation (input axis k is map axis k - 1)."""
    return np.flip(activation, tuple(axis - 1 for axis in axes)) if axes else activation
