"""Small ONNX models that honour the WCBnet contract, built with onnx.helper (no TF, no torch).

The model is a transparent error-level detector, so tests can reason about its output:
F_c[..., k] = w_k * AvgPool(|SEL|) (channel mean), z = a * mean(F_c) + b, and
dz/dF_c = a / (h * w * D) everywhere (as a GAP -> dense head gives). Its Grad-CAM is
therefore proportional to the local error level, high where an image has a region
with a different compression history.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from wsloc_runtime.config import METADATA_KEY, WCBnetConfig


def build_contract_model(
    path: Path,
    cbam_scale: int = 2,
    input_size: tuple[int, int] = (64, 64),
    pool: int = 8,
    feature_dim: int = 4,
    logit_scale: float = 4.0,
    logit_bias: float = -1.0,
    sel_scaling: str = "fixed",
) -> Path:
    """Write a contract-honouring model to ``path`` and return it."""
    height, width = input_size
    fh, fw = height // pool, width // pool
    weights = np.linspace(0.5, 1.5, feature_dim, dtype=np.float32).reshape(feature_dim, 1, 1, 1)
    gradient_value = np.float32(logit_scale / (fh * fw * feature_dim))
    initializers = [
        numpy_helper.from_array(weights, "proj_w"),
        numpy_helper.from_array(np.array(logit_scale, np.float32), "a"),
        numpy_helper.from_array(np.array(logit_bias, np.float32), "b"),
        numpy_helper.from_array(np.array(gradient_value, np.float32), "g"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("Abs", ["sel"], ["abs"]),
        helper.make_node("Transpose", ["abs"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("ReduceMean", ["nchw"], ["gray"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["gray"], ["pooled"], kernel_shape=[pool, pool], strides=[pool, pool]),
        helper.make_node("Conv", ["pooled", "proj_w"], ["proj"]),
        helper.make_node("Transpose", ["proj"], ["features"], perm=[0, 2, 3, 1]),
        helper.make_node("ReduceMean", ["features"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "a"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["z"]),
        helper.make_node("Reshape", ["z", "shape11"], ["logit"]),
        helper.make_node("Mul", ["features", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "g"], ["gradient"]),
    ]
    initializers.append(numpy_helper.from_array(np.array([1, 1], np.int64), "shape11"))
    graph = helper.make_graph(
        nodes,
        f"contract_wcbnet{cbam_scale}",
        [helper.make_tensor_value_info("sel", TensorProto.FLOAT, [1, height, width, 3])],
        [
            helper.make_tensor_value_info("logit", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, fh, fw, feature_dim]),
            helper.make_tensor_value_info("gradient", TensorProto.FLOAT, [1, fh, fw, feature_dim]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    config = WCBnetConfig(
        cbam_scale=cbam_scale,
        input_size=input_size,
        sel_scaling=sel_scaling,
        backbone="test-error-level",
        feature_dim=feature_dim,
        model_version="test",
        training_data="none: hand-built for tests",
    )
    helper.set_model_props(model, {METADATA_KEY: config.to_json()})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_contract_model_set(directory: Path, scales=(2, 3, 4), **kwargs) -> Path:
    """Write ``wcbnet{scale}.onnx`` for each scale (pools 4, 8, 16 like blocks 2..4) into ``directory``."""
    pools = {2: 4, 3: 8, 4: 16}
    for scale in scales:
        build_contract_model(Path(directory) / f"wcbnet{scale}.onnx", cbam_scale=scale, pool=pools[scale], **kwargs)
    return Path(directory)


if __name__ == "__main__":  # python -m tests.contract_models DIR
    import sys

    out = build_contract_model_set(Path(sys.argv[1] if len(sys.argv) > 1 else "build/contract_models"))
    print(json.dumps({"written": sorted(p.name for p in out.glob("*.onnx"))}))
