"""Segmenters behind one interface; see :func:`create_segmenter`."""

from .base import Segmenter, create_segmenter, describe_segmenters, register_segmenter, segmenter_names
from . import graph  # noqa: F401  (registers "graph")
from . import sam  # noqa: F401  (registers "sam"; onnxruntime only, files found on first use)
from . import semantic  # noqa: F401  (registers "deeplab" and "pspnet")

__all__ = ["Segmenter", "create_segmenter", "describe_segmenters", "register_segmenter", "segmenter_names"]
