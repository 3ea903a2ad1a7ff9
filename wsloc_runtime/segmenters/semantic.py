"""Semantic segmenters (DeepLabV3, PSPNet) on onnxruntime: class map -> connected regions.

Both run ONNX files written by ``python -m export.segmenters {deeplab,pspnet}``:

* input ``image``: ``uint8 (H, W, 3)`` RGB at the model's input size (from the file's
  :class:`SemanticConfig`); scaling to [0, 1] and ImageNet normalisation are in the graph;
* outputs ``logits`` ``float32 (1, C, H, W)`` and ``classes`` ``int64 (H, W)`` (their argmax).

Each connected component (8-connectivity) of each predicted class is one region, as
``shared/design/method.md`` section 4 asks. DeepLab and PSPNet differ only in their
file name and registry entry.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..errors import InvalidImageError, ModelContractError
from ..regions import Regions, connected_regions
from ..session import OnnxModel
from .base import Segmenter, register_segmenter
from .model_files import OnnxSegmenterConfig, resolve_segmenter_files

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "classes")


@dataclass(frozen=True)
class SemanticConfig(OnnxSegmenterConfig):
    """What the runtime must know about an exported semantic segmenter.

    Attributes:
        family: ``"deeplab"`` or ``"pspnet"``.
        arch: the exact architecture (``deeplabv3_resnet50``, ``pspnet_resnet50``, ...).
        input_size: ``(height, width)`` of the network input.
        num_classes: C.
        pixel_mean, pixel_std: normalisation of [0, 1] RGB folded into the graph (for the record).
        class_names: optional names of the C classes.
        model_version, training_data: free text for the model card.
    """

    kind: str = "semantic"
    family: str = "deeplab"
    arch: str = ""
    input_size: tuple[int, int] = (520, 520)
    num_classes: int = 21
    pixel_mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, ...] = (0.229, 0.224, 0.225)
    class_names: tuple[str, ...] = ()
    model_version: str = ""
    training_data: str = ""

    def __post_init__(self) -> None:
        if self.family not in ("deeplab", "pspnet"):
            raise ValueError(f"family must be 'deeplab' or 'pspnet', got {self.family!r}")
        if len(self.input_size) != 2 or min(self.input_size) < 16:
            raise ValueError(f"input_size must be (height, width) >= 16, got {self.input_size}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        object.__setattr__(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))


class SemanticModel(OnnxModel):
    """One semantic-segmentation ONNX file: resize in, class map out, at the image's size."""

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None, intra_op_threads: int = 0) -> None:
        super().__init__(path, providers, intra_op_threads)
        self.config = SemanticConfig.from_metadata(self.metadata, self.path, "semantic")
        self.require_names([INPUT_NAME], ["classes"])
        shape = self.session.get_inputs()[0].shape
        if list(shape) != [*self.config.input_size, 3]:
            raise ModelContractError(f"{self.path.name}: input shape {shape}, its config says {[*self.config.input_size, 3]}")

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """``int32 (H, W)`` class of each pixel of ``rgb`` (``uint8 (H, W, 3)``)."""
        height, width = rgb.shape[:2]
        in_h, in_w = self.config.input_size
        # Area averaging when shrinking avoids aliasing; linear when enlarging.
        interpolation = cv2.INTER_AREA if height * width > in_h * in_w else cv2.INTER_LINEAR
        resized = rgb if (height, width) == (in_h, in_w) else cv2.resize(rgb, (in_w, in_h), interpolation=interpolation)
        classes = self.run({INPUT_NAME: np.ascontiguousarray(resized)}, ["classes"])[0].astype(np.int32)
        if classes.shape != (height, width):
            # Nearest keeps labels labels; the class map is coarse anyway (output stride 8-16).
            classes = cv2.resize(classes, (width, height), interpolation=cv2.INTER_NEAREST)
        return classes


class SemanticSegmenter(Segmenter):
    """Regions = connected components of each predicted class. Construct once, call many times.

    Args:
        family: ``"deeplab"`` or ``"pspnet"`` (which file to load).
        model_dir: directory holding ``deeplab.onnx`` / ``pspnet.onnx``; ``None`` searches
            ``$WSLOC_MODELS``, ``assets/models`` and the Hub.
        providers, intra_op_threads: passed to onnxruntime.
        min_area_fraction: components smaller than this fraction of the image are dropped.
        ignore_classes: class indices that never form regions.
        hub_repo, revision: Hugging Face repository to fall back on.

    Attributes:
        last_timings: ``model`` (resize + network + resize back), ``regions`` and ``total`` seconds.
        last_class_map: ``int32 (H, W)`` class map of the last call.
    """

    def __init__(
        self,
        family: str,
        model_dir: str | os.PathLike | None = None,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        min_area_fraction: float = 0.001,
        ignore_classes: Sequence[int] = (),
        hub_repo: str | None = None,
        revision: str | None = None,
    ) -> None:
        super().__init__()
        if family not in ("deeplab", "pspnet"):
            raise ValueError(f"family must be 'deeplab' or 'pspnet', got {family!r}")
        if not 0.0 <= min_area_fraction < 1.0:
            raise ValueError(f"min_area_fraction must be in [0, 1), got {min_area_fraction}")
        self.name = family
        files = resolve_segmenter_files(family, model_dir, hub_repo, revision)
        self.model = SemanticModel(files["model"], providers, intra_op_threads)
        if self.model.config.family != family:
            raise ModelContractError(f"{self.model.path.name} holds a {self.model.config.family} model, not {family}")
        self.config = self.model.config
        self.min_area_fraction = float(min_area_fraction)
        self.ignore_classes = tuple(int(c) for c in ignore_classes)
        self.providers = self.model.providers
        self.last_class_map: np.ndarray | None = None

    def segment(self, rgb: np.ndarray) -> Regions:
        """Regions of ``rgb`` (``uint8 (H, W, 3)`` RGB) as ``bool (N, H, W)`` masks (a partition,
        less dropped small components and ignored classes)."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidImageError(
                f"{self.name} needs an RGB uint8 array of shape (H, W, 3), got "
                f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}"
            )
        start = time.perf_counter()
        classes = self.model.predict(rgb)
        after_model = time.perf_counter()
        min_area = max(1, int(round(self.min_area_fraction * classes.size)))
        labels = connected_regions(classes, min_area=min_area, ignore=self.ignore_classes)
        regions = Regions.from_labels(labels, source=self.name)
        end = time.perf_counter()
        self.last_class_map = classes
        self.last_timings = {"model": after_model - start, "regions": end - after_model, "total": end - start}
        return regions


@register_segmenter("deeplab", "DeepLabV3 semantic classes, one region per connected component (deeplab.onnx)")
def _deeplab(**kwargs) -> SemanticSegmenter:
    return SemanticSegmenter("deeplab", **kwargs)


@register_segmenter("pspnet", "PSPNet semantic classes, one region per connected component (pspnet.onnx)")
def _pspnet(**kwargs) -> SemanticSegmenter:
    return SemanticSegmenter("pspnet", **kwargs)
