"""The locked dependency sets (requirements/README.md): every lock pins exactly, satisfies the ranges
it was compiled from, keeps one onnxruntime build, and .ci/run installs its lock, and only it, into a
fresh virtual environment; requirements/check_lock.py fails when the environment holds a package
outside the lock."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

CHECK_LOCK = REPO_ROOT / "requirements" / "check_lock.py"
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _lock(path: Path) -> dict[str, str]:
    sys.path.insert(0, str(CHECK_LOCK.parent))
    try:
        import check_lock
    finally:
        sys.path.remove(str(CHECK_LOCK.parent))
    return check_lock.read_lock(path)


def _inputs(path: Path) -> list[Requirement]:
    """Requirement lines of a pip-compile input file."""
    lines = (raw.split("#", 1)[0].strip() for raw in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


#: Each lock, and the requirements it was compiled from (requirements/refresh.sh).
LOCKS = {
    "requirements/runtime.txt": [Requirement(r) for r in PROJECT["dependencies"]],
    "requirements/app.txt": [Requirement(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["app"]],
    "requirements.txt": _inputs(REPO_ROOT / "requirements" / "space.in"),
    "requirements-dev.txt": [Requirement(r) for r in PROJECT["dependencies"]
                             + PROJECT["optional-dependencies"]["app"] + PROJECT["optional-dependencies"]["export"]]
                            + _inputs(REPO_ROOT / "requirements" / "dev.in"),
}


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_each_lock_pins_every_package_and_satisfies_its_inputs(lock):
    pins = _lock(REPO_ROOT / lock)  # raises on anything but name==version, or a package pinned twice
    for requirement in LOCKS[lock]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not pin {name}, which its inputs ask for"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"{lock} pins {name}=={pins[name]}, outside {requirement} (re-run bash requirements/refresh.sh)"
    header = (REPO_ROOT / lock).read_text().split("\n", 8)
    assert any("bash requirements/refresh.sh" in line for line in header), f"{lock} should say how it is made"


def test_one_onnxruntime_build_in_each_lock():
    """The CPU and GPU builds install the same `onnxruntime` module: never both in one environment."""
    for lock in LOCKS:
        builds = sorted(n for n in _lock(REPO_ROOT / lock) if n.startswith("onnxruntime"))
        assert builds == (["onnxruntime-gpu"] if lock == "requirements.txt" else ["onnxruntime"]), (lock, builds)
    space = _lock(REPO_ROOT / "requirements.txt")
    assert not {"tensorflow", "torch"} & set(space), "the Space runs the runtime alone"


def test_space_inputs_are_pyproject_with_the_gpu_build():
    """requirements/space.in = pyproject's dependencies with the GPU build for the CPU one, + [gpu] + [app]."""
    base = [r for r in PROJECT["dependencies"] if canonicalize_name(Requirement(r).name) != "onnxruntime"]
    extras = PROJECT["optional-dependencies"]
    wanted = sorted(str(Requirement(r)) for r in base + extras["gpu"] + extras["app"])
    assert sorted(str(r) for r in _inputs(REPO_ROOT / "requirements" / "space.in")) == wanted


def test_pyproject_keeps_ranges_and_the_locks_pin():
    """A library must not pin exactly (its users' other packages would have no room); the export
    toolchain, whose converters are version-sensitive, is the one pinned group."""
    for requirement in map(Requirement, PROJECT["dependencies"] + PROJECT["optional-dependencies"]["app"]
                           + PROJECT["optional-dependencies"]["gpu"]):
        assert not any(s.operator == "==" for s in requirement.specifier), f"pyproject pins {requirement}"


def test_ci_builds_a_fresh_environment_from_the_lock_alone():
    text = (REPO_ROOT / ".ci" / "run").read_text()
    remove, create = text.index('rm -rf "$venv"'), text.index('-m venv "$venv"')
    install = text.index("pip install")
    check = text.index("requirements/check_lock.py requirements-dev.txt")
    tests = text.index("tests/run_all.sh")
    assert remove < create < install < check < tests
    install_line = text[install: text.index("\n", install)]
    assert "--no-deps" in install_line and "-r requirements-dev.txt" in install_line, install_line
    # Nothing else gets installed: one command line runs pip install (the others are messages).
    commands = [line for line in text.splitlines() if line.strip().startswith("python -m pip install")]
    assert len(commands) == 1, commands
    assert 'export WSLOC_CI_VENV="$venv"' in text  # test_the_environment_running_the_tests_is_the_dev_lock


def _fake_distribution(folder: Path, name: str, version: str) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _check(lock: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.run([sys.executable, str(CHECK_LOCK), str(lock)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_lock_fails_on_a_package_outside_the_lock(tmp_path):
    """Whatever this environment is, a lock of exactly it passes, and one more package, one version
    off or one missing fails, each named."""
    # The environment as a fresh interpreter sees it (as .ci/run's check does): in this test process,
    # an earlier test's import may have added a folder to sys.path (Ray adds its vendored packages).
    listing = subprocess.run([sys.executable, "-c", "import json, check_lock; print(json.dumps("
                              "{n: v for n, v in check_lock.installed().items() if n not in check_lock.INSTALLER}))"],
                             cwd=CHECK_LOCK.parent, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                             capture_output=True, text=True, timeout=120)
    here = json.loads(listing.stdout)
    lock = tmp_path / "lock.txt"
    lock.write_text("".join(f"{n}=={v}\n" for n, v in sorted(here.items())))
    assert _check(lock).returncode == 0

    _fake_distribution(tmp_path / "extra", "left-behind-package", "1.0")
    outside = _check(lock, tmp_path / "extra")
    assert outside.returncode == 1 and "installed but not in the lock: left-behind-package 1.0" in outside.stderr

    name, version = next(iter(sorted(here.items())))
    lock.write_text("".join(f"{n}=={v if n != name else version + '.post99'}\n" for n, v in sorted(here.items()))
                    + "never-installed==2.0\n")
    wrong = _check(lock)
    assert wrong.returncode == 1
    assert f"{name}: installed {version}, locked {version}.post99" in wrong.stderr
    assert "locked but not installed: never-installed==2.0" in wrong.stderr


def test_check_lock_refuses_a_range(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("numpy>=1.26\n")
    refused = _check(lock)
    assert refused.returncode != 0 and "not an exact pin" in refused.stderr


def _in_ci_environment() -> bool:
    venv = os.environ.get("WSLOC_CI_VENV")
    return bool(venv) and Path(sys.prefix).resolve() == (REPO_ROOT / venv).resolve()


@pytest.mark.skipif(not _in_ci_environment(), reason="runs inside .ci/run's fresh environment only")
def test_the_environment_running_the_tests_is_the_dev_lock():
    checked = _check(REPO_ROOT / "requirements-dev.txt")
    assert checked.returncode == 0, checked.stderr
