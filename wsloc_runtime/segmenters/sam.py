"""Segment Anything (SAM) automatic mask generation on onnxruntime + numpy + OpenCV.

A port of segment_anything's ``SamAutomaticMaskGenerator`` (``automatic_mask_generator.py``
and ``utils/amg.py``) around two ONNX files written by ``python -m export.segmenters sam``:

* ``sam_encoder.onnx``: ``image`` ``uint8 (h, w, 3)`` RGB, already resized so that its
  longer side is ``img_size`` (1024 for the official models) -> ``image_embeddings``
  ``float32 (1, C, img_size/16, img_size/16)``. Pixel normalisation and the zero padding
  to ``img_size x img_size`` are folded into the graph.
* ``sam_decoder.onnx``: segment_anything's ``SamOnnxModel`` with ``return_single_mask=False``
  and a dynamic batch axis: ``point_coords`` ``float32 (B, N, 2)`` (in the resized frame),
  ``point_labels`` ``float32 (B, N)``, ``mask_input`` ``(1, 1, 4h, 4w)``, ``has_mask_input``
  ``(1,)``, ``orig_im_size`` ``(2,)`` -> ``masks`` ``float32 (B, 3, H, W)`` logits at the
  original size, ``iou_predictions`` ``(B, 3)``, ``low_res_masks``.

Both carry a :class:`SamConfig` in their metadata. The mask generator's parameters and
defaults are SamAutomaticMaskGenerator's; the test suite checks that both produce the
same masks from the same weights.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from itertools import product
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import InvalidImageError, ModelContractError
from ..regions import Regions
from ..session import OnnxModel
from .base import Segmenter, register_segmenter
from .model_files import OnnxSegmenterConfig, resolve_segmenter_files

# ----------------------------------------------------------------------------------------
# Typed config carried by both ONNX files.


@dataclass(frozen=True)
class SamConfig(OnnxSegmenterConfig):
    """What the runtime must know about an exported SAM.

    Attributes:
        part: ``"encoder"`` or ``"decoder"``.
        model_type: ``vit_b``, ``vit_l``, ``vit_h`` or ``tiny`` (random test model).
        img_size: side of the square encoder input (longest side after resizing).
        pixel_mean, pixel_std: RGB normalisation folded into the encoder (for the record).
        mask_threshold: logit above which a pixel is inside a mask (SAM: 0.0).
        embedding_shape: ``(C, h, w)`` of the image embedding.
        num_multimask_outputs: masks per prompt (3).
    """

    kind: str = "sam"
    part: str = "encoder"
    model_type: str = "vit_b"
    img_size: int = 1024
    pixel_mean: tuple[float, ...] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, ...] = (58.395, 57.12, 57.375)
    mask_threshold: float = 0.0
    embedding_shape: tuple[int, ...] = (256, 64, 64)
    num_multimask_outputs: int = 3
    model_version: str = ""

    def __post_init__(self) -> None:
        if self.part not in ("encoder", "decoder"):
            raise ValueError(f"part must be 'encoder' or 'decoder', got {self.part!r}")
        if self.img_size < 16 or len(self.embedding_shape) != 3:
            raise ValueError(f"bad img_size {self.img_size} / embedding_shape {self.embedding_shape}")


ENCODER_INPUTS = ("image",)
ENCODER_OUTPUTS = ("image_embeddings",)
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size")
DECODER_OUTPUTS = ("masks", "iou_predictions", "low_res_masks")

# ----------------------------------------------------------------------------------------
# numpy ports of segment_anything/utils/amg.py


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after resizing so the longer side is ``long_side`` (ResizeLongestSide.get_preprocess_shape)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


_PIL_PRECISION_BITS = 32 - 8 - 2  # PIL's fixed-point precision for 8-bit resampling


def _pil_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and fixed-point weights of PIL's bilinear (triangle) filter, per output pixel."""
    scale = in_size / out_size
    # When shrinking, PIL widens the triangle by the scale: an antialiased resize.
    filterscale = max(scale, 1.0)
    support = filterscale
    taps = np.arange(int(np.ceil(support)) * 2 + 1)[None, :]
    centers = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centers - support + 0.5).astype(np.int64), 0)
    count = np.minimum((centers + support + 0.5).astype(np.int64), in_size) - first
    weights = np.maximum(0.0, 1.0 - np.abs((taps + first[:, None] - centers[:, None] + 0.5) / filterscale))
    weights[taps >= count[:, None]] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    fixed = np.trunc(0.5 + weights * (1 << _PIL_PRECISION_BITS)).astype(np.int32)  # weights are >= 0
    return np.minimum(first[:, None] + taps, in_size - 1), fixed


