"""The wheel as a new user gets it: built from the sources, installed into a fresh virtual
environment (no TensorFlow, no torch, the CPU onnxruntime), used from a folder outside the
checkout with the default models it carries. Also: the requirement files agree with pyproject.toml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
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
    _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(wheel)], cwd=root, timeout=1200)
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


# --------------------------------------------------------------------------- requirement files


def _requirements(path: Path) -> list[str]:
    """Requirement lines of a pip requirements file, without comments and -r includes."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_requirement_files_agree_with_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    base = project["dependencies"]
    # The Space's file is the package with the GPU build instead of the CPU one, plus the app.
    space = [r for r in base if _name(r) != "onnxruntime"] + extras["gpu"] + extras["app"]
    assert sorted(_requirements(REPO_ROOT / "requirements.txt")) == sorted(space)
    # Development adds the export tools at the same pins.
    dev = set(_requirements(REPO_ROOT / "requirements-dev.txt"))
    assert set(extras["export"]) <= dev, set(extras["export"]) - dev
    # Never the CPU build beside the GPU build: both install the `onnxruntime` module.
    assert "onnxruntime" not in {_name(r) for r in _requirements(REPO_ROOT / "requirements.txt") + list(dev)}
