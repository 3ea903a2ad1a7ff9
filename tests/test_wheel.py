"""The wheel as a new user gets it: built from the sources, installed into a fresh virtual
environment (no TensorFlow, no torch, the CPU onnxruntime), used from a folder outside the
checkout with the default models it carries; and .ci/run's onnxruntime check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# What the wheel is built from; a file the build needs that is missing here fails the build.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "wsloc_runtime", "assets/models")
EXAMPLE = REPO_ROOT / "assets" / "examples" / "spliced_boat.jpg"


def _clean_env() -> dict[str, str]:
    """The user's environment: nothing pointing back into the checkout, no model overrides, no Hub."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WSLOC_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(command: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, f"{' '.join(map(str, command))} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """Build the wheel from a copy of its sources and install it into a fresh venv."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for relative in WHEEL_SOURCES:
        origin = REPO_ROOT / relative
        if origin.is_dir():
            shutil.copytree(origin, source / relative, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / relative)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(dist),
          str(source)], cwd=root, timeout=600)
    (wheel,) = dist.glob("wsloc-*.whl")

    environment = root / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # With the runtime's lock as constraints, as the README installs it: the versions CI tested.
    _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
          "-c", str(REPO_ROOT / "requirements" / "runtime.txt"), str(wheel)], cwd=root, timeout=1200)
    # A folder that has nothing to do with the checkout, holding the user's photo.
    workdir = root / "elsewhere"
    workdir.mkdir()
    shutil.copy2(EXAMPLE, workdir / EXAMPLE.name)
    return {"python": python, "wsloc": environment / "bin" / "wsloc", "workdir": workdir, "wheel": wheel}


def test_wheel_carries_the_bundled_models_it_was_built_from(installed):
    import zipfile

    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
        expected = {}
        for line in (REPO_ROOT / "assets" / "models" / "SHA256SUMS").read_text().split("\n"):
            if line.strip():
                digest, name = line.split()
                expected[name.lstrip("*")] = digest
        assert expected, "assets/models/SHA256SUMS lists no models"
        for name, digest in expected.items():
            member = f"wsloc_runtime/bundled_models/{name}"
            assert member in names, f"{member} missing from the wheel"
            assert hashlib.sha256(wheel.read(member)).hexdigest() == digest
        assert "wsloc_runtime/bundled_models/SHA256SUMS" in names


def test_installed_runtime_has_no_tensorflow_or_torch_and_uses_the_bundled_models(installed):
    code = (
        "import importlib.util, json, sys\n"
        "from wsloc_runtime.pipeline import Localizer\n"
        "loc = Localizer()\n"
        "print(json.dumps({'frameworks': [m for m in ('tensorflow', 'torch', 'keras', 'onnxruntime_gpu')"
        " if importlib.util.find_spec(m)], 'paths': [str(m.path) for m in loc.models],"
        " 'providers': loc.providers, 'loaded': [m for m in ('tensorflow', 'torch') if m in sys.modules]}))\n"
    )
    completed = _run([str(installed["python"]), "-c", code], cwd=installed["workdir"], timeout=300)
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["frameworks"] == [] and report["loaded"] == []
    site_packages = installed["python"].parent.parent / "lib"
    assert len(report["paths"]) == 3
    for path in report["paths"]:
        assert Path(path).is_relative_to(site_packages) and "bundled_models" in path, path
    assert all(p == ["CPUExecutionProvider"] for p in report["providers"].values()), report["providers"]


def test_wsloc_localize_runs_outside_the_checkout_without_a_cuda_warning(installed):
    workdir = installed["workdir"]
    completed = _run([str(installed["wsloc"]), "localize", EXAMPLE.name, "--out", "out"], cwd=workdir, timeout=300)
    assert "CUDA" not in completed.stderr + completed.stdout, completed.stderr
    result = json.loads((workdir / "out" / f"{EXAMPLE.stem}.json").read_text())
    assert 0.0 <= result["probability"] <= 1.0
    assert set(result["providers"]) == {"wcbnet2", "wcbnet3", "wcbnet4"}
    for suffix in ("heatmap", "mask", "overlay"):
        assert (workdir / "out" / f"{EXAMPLE.stem}_{suffix}.png").stat().st_size > 0


# --------------------------------------------------------------------------- .ci/run's onnxruntime check
# (the lock files themselves: tests/test_locks.py)


def _ci_onnxruntime_check() -> str:
    """The Python that .ci/run runs after pip to list the onnxruntime distributions."""
    text = (REPO_ROOT / ".ci" / "run").read_text()
    start = text.index("python - <<'PY' || exit 1\n")
    assert start > text.index("pip install"), ".ci/run checks onnxruntime before installing"
    body = text[start:].split("\n", 1)[1]
    return body[: body.index("\nPY\n")]


def _fake_distribution(folder: Path, name: str, version: str) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_ci_run_lists_onnxruntime_and_fails_on_two(tmp_path):
    check = _ci_onnxruntime_check()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    alone = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    names = [line.split()[0] for line in alone.stdout.splitlines()]
    assert all(name.startswith("onnxruntime") for name in names), alone.stdout
    assert alone.returncode == (0 if len(names) == 1 else 1), (alone.stdout, alone.stderr)

    _fake_distribution(tmp_path / "a", "onnxruntime", "1.32.0")
    _fake_distribution(tmp_path / "b", "onnxruntime-gpu", "1.31.1")
    two = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
                         env={**env, "PYTHONPATH": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"})
    assert two.returncode == 1
    assert "onnxruntime-gpu 1.31.1" in two.stdout
    assert "2 onnxruntime distributions installed" in two.stderr
    assert "pip uninstall -y onnxruntime-gpu" in two.stderr