def _pil_resample_axis(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    index, fixed = _pil_coefficients(image.shape[axis], out_size)
    source = np.moveaxis(image, axis, 0)
    # int32 cannot overflow: weights sum to 2**22 and pixels are <= 255.
    acc = np.full((out_size, *source.shape[1:]), 1 << (_PIL_PRECISION_BITS - 1), np.int32)
    shape = (-1,) + (1,) * (source.ndim - 1)
    for tap in range(index.shape[1]):
        acc += source[index[:, tap]].astype(np.int32) * fixed[:, tap].reshape(shape)
    return np.moveaxis(np.clip(acc >> _PIL_PRECISION_BITS, 0, 255).astype(np.uint8), 0, axis)


def resize_bilinear_like_pil(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``uint8 (H, W, C)`` -> ``uint8 (h, w, C)``, bit-exact with PIL's ``Image.resize(BILINEAR)``.

    SAM's predictor resizes with PIL (through torchvision's ``to_pil_image``/``resize``),
    which antialiases when shrinking; OpenCV's filters differ by a few grey levels, enough
    to move mask boundaries of a sensitive model. This is PIL's separable fixed-point
    algorithm (horizontal pass, rounded to uint8, then vertical), in numpy.
    """
    height, width = size
    out = rgb
    if out.shape[1] != width:
        out = _pil_resample_axis(out, width, 1)
    if out.shape[0] != height:
        out = _pil_resample_axis(out, height, 0)
    return np.ascontiguousarray(out)


def build_point_grid(n_per_side: int) -> np.ndarray:
    """``(n*n, 2)`` float64 points (x, y) evenly spaced in [0, 1] x [0, 1], cell centres."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def build_all_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    """One grid per crop layer; layer i has ``n_per_side / scale_per_layer**i`` points a side."""
    return [build_point_grid(int(n_per_side / (scale_per_layer**i))) for i in range(n_layers + 1)]


def generate_crop_boxes(im_size: tuple[int, int], n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """Crop boxes ``[x0, y0, x1, y1]`` and their layer; layer i has (2**i)**2 overlapping crops."""
    im_h, im_w = im_size
    short_side = min(im_h, im_w)
    crop_boxes, layer_idxs = [[0, 0, im_w, im_h]], [0]

    def crop_len(orig_len: int, n_crops: int, overlap: int) -> int:
        return int(math.ceil((overlap * (n_crops - 1) + orig_len) / n_crops))

    for i_layer in range(n_layers):
        n_crops_per_side = 2 ** (i_layer + 1)
        overlap = int(overlap_ratio * short_side * (2 / n_crops_per_side))
        crop_w = crop_len(im_w, n_crops_per_side, overlap)
        crop_h = crop_len(im_h, n_crops_per_side, overlap)
        x0s = [int((crop_w - overlap) * i) for i in range(n_crops_per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(n_crops_per_side)]
        for x0, y0 in product(x0s, y0s):
            crop_boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layer_idxs.append(i_layer + 1)
    return crop_boxes, layer_idxs


def stability_score(logits: np.ndarray, mask_threshold: float, offset: float) -> np.ndarray:
    """IoU of the masks thresholded at ``threshold + offset`` and ``threshold - offset``.

    Args:
        logits: ``float32 (N, H, W)`` mask logits.

    Returns:
        ``float32 (N,)``; 0 where even the low threshold gives an empty mask (SAM gives NaN,
        which fails every filter just as 0 does).
    """
    # The high-threshold mask lies inside the low one, so intersection/union is a ratio of counts.
    inter = (logits > (mask_threshold + offset)).sum(axis=(1, 2), dtype=np.int64).astype(np.float32)
    union = (logits > (mask_threshold - offset)).sum(axis=(1, 2), dtype=np.int64).astype(np.float32)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """``int64 (N, 4)`` inclusive ``[x0, y0, x1, y1]`` around each ``bool (N, H, W)`` mask; zeros if empty."""
    n = masks.shape[0]
    boxes = np.zeros((n, 4), np.int64)
    if n == 0:
        return boxes
    rows = masks.any(axis=2)
    cols = masks.any(axis=1)
    nonempty = rows.any(axis=1)
    h, w = masks.shape[1:]
    # argmax finds the first True; on the reversed array it finds the last.
    boxes[:, 0] = cols.argmax(axis=1)
    boxes[:, 1] = rows.argmax(axis=1)
    boxes[:, 2] = w - 1 - cols[:, ::-1].argmax(axis=1)
    boxes[:, 3] = h - 1 - rows[:, ::-1].argmax(axis=1)
    boxes[~nonempty] = 0
    return boxes


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression with torchvision.ops.nms semantics.

    Args:
        boxes: ``(N, 4)`` ``[x0, y0, x1, y1]`` (areas as ``(x1-x0)*(y1-y0)``, like torchvision).
        scores: ``(N,)``; higher is kept first (stable order among equal scores).
        iou_threshold: boxes overlapping a kept box with IoU above this are dropped.

    Returns:
        ``int64`` indices of the kept boxes, by decreasing score.
    """
    boxes = np.asarray(boxes, np.float32)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0) * (y1 - y0)
    suppressed = np.zeros(len(boxes), bool)
    keep: list[int] = []
    for position, index in enumerate(order):
        if suppressed[index]:
            continue
        keep.append(int(index))
        rest = order[position + 1 :]
        rest = rest[~suppressed[rest]]
        if rest.size == 0:
            continue
        inter_w = np.clip(np.minimum(x1[index], x1[rest]) - np.maximum(x0[index], x0[rest]), 0, None)
        inter_h = np.clip(np.minimum(y1[index], y1[rest]) - np.maximum(y0[index], y0[rest]), 0, None)
        inter = inter_w * inter_h
        iou = inter / (areas[index] + areas[rest] - inter)
        suppressed[rest[iou > iou_threshold]] = True
    return np.asarray(keep, np.int64)


