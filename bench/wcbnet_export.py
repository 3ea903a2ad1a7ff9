"""Build a WCBnet variant in Keras and convert it to an ONNX file that honours the runtime contract.

Benchmarks need a real-sized network before the trained models exist; weights are
random (the cost of a forward pass does not depend on their values). The converted
graph computes the same three tensors as ``export.convert`` will ship (logit, F_c and
dz/dF_c via a GradientTape on the head), so onnxruntime and TensorFlow are timed on the
same computation with identical weights.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def contract_function(parts):
    """A ``tf.function``: scaled SEL ``[1, H, W, 3]`` -> ``(logit, features, gradient)``."""
    import tensorflow as tf

    height, width = parts.encoder.input.shape[1:3]

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="sel")])
    def forward(sel):
        features = parts.encoder(sel, training=False)
        with tf.GradientTape() as tape:
            tape.watch(features)
            logit = parts.head(features, training=False)
        gradient = tape.gradient(logit, features)
        return (tf.identity(logit, name="logit"), tf.identity(features, name="features"),
                tf.identity(gradient, name="gradient"))

    return forward


def _unstacked_block_sum(self, inputs):
    """``sum_j w_j * P_j`` as a chain of adds: the same value as ``WeightedBlockSum.call`` without the
    5-D ``[B, N, h, w, D]`` stack, which onnxruntime pays for with a large Concat and Transpose."""
    from keras import ops

    *blocks, weights = inputs
    total = blocks[0] * weights[:, 0, None, None, None]
    for index, block in enumerate(blocks[1:], start=1):
        total = ops.add(total, block * weights[:, index, None, None, None])
    return total


def build_parts(scale: int, backbone: str, input_size: int, feature_dim: int, seed: int = 0,
                unstacked_sum: bool = False):
    """``unstacked_sum`` builds the proposed WeightedBlockSum (see docs/performance.md); the layer has
    no weights, so trained checkpoints load into either form."""
    import keras

    from export import wcbnet as wcbnet_module
    from export.wcbnet import build_wcbnet

    if unstacked_sum:
        wcbnet_module.WeightedBlockSum.call = _unstacked_block_sum

    keras.utils.set_random_seed(seed)
    return build_wcbnet(scale, backbone=backbone, input_size=(input_size, input_size), feature_dim=feature_dim)


def export_onnx(parts, path: Path, scale: int, backbone: str, input_size: int, feature_dim: int) -> Path:
    """Convert ``parts`` with tf2onnx and stamp the ``wsloc.config`` metadata the runtime checks."""
    import onnx
    import tf2onnx

    from wsloc_runtime.config import METADATA_KEY, WCBnetConfig

    function = contract_function(parts)
    model, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
    # tf2onnx names outputs after graph tensors ("Identity:0", ...) and may fold dz/dF_c (a
    # constant for a linear head) into an initializer; an Identity per output gives the contract names.
    from onnx import helper

    for output, name in zip(model.graph.output, ("logit", "features", "gradient")):
        model.graph.node.append(helper.make_node("Identity", [output.name], [name], name=f"contract_{name}"))
        output.name = name
    assert model.graph.input[0].name == "sel", model.graph.input[0].name  # from the TensorSpec name
    config = WCBnetConfig(
        cbam_scale=scale, input_size=(input_size, input_size), backbone=backbone, feature_dim=feature_dim,
        model_version="bench-random", training_data="none: random weights for benchmarking",
    )
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, config.to_json()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
