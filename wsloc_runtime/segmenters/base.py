"""The segmenter interface and its registry.

A segmenter turns an RGB image into candidate regions (:class:`~wsloc_runtime.regions.Regions`)
at the image's size. Segmenters that need model files find them through
:func:`wsloc_runtime.models.resolve_model`; the weight-free ``"graph"`` segmenter
always works and is the default.
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np

from ..errors import UnknownNameError
from ..regions import Regions


class Segmenter:
    """Base class: construct once (loads models), call :meth:`segment` many times.

    Attributes:
        name: registry name.
        providers: onnxruntime providers in use (empty for classical segmenters).
        last_timings: seconds spent in each internal stage of the last call.
    """

    name = "base"
    providers: list[str] = []

    def __init__(self) -> None:
        self.last_timings: dict[str, float] = {}

    def segment(self, rgb: np.ndarray) -> Regions:
        """Regions of ``rgb`` (``HxWx3`` ``uint8``), as masks of shape ``(N, H, W)``."""
        raise NotImplementedError


SegmenterFactory = Callable[..., Segmenter]
_REGISTRY: Dict[str, SegmenterFactory] = {}
_DESCRIPTIONS: Dict[str, str] = {}


def register_segmenter(name: str, description: str = "") -> Callable[[SegmenterFactory], SegmenterFactory]:
    """Class decorator adding a segmenter to the registry under ``name``."""

    def decorator(factory: SegmenterFactory) -> SegmenterFactory:
        _REGISTRY[name] = factory
        _DESCRIPTIONS[name] = description
        return factory

    return decorator


def segmenter_names() -> list[str]:
    return sorted(_REGISTRY)


def describe_segmenters() -> dict[str, str]:
    return {name: _DESCRIPTIONS[name] for name in segmenter_names()}


def create_segmenter(name: str, **kwargs) -> Segmenter:
    """Build a registered segmenter by name.

    Raises:
        UnknownNameError: the name is not registered; the message lists the valid names.
        ModelNotFoundError: the segmenter's model files are missing (says where it looked).
    """
    if name not in _REGISTRY:
        raise UnknownNameError(f"unknown segmenter {name!r}; choose one of: {', '.join(segmenter_names())}")
    return _REGISTRY[name](**kwargs)
