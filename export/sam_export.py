"""Export Segment Anything to the two ONNX files :mod:`wsloc_runtime.segmenters.sam` runs.

Needs torch and segment-anything (``pip install segment-anything``); the runtime does not.

* ``sam_encoder.onnx``: input ``image`` ``uint8 (h, w, 3)`` RGB whose longer side is
  already ``img_size`` (the runtime resizes with OpenCV); the graph casts, normalises with
  SAM's pixel mean/std and zero-pads to ``img_size x img_size`` exactly as
  ``Sam.preprocess`` does, then runs the ViT. Output ``image_embeddings``
  ``float32 (1, 256, 64, 64)`` for the official models.
* ``sam_decoder.onnx``: ``segment_anything.utils.onnx.SamOnnxModel`` with
  ``return_single_mask=False`` (3 masks per prompt, as the mask generator needs) and
  dynamic ``batch`` / ``num_points`` axes on the point inputs, so one call decodes a
  whole batch of point prompts against one image embedding.

Both files carry a :class:`~wsloc_runtime.segmenters.sam.SamConfig` in their metadata.
Every export ends with ``onnx.checker`` and an onnxruntime-vs-torch parity check that
raises :class:`ParityError` when outputs differ by more than the stated tolerance.
"""

from __future__ import annotations

import logging
import os
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from segment_anything.utils.onnx import SamOnnxModel

from export.onnx_files import replace_metadata
from wsloc_runtime.segmenters.model_files import METADATA_KEY, SEGMENTER_FILES
from wsloc_runtime.segmenters.sam import DECODER_INPUTS, DECODER_OUTPUTS, SamConfig

log = logging.getLogger(__name__)

OPSET = 17
# onnx protobufs cannot exceed 2 GiB; bigger graphs (ViT-H, ~2.5 GB) keep weights outside.
PROTOBUF_LIMIT = 2 * 1024**3 - 64 * 1024**2

# Parity tolerances, measured on random-weight and official-architecture models: float32
# reordering inside onnxruntime's fused kernels stays well below these.
ENCODER_ATOL = 1e-3
ENCODER_RTOL = 1e-3
DECODER_ATOL = 1e-3
DECODER_RTOL = 1e-3


class ParityError(RuntimeError):
    """onnxruntime's outputs differ from torch's by more than the tolerance."""


# ----------------------------------------------------------------------------------------
# Building the torch model.


def build_sam(model_type: str, checkpoint: str | os.PathLike) -> nn.Module:
    """An official SAM from its checkpoint (``sam_vit_b_01ec64.pth`` etc.)."""
    from segment_anything import sam_model_registry

    if model_type not in ("vit_b", "vit_l", "vit_h"):
        raise ValueError(f"model_type must be vit_b, vit_l or vit_h, got {model_type!r}")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"SAM checkpoint not found: {checkpoint}")
    try:
        return sam_model_registry[model_type](checkpoint=str(checkpoint)).eval()
    except RuntimeError as error:  # state_dict mismatch: usually the wrong --model-type
        raise ValueError(f"{checkpoint} does not fit SAM {model_type}: {str(error).splitlines()[0]}") from error


def build_tiny_sam(seed: int = 0, img_size: int = 256, embed_dim: int = 64, prompt_dim: int = 32, depth: int = 2,
                   logit_scale: float = 3000.0) -> nn.Module:
    """A small SAM with random weights and the official architecture, for tests.

    The image embedding is ``img_size / 16`` a side, as the prompt encoder requires.
    """
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    if img_size % 16:
        raise ValueError(f"img_size must be a multiple of 16, got {img_size}")
    torch.manual_seed(seed)
    side = img_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=depth,
            embed_dim=embed_dim,
            img_size=img_size,
            mlp_ratio=2,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=2,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=[depth - 1],
            window_size=7,
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(side, side), input_image_size=(img_size, img_size), mask_in_chans=8
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=64, num_heads=2),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=64,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    # Random init gives mask logits of about +-0.02, so every stability score (offset 1.0)
    # is 0 and the mask generator would have nothing to test. Scaling the last layer of
    # each hypernetwork MLP gives logits of a trained model's magnitude (several units),
    # with the same architecture and graph.
    with torch.no_grad():
        # Random 2x2 transposed-convolution taps paint a checkerboard over every mask;
        # equal taps make the upscaling blocky-smooth, so masks follow image content.
        for layer in sam.mask_decoder.output_upscaling:
            if isinstance(layer, nn.ConvTranspose2d):
                layer.weight.copy_(layer.weight.mean(dim=(2, 3), keepdim=True).expand_as(layer.weight))
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(logit_scale)
            mlp.layers[-1].bias.mul_(logit_scale)
    return sam.eval()


