"""Provider choice: CUDA only where it can run, its libraries preloaded, one fallback line per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
import warnings

import onnxruntime
import pytest

import wsloc_runtime.session as session
from tests.conftest import REPO_ROOT

CUDA_REQUEST = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cuda_fallback_is_one_line_per_process_and_results_say_cpu(contract_models):
    completed = run_python(
        f"""
        import logging
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
        from wsloc_runtime.session import OnnxModel
        models = [OnnxModel({str(contract_models)!r} + f"/wcbnet{{s}}.onnx", providers={CUDA_REQUEST!r})
                  for s in (2, 3, 4)]
        print([m.providers for m in models])
        """
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    if "CUDAExecutionProvider" in completed.stdout:
        pytest.skip("CUDA really runs here: nothing falls back")
    assert completed.stdout.strip() == str([["CPUExecutionProvider"]] * 3)  # nothing else on stdout
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("WARNING: CUDA not used, running on the CPU: "), lines


def test_no_driver_means_cpu_and_no_message(contract_models):
    """The GPU build on a machine without an NVIDIA driver (CI, a CPU Space) is a CPU machine, not a failure."""
    completed = run_python(
        f"""
        import logging
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s: %(message)s")
        import wsloc_runtime.session as s
        s.nvidia_driver_found = lambda: False
        assert s.default_providers() == ["CPUExecutionProvider"], s.default_providers()
        print(s.OnnxModel({str(contract_models / "wcbnet2.onnx")!r}).providers)
        """
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "['CPUExecutionProvider']"
    assert "CUDA" not in completed.stderr, completed.stderr


def test_cuda_is_the_default_only_with_the_gpu_build_and_a_driver(monkeypatch):
    monkeypatch.delenv("WSLOC_PROVIDERS", raising=False)
    monkeypatch.setattr(session, "_gpu_build_overwritten", lambda: False)
    monkeypatch.setattr(session, "available_providers", lambda: CUDA_REQUEST)
    monkeypatch.setattr(session, "nvidia_driver_found", lambda: True)
    assert session.default_providers() == CUDA_REQUEST
    monkeypatch.setattr(session, "nvidia_driver_found", lambda: False)
    assert session.default_providers() == ["CPUExecutionProvider"]
    monkeypatch.setattr(session, "available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(session, "nvidia_driver_found", lambda: True)
    assert session.default_providers() == ["CPUExecutionProvider"]
    monkeypatch.setenv("WSLOC_PROVIDERS", "CUDAExecutionProvider, CPUExecutionProvider")
    assert session.default_providers() == CUDA_REQUEST


def test_preload_prints_nothing_and_names_what_failed(monkeypatch, capsys):
    def fake_preload():
        print("Failed to load /site/nvidia/cudnn/lib/libcudnn.so.9: cannot open shared object file")
        print("Failed to load libcudnn.so.9: libcudnn.so.9: cannot open shared object file")
        print("Please follow https://onnxruntime.ai/docs/install/#cuda-and-cudnn to install CUDA.")
        warnings.warn("Failed to register bundled CUDA plugin EP from /x.so: boom")

    monkeypatch.setattr(onnxruntime, "preload_dlls", fake_preload, raising=False)
    note = session.preload_cuda_libraries.__wrapped__()
    assert capsys.readouterr().out == ""
    assert note == "could not load libcudnn.so.9; Failed to register bundled CUDA plugin EP from /x.so: boom"
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda: None)
    assert session.preload_cuda_libraries.__wrapped__() is None
    monkeypatch.delattr(onnxruntime, "preload_dlls")  # onnxruntime before 1.21: nothing to call
    assert session.preload_cuda_libraries.__wrapped__() is None


def test_the_fallback_line_names_the_cause_and_the_fix(monkeypatch):
    installed = {"onnxruntime-gpu": "1.31.1"}

    def version(name):
        if name not in installed:
            raise session.metadata.PackageNotFoundError(name)
        return installed[name]

    fake_metadata = types.SimpleNamespace(PackageNotFoundError=session.metadata.PackageNotFoundError,
                                          version=version, distribution=version)
    monkeypatch.setattr(session, "metadata", fake_metadata)
    monkeypatch.setattr(session, "available_providers", lambda: ["CPUExecutionProvider"])
    assert "pip install --force-reinstall --no-deps onnxruntime-gpu==1.31.1" in session._why_cuda_is_missing(None)

    installed.clear()  # the plain CPU package
    assert "CPU build" in session._why_cuda_is_missing(None) and "wsloc[gpu]" in session._why_cuda_is_missing(None)

    monkeypatch.setattr(session, "available_providers", lambda: CUDA_REQUEST)
    monkeypatch.setattr(session, "nvidia_driver_found", lambda: False)
    assert session._why_cuda_is_missing(None) == "no NVIDIA driver (libcuda) on this machine"
    monkeypatch.setattr(session, "nvidia_driver_found", lambda: True)
    assert session._why_cuda_is_missing("could not load libcudnn.so.9").startswith("could not load libcudnn.so.9; ")
    assert "driver new enough" in session._why_cuda_is_missing(None)
