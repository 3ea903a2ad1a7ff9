"""bench/bench_gpu.py must keep running: a CPU-only smoke run on the bundled models (issue 28; it had
fed a 3-channel input to 4-channel models and nobody noticed until a GPU machine was lent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import bench_gpu
from wsloc_runtime.wcbnet import WCBnetModel

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "assets" / "models"


@pytest.mark.skipif(not (MODELS / "wcbnet2.onnx").is_file(), reason="bundled models not present")
def test_bench_gpu_runs_on_the_cpu_and_writes_a_cpu_row_per_variant(tmp_path):
    out = tmp_path / "g.json"
    status = bench_gpu.main(["--models", str(MODELS), "--sizes", "1", "--runs", "1", "--pipeline-runs", "1",
                             "--warmup", "0", "--photos", str(tmp_path / "photos"), "--out", str(out)])
    assert status in (0, 2)  # 2: CUDA asked for and not there (a CPU machine)
    report = json.loads(out.read_text())
    cpu_rows = {row["variant"]: row for row in report["variants"] if row["device"] == "CPU"}
    assert sorted(cpu_rows) == ["wcbnet2", "wcbnet3", "wcbnet4"]
    for variant, row in cpu_rows.items():
        model = WCBnetModel(MODELS / f"{variant}.onnx", ["CPUExecutionProvider"])
        # The input the benchmark fed is the one the model's config declares (4 channels today).
        assert row["input"] == [1, *model.config.input_size, model.config.input_channels]
        assert row["providers"] == ["CPUExecutionProvider"] and row["median_ms"] > 0
    pipeline = [row for row in report["pipeline"] if row["device"] == "CPU"]
    assert len(pipeline) == 1 and pipeline[0]["megapixels"] == 1 and pipeline[0]["median_ms"] > 0
    if status == 2:
        assert report["cuda_missing"]