# ----------------------------------------------------------------------------------------
# Graph wrappers.


class EncoderWithPreprocess(nn.Module):
    """``uint8 (h, w, 3)`` resized image -> image embedding, with ``Sam.preprocess`` folded in."""

    def __init__(self, sam: nn.Module) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder
        self.img_size = int(sam.image_encoder.img_size)
        self.register_buffer("pixel_mean", sam.pixel_mean.detach().clone().view(1, 3, 1, 1))
        self.register_buffer("pixel_std", sam.pixel_std.detach().clone().view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
        x = (x - self.pixel_mean) / self.pixel_std
        # Pad after normalising, with zeros, as Sam.preprocess does; the amounts are
        # traced from the input's shape so any resized size works.
        pad_h = self.img_size - x.shape[2]
        pad_w = self.img_size - x.shape[3]
        x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.image_encoder(x)


class DynamicSizeSamOnnxModel(SamOnnxModel):
    """``SamOnnxModel`` whose mask post-processing follows ``orig_im_size`` at run time.

    The upstream version crops the padding with ``masks[..., : int(h), : int(w)]``; the
    tracer freezes those ``int()`` calls to the sizes of the export's dummy input, so
    the masks of any other image size come out wrong. Here the crop is an
    ``index_select`` over ``arange(h)``, which stays a dynamic ``Range``/``Gather`` in ONNX.
    It also returns the three multimask outputs only (see :meth:`forward`). Everything
    else, and the numbers, are upstream's.
    """

    @torch.no_grad()
    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        sparse_embedding = self._embed_points(point_coords, point_labels)
        dense_embedding = self._embed_masks(mask_input, has_mask_input)
        masks, scores = self.model.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_embedding,
            dense_prompt_embeddings=dense_embedding,
        )
        # MaskDecoder.forward(multimask_output=True) drops token 0 (the single-mask
        # output); return_single_mask=False upstream returns all four. Keep the three
        # that SamPredictor / SamAutomaticMaskGenerator use.
        masks, scores = masks[:, 1:, :, :], scores[:, 1:]
        upscaled_masks = self.mask_postprocessing(masks, orig_im_size)
        return upscaled_masks, scores, masks

    def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        masks = F.interpolate(masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        prepadded = self.resize_longest_image_size(orig_im_size, self.img_size)
        masks = masks.index_select(2, torch.arange(prepadded[0])).index_select(3, torch.arange(prepadded[1]))
        orig = orig_im_size.to(torch.int64)
        return F.interpolate(masks, size=(orig[0], orig[1]), mode="bilinear", align_corners=False)


def _config(sam: nn.Module, part: str, model_type: str, model_version: str) -> SamConfig:
    side = sam.image_encoder.img_size // sam.image_encoder.patch_embed.proj.kernel_size[0]
    return SamConfig(
        part=part,
        model_type=model_type,
        img_size=int(sam.image_encoder.img_size),
        # Buffers are float32; round away the float32 noise (123.675 -> 123.67500305...).
        pixel_mean=tuple(round(float(v), 5) for v in sam.pixel_mean.flatten()),
        pixel_std=tuple(round(float(v), 5) for v in sam.pixel_std.flatten()),
        mask_threshold=float(sam.mask_threshold),
        embedding_shape=(int(sam.prompt_encoder.embed_dim), int(side), int(side)),
        num_multimask_outputs=int(sam.mask_decoder.num_multimask_outputs),
        model_version=model_version,
    )


def _finish(tmp_path: Path, out_path: Path, config: SamConfig, external_data: str | bool) -> Path:
    """Add metadata, choose single-file or external-data storage, run onnx.checker."""
    import onnx

    model = onnx.load(str(tmp_path), load_external_data=True)
    replace_metadata(model, {METADATA_KEY: config.to_json(), "model_type": config.model_type})
    size = model.ByteSize()
    external = size > PROTOBUF_LIMIT if external_data == "auto" else bool(external_data)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    data_name = out_path.name + ".data"
    stale = out_path.parent / data_name
    if stale.exists():
        stale.unlink()
    if external:
        onnx.save_model(model, str(out_path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        # onnx creates the data file owner-only; published files must be world-readable.
        os.chmod(out_path.parent / data_name, 0o644)
    else:
        onnx.save_model(model, str(out_path))
    # The path form of the checker handles external data and > 2 GB models.
    onnx.checker.check_model(str(out_path), full_check=True)
    log.info("wrote %s (%.1f MB%s)", out_path, size / 1e6, ", external data" if external else "")
    return out_path


def _parity(name: str, expected: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> float:
    """Max abs difference; raise :class:`ParityError` when outside ``atol + rtol*|expected|``."""
    if expected.shape != got.shape:
        raise ParityError(f"{name}: onnxruntime shape {got.shape} != torch shape {expected.shape}")
    diff = np.abs(expected.astype(np.float64) - got.astype(np.float64))
    bad = diff > atol + rtol * np.abs(expected)
    if bad.any():
        raise ParityError(
            f"{name}: {int(bad.sum())} of {bad.size} values differ beyond atol={atol}, rtol={rtol} "
            f"(max abs diff {diff.max():.3g})"
        )
    return float(diff.max())


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------------------
# Export.


def export_encoder(sam: nn.Module, out_path: Path, model_type: str, model_version: str = "",
                   external_data: str | bool = "auto", parity_image: np.ndarray | None = None) -> tuple[Path, float]:
    """Write the encoder and check it; returns the path and the measured max abs difference."""
    wrapper = EncoderWithPreprocess(sam).eval()
    size = wrapper.img_size
    rng = np.random.default_rng(0)
    # Non-square dummy so both padded sides are traced as dynamic.
    dummy = torch.from_numpy(rng.integers(0, 256, (size, (size * 3) // 4, 3), dtype=np.uint8))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "encoder.onnx"
        with torch.no_grad():
            torch.onnx.export(
                wrapper, (dummy,), str(tmp_path), input_names=["image"], output_names=["image_embeddings"],
                dynamic_axes={"image": {0: "height", 1: "width"}}, opset_version=OPSET, do_constant_folding=True,
                dynamo=False,
            )
        config = _config(sam, "encoder", model_type, model_version)
        _finish(tmp_path, out_path, config, external_data)
    # Parity on a portrait and a landscape input: catches sizes frozen at trace time.
    session = _session(out_path)
    worst = 0.0
    images = [parity_image] if parity_image is not None else []
    images += [rng.integers(0, 256, ((size * 2) // 3, size, 3), dtype=np.uint8)]
    for image in images:
        with torch.no_grad():
            expected = wrapper(torch.from_numpy(np.ascontiguousarray(image))).numpy()
        got = session.run(["image_embeddings"], {"image": np.ascontiguousarray(image)})[0]
        worst = max(worst, _parity("sam encoder image_embeddings", expected, got, ENCODER_ATOL, ENCODER_RTOL))
    return out_path, worst


def _decoder_feeds(sam: nn.Module, batch: int, image_hw: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = sam.image_encoder.img_size
    side = sam.prompt_encoder.image_embedding_size[0]
    dim = sam.prompt_encoder.embed_dim
    coords = np.zeros((batch, 2, 2), np.float32)
    coords[:, 0] = rng.uniform(0, size * 0.9, (batch, 2))
    labels = np.tile(np.asarray([[1.0, -1.0]], np.float32), (batch, 1))
    return {
        "image_embeddings": rng.standard_normal((1, dim, side, side)).astype(np.float32),
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": np.zeros((1, 1, 4 * side, 4 * side), np.float32),
        "has_mask_input": np.zeros((1,), np.float32),
        "orig_im_size": np.asarray(image_hw, np.float32),
    }


def export_decoder(sam: nn.Module, out_path: Path, model_type: str, model_version: str = "") -> tuple[Path, float]:
    """Write the prompt decoder (SamOnnxModel, 3 masks per prompt, dynamic batch) and check it."""
    onnx_model = DynamicSizeSamOnnxModel(sam, return_single_mask=False).eval()
    size = sam.image_encoder.img_size
    dummy = _decoder_feeds(sam, batch=3, image_hw=(size // 2, size), seed=0)
    dynamic = {
        "point_coords": {0: "batch", 1: "num_points"},
        "point_labels": {0: "batch", 1: "num_points"},
        "masks": {0: "batch", 2: "height", 3: "width"},
        "iou_predictions": {0: "batch"},
        "low_res_masks": {0: "batch"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "decoder.onnx"
        with torch.no_grad():
            torch.onnx.export(
                onnx_model, tuple(torch.from_numpy(dummy[name]) for name in DECODER_INPUTS), str(tmp_path),
                input_names=list(DECODER_INPUTS), output_names=list(DECODER_OUTPUTS), dynamic_axes=dynamic,
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        _finish(tmp_path, out_path, _config(sam, "decoder", model_type, model_version), external_data=False)
    # Parity at batch sizes and image sizes other than the traced ones.
    session = _session(out_path)
    worst = 0.0
    for batch, hw, seed in ((5, (size, size // 3), 1), (1, (97, 61), 2)):
        feeds = _decoder_feeds(sam, batch, hw, seed)
        with torch.no_grad():
            expected = [t.numpy() for t in onnx_model(*(torch.from_numpy(feeds[n]) for n in DECODER_INPUTS))]
        got = session.run(list(DECODER_OUTPUTS), feeds)
        for name, e, g in zip(DECODER_OUTPUTS, expected, got):
            worst = max(worst, _parity(f"sam decoder {name}", e, g, DECODER_ATOL, DECODER_RTOL))
        # And against SAM's own predictor path (prompt encoder, which adds the padding
        # point itself, multimask decoder, Sam.postprocess_masks): the wrapper must not
        # change what is computed.
        upstream_masks, upstream_iou = _upstream_decode(sam, feeds)
        worst = max(worst, _parity("sam decoder masks vs SamPredictor", upstream_masks, got[0], DECODER_ATOL, DECODER_RTOL))
        worst = max(worst, _parity("sam decoder iou vs SamPredictor", upstream_iou, got[1], DECODER_ATOL, DECODER_RTOL))
    return out_path, worst


@torch.no_grad()
def _upstream_decode(sam: nn.Module, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """What SamPredictor.predict_torch(multimask_output=True, return_logits=True) returns for one point each."""
    coords = torch.from_numpy(feeds["point_coords"][:, :1])
    labels = torch.from_numpy(feeds["point_labels"][:, :1]).to(torch.int64)
    sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    low_res, iou = sam.mask_decoder(
        image_embeddings=torch.from_numpy(feeds["image_embeddings"]), image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
    )
    height, width = (int(v) for v in feeds["orig_im_size"])
    scale = sam.image_encoder.img_size / max(height, width)
    input_size = (int(height * scale + 0.5), int(width * scale + 0.5))
    masks = sam.postprocess_masks(low_res, input_size, (height, width))
    return masks.numpy(), iou.numpy()


def export_sam(sam: nn.Module, out_dir: str | os.PathLike, model_type: str, model_version: str = "",
               external_data: str | bool = "auto") -> dict[str, object]:
    """Export encoder and decoder of ``sam`` into ``out_dir`` under the registry's file names.

    Returns:
        ``{"encoder": path, "decoder": path, "encoder_max_abs_diff": float, "decoder_max_abs_diff": float}``.
    """
    out = Path(out_dir)
    files = SEGMENTER_FILES["sam"]
    encoder, enc_diff = export_encoder(sam, out / files["encoder"].filename, model_type, model_version, external_data)
    decoder, dec_diff = export_decoder(sam, out / files["decoder"].filename, model_type, model_version)
    return {"encoder": encoder, "decoder": decoder, "encoder_max_abs_diff": enc_diff, "decoder_max_abs_diff": dec_diff}
