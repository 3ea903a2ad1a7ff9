"""Model resolution order, checksums, the Hub path offline, and provider reporting."""

import subprocess
import sys
import textwrap

import pytest

import wsloc_runtime.models as models
from wsloc_runtime import ModelNotFoundError
from wsloc_runtime.models import resolve_model, sha256_of
from wsloc_runtime.session import OnnxModel, default_providers
from tests.conftest import REPO_ROOT
from tests.contract_models import build_contract_model


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "BUNDLED_MODELS", tmp_path / "bundled")
    monkeypatch.delenv("WSLOC_MODELS", raising=False)
    monkeypatch.delenv("WSLOC_HF_REPO", raising=False)
    return tmp_path


def test_order_is_explicit_then_env_then_bundled(isolated, monkeypatch):
    for place in ("explicit", "env", "bundled"):
        (isolated / place).mkdir()
        (isolated / place / "m.onnx").write_bytes(place.encode())
    monkeypatch.setenv("WSLOC_MODELS", str(isolated / "env"))
    assert resolve_model("m.onnx", isolated / "explicit") == isolated / "explicit" / "m.onnx"
    assert resolve_model("m.onnx") == isolated / "env" / "m.onnx"
    (isolated / "env" / "m.onnx").unlink()
    assert resolve_model("m.onnx") == isolated / "bundled" / "m.onnx"


def test_checksum_mismatch_is_an_error(isolated):
    (isolated / "bundled").mkdir()
    target = isolated / "bundled" / "m.onnx"
    target.write_bytes(b"payload")
    (isolated / "bundled" / "SHA256SUMS").write_text(f"{'0' * 64}  m.onnx\n")
    with pytest.raises(ModelNotFoundError, match="SHA-256"):
        resolve_model("m.onnx")
    (isolated / "bundled" / "SHA256SUMS").write_text(f"{sha256_of(target)}  m.onnx\n")
    assert resolve_model("m.onnx") == target


def test_hub_offline_without_cache_gives_one_clear_error(tmp_path):
    code = f"""
        import os
        os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE={str(tmp_path / 'cache')!r},
                          WSLOC_HF_REPO="someone/wsloc-models", WSLOC_MODELS={str(tmp_path / 'none')!r})
        import wsloc_runtime.models as m
        from pathlib import Path
        m.BUNDLED_MODELS = Path({str(tmp_path / 'bundled')!r})
        try:
            m.resolve_model("wcbnet2.onnx", export_hint="python -m export.convert")
        except m.ModelNotFoundError as error:
            print("ERR", error)
        """
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                               cwd=REPO_ROOT, timeout=120)
    assert "ERR model 'wcbnet2.onnx' not found" in completed.stdout, completed.stderr
    assert "someone/wsloc-models@main" in completed.stdout and "export.convert" in completed.stdout


def test_hub_cache_is_used_offline(tmp_path):
    """A file already in the Hugging Face cache resolves with HF_HUB_OFFLINE=1 and no network."""
    commit = "a" * 40
    repo_dir = tmp_path / "cache" / "models--someone--wsloc-models"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "wcbnet2.onnx").write_bytes(b"cached")
    code = f"""
        import os
        os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE={str(tmp_path / 'cache')!r},
                          WSLOC_HF_REPO="someone/wsloc-models", WSLOC_MODELS={str(tmp_path / 'none')!r})
        import wsloc_runtime.models as m
        from pathlib import Path
        m.BUNDLED_MODELS = Path({str(tmp_path / 'bundled')!r})
        print("PATH", m.resolve_model("wcbnet2.onnx"))
        """
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                               cwd=REPO_ROOT, timeout=120)
    assert f"PATH {snapshot / 'wcbnet2.onnx'}" in completed.stdout, completed.stderr[-1500:]


def test_providers_reported_are_the_ones_obtained(tmp_path, monkeypatch):
    path = build_contract_model(tmp_path / "wcbnet2.onnx")
    forced = OnnxModel(path, providers=["CPUExecutionProvider"])
    assert forced.providers == ["CPUExecutionProvider"]
    automatic = OnnxModel(path)
    assert automatic.providers[-1] == "CPUExecutionProvider"
    assert set(automatic.providers) <= set(automatic.requested_providers)
    monkeypatch.setenv("WSLOC_PROVIDERS", "CPUExecutionProvider")
    assert default_providers() == ["CPUExecutionProvider"]


def test_missing_file_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError):
        OnnxModel(tmp_path / "absent.onnx")