def is_box_near_crop_edge(boxes: np.ndarray, crop_box: Sequence[int], orig_box: Sequence[int], atol: float = 20.0) -> np.ndarray:
    """``bool (N,)``: a box (crop frame) touches the crop's edge where that edge is not the image's."""
    x0, y0 = crop_box[0], crop_box[1]
    boxes = boxes.astype(np.float32) + np.asarray([x0, y0, x0, y0], np.float32)
    near_crop = np.abs(boxes - np.asarray(crop_box, np.float32)[None]) <= atol
    near_image = np.abs(boxes - np.asarray(orig_box, np.float32)[None]) <= atol
    return np.any(near_crop & ~near_image, axis=1)


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or drop islands (``"islands"``) smaller than ``area_thresh``.

    Returns the mask and whether it changed (segment_anything's ``remove_small_regions``).
    """
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    correct_holes = mode == "holes"
    working = (correct_holes ^ mask).astype(np.uint8)
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(working, connectivity=8)
    sizes = stats[:, cv2.CC_STAT_AREA][1:]  # row 0 is the background
    small = [i + 1 for i, s in enumerate(sizes) if s < area_thresh]
    if not small:
        return mask, False
    fill = [0] + small
    if not correct_holes:
        fill = [i for i in range(n_labels) if i not in fill]
        if not fill:  # every island is small: keep the largest
            fill = [int(np.argmax(sizes)) + 1]
    return np.isin(labels, fill), True


# ----------------------------------------------------------------------------------------
# The two ONNX sessions: pre-processing only.


class SamEncoder(OnnxModel):
    """The image encoder: ``uint8 (H, W, 3)`` RGB at any size -> ``float32 (1, C, h, w)`` embedding."""

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None, intra_op_threads: int = 0) -> None:
        super().__init__(path, providers, intra_op_threads)
        self.config = SamConfig.from_metadata(self.metadata, self.path, "sam")
        if self.config.part != "encoder":
            raise ModelContractError(f"{self.path.name}: is a SAM {self.config.part}, expected the encoder")
        self.require_names(ENCODER_INPUTS, ENCODER_OUTPUTS)

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        """Resize so the longer side is ``img_size``, exactly as SamPredictor.set_image does."""
        return resize_bilinear_like_pil(rgb, preprocess_shape(rgb.shape[0], rgb.shape[1], self.config.img_size))

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """The image embedding of ``rgb`` (``uint8 (H, W, 3)``)."""
        return self.run({"image": self.resize(rgb)}, ["image_embeddings"])[0]


class SamDecoder(OnnxModel):
    """The prompt encoder + mask decoder, batched over point prompts."""

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None, intra_op_threads: int = 0) -> None:
        super().__init__(path, providers, intra_op_threads)
        self.config = SamConfig.from_metadata(self.metadata, self.path, "sam")
        if self.config.part != "decoder":
            raise ModelContractError(f"{self.path.name}: is a SAM {self.config.part}, expected the decoder")
        self.require_names(DECODER_INPUTS, DECODER_OUTPUTS)
        _, h, w = self.config.embedding_shape
        # No mask prompt: a zero mask with has_mask_input = 0, as in SAM's ONNX example.
        self._mask_input = np.zeros((1, 1, 4 * h, 4 * w), np.float32)
        self._has_mask = np.zeros((1,), np.float32)

    def predict(self, embedding: np.ndarray, points: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Masks for a batch of single foreground points.

        Args:
            embedding: ``float32 (1, C, h, w)`` from :meth:`SamEncoder.embed`.
            points: ``(B, 2)`` (x, y) in pixels of the image of size ``image_size``.
            image_size: ``(H, W)`` of the image that was embedded.

        Returns:
            ``float32 (B, 3, H, W)`` mask logits and ``float32 (B, 3)`` predicted IoUs.
        """
        height, width = image_size
        new_h, new_w = preprocess_shape(height, width, self.config.img_size)
        coords = np.asarray(points, np.float64) * np.asarray([new_w / width, new_h / height])
        batch = coords.shape[0]
        # Each prompt is the point plus SAM's padding point (0, 0) with label -1, which
        # SamPredictor adds itself when no box is given.
        point_coords = np.zeros((batch, 2, 2), np.float32)
        point_coords[:, 0] = coords
        point_labels = np.tile(np.asarray([[1.0, -1.0]], np.float32), (batch, 1))
        masks, iou = self.run(
            {
                "image_embeddings": embedding,
                "point_coords": point_coords,
                "point_labels": point_labels,
                "mask_input": self._mask_input,
                "has_mask_input": self._has_mask,
                "orig_im_size": np.asarray([height, width], np.float32),
            },
            ["masks", "iou_predictions"],
        )
        return masks, iou


# ----------------------------------------------------------------------------------------
# The mask generator.


@register_segmenter("sam", "Segment Anything automatic masks (sam_encoder.onnx + sam_decoder.onnx)")
class SamSegmenter(Segmenter):
    """SamAutomaticMaskGenerator on onnxruntime. Construct once, call :meth:`segment` many times.

    Args:
        model_dir: directory holding ``sam_encoder.onnx`` and ``sam_decoder.onnx``; ``None``
            searches ``$WSLOC_MODELS``, ``assets/models`` and the Hub (see :mod:`wsloc_runtime.models`).
        providers, intra_op_threads: passed to both onnxruntime sessions.
        points_per_side ... min_mask_region_area: exactly SamAutomaticMaskGenerator's, with
            its defaults (chosen by SAM's authors for ViT-H).
        point_grids: explicit grids in [0, 1] per crop layer, instead of ``points_per_side``.
        hub_repo, revision: Hugging Face repository to fall back on.

    Attributes:
        last_timings: ``encoder``, ``decoder``, ``postprocess`` and ``total`` seconds of the last call.
    """

    name = "sam"

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        hub_repo: str | None = None,
        revision: str | None = None,
    ) -> None:
        super().__init__()
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids")
        if points_per_batch < 1 or crop_n_layers < 0 or crop_n_points_downscale_factor < 1:
            raise ValueError("points_per_batch and crop_n_points_downscale_factor must be >= 1, crop_n_layers >= 0")
        if point_grids is not None and len(point_grids) < crop_n_layers + 1:
            raise ValueError(f"point_grids needs one grid per crop layer ({crop_n_layers + 1})")
        files = resolve_segmenter_files("sam", model_dir, hub_repo, revision)
        self.encoder = SamEncoder(files["encoder"], providers, intra_op_threads)
        self.decoder = SamDecoder(files["decoder"], providers, intra_op_threads)
        enc, dec = self.encoder.config, self.decoder.config
        if (enc.img_size, tuple(enc.embedding_shape)) != (dec.img_size, tuple(dec.embedding_shape)):
            raise ModelContractError(
                f"SAM encoder ({enc.model_type}, {enc.embedding_shape}) and decoder "
                f"({dec.model_type}, {dec.embedding_shape}) come from different models"
            )
        self.point_grids = (
            build_all_layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
            if points_per_side is not None
            else [np.asarray(g, np.float64) for g in point_grids]  # type: ignore[union-attr]
        )
        self.points_per_batch = int(points_per_batch)
        self.pred_iou_thresh = float(pred_iou_thresh)
        self.stability_score_thresh = float(stability_score_thresh)
        self.stability_score_offset = float(stability_score_offset)
        self.box_nms_thresh = float(box_nms_thresh)
        self.crop_n_layers = int(crop_n_layers)
        self.crop_nms_thresh = float(crop_nms_thresh)
        self.crop_overlap_ratio = float(crop_overlap_ratio)
        self.min_mask_region_area = int(min_mask_region_area)
        self.mask_threshold = float(dec.mask_threshold)
        self.providers = self.encoder.providers

    # -- public API -------------------------------------------------------------------

    def segment(self, rgb: np.ndarray) -> Regions:
        """Automatic masks of ``rgb`` (``uint8 (H, W, 3)`` RGB) as ``Regions`` ``(N, H, W)``, best first."""
        records = self.generate(rgb)
        height, width = rgb.shape[:2]
        if not records:
            return Regions(np.zeros((0, height, width), bool), self.name)
        return Regions(np.stack([r["segmentation"] for r in records]), self.name)

    def generate(self, rgb: np.ndarray) -> list[dict[str, Any]]:
        """SamAutomaticMaskGenerator.generate's records (``output_mode="binary_mask"``).

        Each record has ``segmentation`` (``bool (H, W)``), ``area``, ``bbox`` (XYWH),
        ``predicted_iou``, ``point_coords``, ``stability_score`` and ``crop_box`` (XYWH).
        """
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidImageError(
                f"SAM needs an RGB uint8 array of shape (H, W, 3), got "
                f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}"
            )
        self.last_timings = {"encoder": 0.0, "decoder": 0.0, "postprocess": 0.0}
        start = time.perf_counter()
        data = self._generate_masks(rgb)
        if self.min_mask_region_area > 0 and len(data["masks"]):
            tic = time.perf_counter()
            data = self._postprocess_small_regions(data, max(self.box_nms_thresh, self.crop_nms_thresh))
            self.last_timings["postprocess"] += time.perf_counter() - tic
        records = []
        for i in range(len(data["masks"])):
            box = data["boxes"][i]
            crop = data["crop_boxes"][i]
            records.append(
                {
                    "segmentation": data["masks"][i],
                    "area": int(data["masks"][i].sum()),
                    "bbox": [int(box[0]), int(box[1]), int(box[2] - box[0]), int(box[3] - box[1])],
                    "predicted_iou": float(data["iou_preds"][i]),
                    "point_coords": [data["points"][i].tolist()],
                    "stability_score": float(data["stability_score"][i]),
                    "crop_box": [int(crop[0]), int(crop[1]), int(crop[2] - crop[0]), int(crop[3] - crop[1])],
                }
            )
        self.last_timings["total"] = time.perf_counter() - start
        return records

    # -- the steps of SamAutomaticMaskGenerator ----------------------------------------

    def _generate_masks(self, image: np.ndarray) -> dict[str, np.ndarray]:
        orig_size = image.shape[:2]
        crop_boxes, layer_idxs = generate_crop_boxes(orig_size, self.crop_n_layers, self.crop_overlap_ratio)
        parts = [self._process_crop(image, box, layer, orig_size) for box, layer in zip(crop_boxes, layer_idxs)]
        data = _concat(parts, orig_size)
        if len(crop_boxes) > 1 and len(data["masks"]):
            tic = time.perf_counter()
            # Between crops, prefer masks from smaller crops.
            crop = data["crop_boxes"].astype(np.float64)
            scores = 1.0 / ((crop[:, 2] - crop[:, 0]) * (crop[:, 3] - crop[:, 1]))
            data = _take(data, box_nms(data["boxes"], scores, self.crop_nms_thresh))
            self.last_timings["postprocess"] += time.perf_counter() - tic
        return data

    def _process_crop(self, image: np.ndarray, crop_box: list[int], layer: int, orig_size: tuple[int, int]) -> dict[str, np.ndarray]:
        x0, y0, x1, y1 = crop_box
        cropped = np.ascontiguousarray(image[y0:y1, x0:x1, :])
        crop_size = cropped.shape[:2]
        tic = time.perf_counter()
        # Computed once per crop and reused by every prompt batch.
        embedding = self.encoder.embed(cropped)
        self.last_timings["encoder"] += time.perf_counter() - tic

        points_for_image = self.point_grids[layer] * np.asarray(crop_size)[None, ::-1]
        batches = [
            self._process_batch(embedding, points_for_image[i : i + self.points_per_batch], crop_size, crop_box, orig_size)
            for i in range(0, len(points_for_image), self.points_per_batch)
        ]
        tic = time.perf_counter()
        data = _concat(batches, crop_size)
        # Remove duplicates within this crop.
        data = _take(data, box_nms(data["boxes"], data["iou_preds"], self.box_nms_thresh))
        # Back to the original image frame.
        data["boxes"] = data["boxes"] + np.asarray([x0, y0, x0, y0])
        data["points"] = data["points"] + np.asarray([x0, y0])
        if (x0, y0, x1, y1) != (0, 0, orig_size[1], orig_size[0]):
            full = np.zeros((len(data["masks"]), *orig_size), bool)
            full[:, y0:y1, x0:x1] = data["masks"]
            data["masks"] = full
        data["crop_boxes"] = np.tile(np.asarray(crop_box, np.int64), (len(data["masks"]), 1))
        self.last_timings["postprocess"] += time.perf_counter() - tic
        return data

    def _process_batch(
        self, embedding: np.ndarray, points: np.ndarray, im_size: tuple[int, int], crop_box: list[int], orig_size: tuple[int, int]
    ) -> dict[str, np.ndarray]:
        orig_h, orig_w = orig_size
        tic = time.perf_counter()
        logits, iou_preds = self.decoder.predict(embedding, points, im_size)
        self.last_timings["decoder"] += time.perf_counter() - tic
        tic = time.perf_counter()
        n_masks = logits.shape[1]
        logits = logits.reshape(-1, *logits.shape[2:])
        iou_preds = iou_preds.reshape(-1)
        points = np.repeat(points, n_masks, axis=0)

        keep = np.ones(len(iou_preds), bool)
        if self.pred_iou_thresh > 0.0:
            keep = iou_preds > self.pred_iou_thresh
        # Index before the stability score: it is the costly per-pixel step.
        logits, iou_preds, points = logits[keep], iou_preds[keep], points[keep]
        stability = stability_score(logits, self.mask_threshold, self.stability_score_offset)
        if self.stability_score_thresh > 0.0:
            keep = stability >= self.stability_score_thresh
            logits, iou_preds, points, stability = logits[keep], iou_preds[keep], points[keep], stability[keep]

        masks = logits > self.mask_threshold
        boxes = masks_to_boxes(masks)
        keep = ~is_box_near_crop_edge(boxes, crop_box, [0, 0, orig_w, orig_h])
        result = {
            "masks": masks[keep],
            "iou_preds": iou_preds[keep],
            "points": points[keep],
            "stability_score": stability[keep],
            "boxes": boxes[keep],
        }
        self.last_timings["postprocess"] += time.perf_counter() - tic
        return result

    def _postprocess_small_regions(self, data: dict[str, np.ndarray], nms_thresh: float) -> dict[str, np.ndarray]:
        """Fill small holes, drop small islands, then NMS preferring masks that needed neither."""
        new_masks, scores = [], []
        for mask in data["masks"]:
            mask, changed_holes = remove_small_regions(mask, self.min_mask_region_area, "holes")
            mask, changed_islands = remove_small_regions(mask, self.min_mask_region_area, "islands")
            new_masks.append(mask)
            scores.append(0.0 if (changed_holes or changed_islands) else 1.0)
        masks = np.stack(new_masks)
        boxes = masks_to_boxes(masks)
        keep = box_nms(boxes, np.asarray(scores), nms_thresh)
        data = dict(data, masks=masks, boxes=boxes)
        return _take(data, keep)


def _take(data: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[index] for key, value in data.items()}


def _concat(parts: list[dict[str, np.ndarray]], size: tuple[int, int]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if len(p["masks"])]
    if not parts:
        return {
            "masks": np.zeros((0, *size), bool),
            "iou_preds": np.zeros(0, np.float32),
            "points": np.zeros((0, 2)),
            "stability_score": np.zeros(0, np.float32),
            "boxes": np.zeros((0, 4), np.int64),
            "crop_boxes": np.zeros((0, 4), np.int64),
        }
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
