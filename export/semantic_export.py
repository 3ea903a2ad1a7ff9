"""Export DeepLabV3 (torchvision) and PSPNet (:mod:`export.pspnet_model`) to ONNX.

Writes the file :class:`wsloc_runtime.segmenters.semantic.SemanticModel` runs:
input ``image`` ``uint8 (H, W, 3)`` RGB at the fixed ``input_size``; in the graph:
scale to [0, 1], ImageNet mean/std, the network, then outputs ``logits``
``float32 (1, C, H, W)`` and ``classes`` ``int64 (H, W)`` (argmax over C). The typed
:class:`~wsloc_runtime.segmenters.semantic.SemanticConfig` goes into the metadata.

Every export ends with ``onnx.checker`` and a parity check of onnxruntime against torch
on a real-looking input (raises :class:`ParityError`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from export.onnx_files import replace_metadata
from export.pspnet_model import BACKBONES, PSPNet
from wsloc_runtime.segmenters.model_files import METADATA_KEY, SEGMENTER_FILES
from wsloc_runtime.segmenters.semantic import INPUT_NAME, OUTPUT_NAMES, SemanticConfig

log = logging.getLogger(__name__)

OPSET = 17
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEEPLAB_ARCHS = ("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large")
# Logit tolerance: float32 convolution stacks of 50-100 layers reorder sums differently
# in onnxruntime; differences measured on random-weight models are ~1e-5 of unit-scale logits.
LOGITS_ATOL = 1e-3
LOGITS_RTOL = 1e-3
# Pixels whose argmax may flip: only where two classes tie within the logit tolerance.
MAX_CLASS_DISAGREEMENT = 1e-3

# torchvision's COCO-trained DeepLabV3 weights predict the 20 Pascal VOC classes + background.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


class ParityError(RuntimeError):
    """onnxruntime's outputs differ from torch's by more than the tolerance."""


def load_state_dict(checkpoint: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state_dict from a checkpoint file (unwraps ``state_dict``/``model``, strips ``module.``)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    raw: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(raw, Mapping) and key in raw and isinstance(raw[key], Mapping):
            raw = raw[key]
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: not a state_dict (got {type(raw).__name__})")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in raw.items()}


def _state_and_classes(checkpoint, num_classes: int | None, classifier_key: str, not_what: str):
    """``(state_dict or None, num_classes)``: the class count comes from the checkpoint's last
    classifier weight when there is a checkpoint, else from ``num_classes`` (random weights)."""
    state = load_state_dict(checkpoint) if checkpoint is not None else None
    if state is not None:
        if classifier_key not in state:
            raise ValueError(f"{checkpoint}: no {classifier_key}; {not_what}")
        num_classes = int(state[classifier_key].shape[0])
    if not num_classes:
        raise ValueError("num_classes is needed when there is no checkpoint")
    return state, num_classes


def _load_strict(model: nn.Module, state, checkpoint, target: str) -> None:
    """Load ``state`` into ``model`` (all keys must match); a mismatch names the checkpoint and ``target``."""
    if state is None:
        return
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{checkpoint} does not fit {target}: {str(error).splitlines()[0]}") from error


def build_deeplab(arch: str, checkpoint: str | os.PathLike | None = None, num_classes: int | None = None) -> nn.Module:
    """torchvision DeepLabV3 from a checkpoint (num_classes read from ``classifier.4.weight``),
    or with random weights when ``checkpoint`` is None (tests)."""
    import torchvision.models.segmentation as seg

    if arch not in DEEPLAB_ARCHS:
        raise ValueError(f"arch must be one of {DEEPLAB_ARCHS}, got {arch!r}")
    state, num_classes = _state_and_classes(checkpoint, num_classes, "classifier.4.weight",
                                            "not a torchvision DeepLabV3 checkpoint")
    aux = state is not None and any(k.startswith("aux_classifier.") for k in state)
    model = getattr(seg, arch)(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux)
    _load_strict(model, state, checkpoint, arch)
    model.aux_classifier = None  # training-only head; keeps it out of the graph
    return model.eval()


def build_pspnet(backbone: str, checkpoint: str | os.PathLike | None = None, num_classes: int | None = None) -> nn.Module:
    """:class:`export.pspnet_model.PSPNet` from a checkpoint of that module (num_classes read
    from ``cls.4.weight``), or with random weights when ``checkpoint`` is None."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    state, num_classes = _state_and_classes(checkpoint, num_classes, "cls.4.weight",
                                            "not a checkpoint of export.pspnet_model.PSPNet")
    model = PSPNet(num_classes, backbone, aux=state is not None and any(k.startswith("aux.") for k in state))
    _load_strict(model, state, checkpoint, f"PSPNet/{backbone}")
    model.aux = None
    return model.eval()


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm layers non-trivial statistics, so random-weight parity tests exercise them
    (fresh layers have mean 0, var 1, which a wrong folding would not reveal)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


