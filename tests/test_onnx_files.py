"""export.onnx_files: the metadata, checker and atomic write every export shares."""

import onnx
import pytest
from onnx import TensorProto, helper

from export.onnx_files import checked_bytes, replace_metadata, write_atomic


def _identity_model():
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_metadata_is_replaced_checked_and_written_whole(tmp_path):
    model = _identity_model()
    replace_metadata(model, {"old": "1"})
    replace_metadata(model, {"wsloc.config": '{"a": 1}', "model_type": "t"})
    path = write_atomic(tmp_path / "sub" / "m.onnx", checked_bytes(model, "the test model"))
    loaded = onnx.load(str(path))
    assert [(p.key, p.value) for p in loaded.metadata_props] == [("wsloc.config", '{"a": 1}'), ("model_type", "t")]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.onnx"]  # no .part left


def test_a_model_the_checker_rejects_raises_the_exporters_error():
    model = _identity_model()
    model.graph.node[0].input[0] = "missing"  # an input nothing produces

    class ExportFailed(RuntimeError):
        pass

    with pytest.raises(ExportFailed, match="onnx.checker rejected the broken model"):
        checked_bytes(model, "the broken model", ExportFailed)
