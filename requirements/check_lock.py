"""Is the running Python's environment exactly a lock file? Every installed distribution must be in
the lock at the locked version, and every locked package installed; pip (the installer the virtual
environment came with) is the one exception.

    python requirements/check_lock.py requirements-dev.txt

.ci/run calls this right after installing, so a test run cannot lean on a package the lock does not
name (one left on the machine, or one pulled in past the lock). Exit status 1, with the differences,
when the environment and the lock disagree. Standard library only: it runs before anything else
is known to be installed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
from pathlib import Path

#: Installed by ``python -m venv`` itself, not by the lock.
INSTALLER = {"pip"}


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``{name: version}`` of a lock's ``name==version`` lines (pip-compile's output).

    Raises:
        ValueError: a requirement line that is not an exact ``==`` pin, or a package pinned twice.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        found = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)(\s*;.*)?", line)
        if not found:
            raise ValueError(f"{path}:{number}: not an exact pin (name==version): {line!r}")
        name = canonical(found.group(1))
        if name in pins:
            raise ValueError(f"{path}:{number}: {name} is pinned twice")
        pins[name] = found.group(3)
    return pins


def installed() -> dict[str, str]:
    """``{name: version}`` of every distribution importable from this interpreter's path."""
    found: dict[str, str] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found.setdefault(canonical(name), distribution.version)
    return found


def differences(lock: dict[str, str], environment: dict[str, str]) -> list[str]:
    """Human-readable lines, one per disagreement; empty when the environment is the lock."""
    lines = []
    for name in sorted(set(lock) | set(environment)):
        if name in INSTALLER and name not in lock:
            continue
        if name not in lock:
            lines.append(f"installed but not in the lock: {name} {environment[name]}")
        elif name not in environment:
            lines.append(f"locked but not installed: {name}=={lock[name]}")
        elif environment[name] != lock[name]:
            lines.append(f"{name}: installed {environment[name]}, locked {lock[name]}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    lock_path = Path(argv[0])
    found = differences(read_lock(lock_path), installed())
    if found:
        print(f"error: this environment ({sys.prefix}) is not {lock_path}:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"   the environment is exactly {lock_path} ({len(read_lock(lock_path))} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