class SemanticWithPreprocess(nn.Module):
    """``uint8 (H, W, 3)`` -> (``logits (1, C, H, W)``, ``classes int64 (H, W)``), normalisation folded in."""

    def __init__(self, model: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.permute(2, 0, 1).unsqueeze(0).to(torch.float32) / 255.0
        out = self.model((x - self.mean) / self.std)
        logits = out["out"] if isinstance(out, dict) else out
        return logits, logits[0].argmax(dim=0)


def _parity_image(height: int, width: int) -> np.ndarray:
    """A photo when scikit-image is there (textures, edges), else smooth random structure."""
    try:
        import cv2
        import skimage.data

        return cv2.resize(skimage.data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def export_semantic(model: nn.Module, out_path: str | os.PathLike, config: SemanticConfig) -> dict[str, Any]:
    """Export ``model`` (``float (1,3,H,W)`` normalised -> logits or ``{"out": logits}``) with
    its preprocessing, check it, and return ``{"path", "max_abs_diff", "class_agreement"}``."""
    import onnx
    import onnxruntime as ort

    out_path = Path(out_path)
    wrapper = SemanticWithPreprocess(model, config.pixel_mean, config.pixel_std).eval()
    height, width = config.input_size
    image = _parity_image(height, width)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(
                wrapper, (torch.from_numpy(image),), str(tmp_path), input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES), opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        proto = onnx.load(str(tmp_path))
    replace_metadata(proto, {METADATA_KEY: config.to_json()})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(out_path))
    onnx.checker.check_model(str(out_path), full_check=True)

    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    got_logits, got_classes = session.run(list(OUTPUT_NAMES), {INPUT_NAME: image})
    with torch.no_grad():
        want_logits, want_classes = (t.numpy() for t in wrapper(torch.from_numpy(image)))
    if got_logits.shape != want_logits.shape or got_classes.shape != want_classes.shape:
        raise ParityError(f"{out_path.name}: onnxruntime shapes {got_logits.shape}/{got_classes.shape}, "
                          f"torch {want_logits.shape}/{want_classes.shape}")
    diff = np.abs(got_logits.astype(np.float64) - want_logits)
    bad = diff > LOGITS_ATOL + LOGITS_RTOL * np.abs(want_logits)
    if bad.any():
        raise ParityError(f"{out_path.name}: {int(bad.sum())} logits differ beyond atol={LOGITS_ATOL}, "
                          f"rtol={LOGITS_RTOL} (max {diff.max():.3g})")
    agreement = float((got_classes == want_classes).mean())
    if 1.0 - agreement > MAX_CLASS_DISAGREEMENT:
        raise ParityError(f"{out_path.name}: argmax classes agree on only {agreement:.4%} of pixels")
    log.info("wrote %s; max |logit diff| %.3g, class agreement %.5f", out_path, diff.max(), agreement)
    return {"path": out_path, "max_abs_diff": float(diff.max()), "class_agreement": agreement}


def export_deeplab(arch: str, checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike,
                   input_size: tuple[int, int] = (520, 520), num_classes: int | None = None,
                   model_version: str = "", training_data: str = "", seed: int = 0) -> dict[str, Any]:
    """Build DeepLabV3 (from ``checkpoint``, or random with ``num_classes``) and export it to ``out_dir/deeplab.onnx``."""
    if checkpoint is None:
        torch.manual_seed(seed)
    model = build_deeplab(arch, checkpoint, num_classes)
    if checkpoint is None:
        randomize_batchnorm(model, seed)
    classes = int(model.classifier[-1].out_channels)
    config = SemanticConfig(
        family="deeplab", arch=arch, input_size=tuple(input_size), num_classes=classes,
        pixel_mean=IMAGENET_MEAN, pixel_std=IMAGENET_STD,
        class_names=VOC_CLASSES if classes == len(VOC_CLASSES) else (),
        model_version=model_version or (Path(checkpoint).name if checkpoint else "random"),
        training_data=training_data or ("COCO subset, Pascal VOC classes (torchvision)" if classes == 21 else ""),
    )
    return export_semantic(model, Path(out_dir) / SEGMENTER_FILES["deeplab"]["model"].filename, config)


def export_pspnet(backbone: str, checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike,
                  input_size: tuple[int, int] = (473, 473), num_classes: int | None = None,
                  model_version: str = "", training_data: str = "", seed: int = 0) -> dict[str, Any]:
    """Build PSPNet (from ``checkpoint``, or random with ``num_classes``) and export it to ``out_dir/pspnet.onnx``."""
    if checkpoint is None:
        torch.manual_seed(seed)
    model = build_pspnet(backbone, checkpoint, num_classes)
    if checkpoint is None:
        randomize_batchnorm(model, seed)
    config = SemanticConfig(
        family="pspnet", arch=f"pspnet_{backbone}", input_size=tuple(input_size),
        num_classes=int(model.cls[-1].out_channels), pixel_mean=IMAGENET_MEAN, pixel_std=IMAGENET_STD,
        model_version=model_version or (Path(checkpoint).name if checkpoint else "random"),
        training_data=training_data,
    )
    return export_semantic(model, Path(out_dir) / SEGMENTER_FILES["pspnet"]["model"].filename, config)
