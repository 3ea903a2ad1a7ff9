"""float16 conversion keeps the contract and stays within its stated tolerance."""

import pytest

pytest.importorskip("onnxconverter_common")

from export.fp16 import PARITY_TOLERANCE, check_parity, convert  # noqa: E402
from tests.contract_models import build_contract_model  # noqa: E402
from wsloc_runtime.wcbnet import WCBnetModel  # noqa: E402


def test_fp16_file_honours_the_contract_and_matches(tmp_path, splice):
    source = build_contract_model(tmp_path / "wcbnet2.onnx")
    target = convert(source, tmp_path / "fp16" / "wcbnet2.onnx")
    model = WCBnetModel(target, providers=["CPUExecutionProvider"])
    assert model.config.model_version.endswith("+fp16")
    # The export's stated float16 tolerance (export/fp16.py): relative to each output's largest
    # magnitude, ~20 float16 ulps (eps16 ~ 9.8e-4) for weights and activations rounded to float16
    assert all(d <= PARITY_TOLERANCE for d in check_parity(source, target).values())
    assert target.stat().st_size < source.stat().st_size or source.stat().st_size < 4096


def test_file_without_contract_metadata_is_refused(tmp_path):
    import onnx

    source = build_contract_model(tmp_path / "wcbnet2.onnx")
    model = onnx.load(str(source))
    del model.metadata_props[:]
    onnx.save(model, str(source))
    with pytest.raises(ValueError, match="wsloc.config"):
        convert(source, tmp_path / "out.onnx")
