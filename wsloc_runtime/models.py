"""Finding model files: one place, one order, one error.

A model file is looked for, in order:

1. an explicit path (a file, or a directory holding the file);
2. the directory in ``$WSLOC_MODELS``;
3. the bundled default models: ``wsloc_runtime/bundled_models/`` in an installed wheel,
   ``assets/models/`` in a checkout (the same files: pyproject.toml maps one onto the other);
4. a Hugging Face Hub repository (``$WSLOC_HF_REPO`` or ``hub_repo``, pinned by
   ``$WSLOC_HF_REVISION`` or ``revision``), through ``huggingface_hub.hf_hub_download``,
   which honours ``HF_HUB_OFFLINE=1``.

Where the expected SHA-256 of a file is known (``SHA256SUMS`` beside the bundled
models, in ``sha256sum`` format), a mismatch is an error, not a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from .errors import ModelNotFoundError

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent


def _bundled_models_dir() -> Path:
    installed = _PACKAGE_DIR / "bundled_models"
    # A checkout (or an editable install, which imports from it) has no bundled_models/ folder:
    # pyproject.toml copies assets/models/ there only when it builds a wheel.
    return installed if installed.is_dir() else _PACKAGE_DIR.parent / "assets" / "models"


BUNDLED_MODELS = _bundled_models_dir()
CHECKSUM_FILE = "SHA256SUMS"
DEFAULT_HF_REVISION = "main"


def _known_checksums(directory: Path) -> dict[str, str]:
    table = directory / CHECKSUM_FILE
    if not table.is_file():
        return {}
    sums: dict[str, str] = {}
    for line in table.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str | None) -> Path:
    if expected and sha256_of(path) != expected.lower():
        raise ModelNotFoundError(f"{path}: SHA-256 does not match the expected {expected[:12]}...; re-download it")
    return path


def candidate_locations(filename: str, explicit: str | os.PathLike | None = None) -> list[Path]:
    """The local paths :func:`resolve_model` tries, in order."""
    places: list[Path] = []
    if explicit:
        explicit_path = Path(explicit)
        places.append(explicit_path / filename if explicit_path.is_dir() else explicit_path)
    env_dir = os.environ.get("WSLOC_MODELS", "").strip()
    if env_dir:
        places.append(Path(env_dir) / filename)
    places.append(BUNDLED_MODELS / filename)
    return places


def resolve_model(
    filename: str,
    explicit: str | os.PathLike | None = None,
    hub_repo: str | None = None,
    revision: str | None = None,
    export_hint: str = "",
    sha256: str | None = None,
) -> Path:
    """Return the path of ``filename`` from the first place that has it.

    Raises:
        ModelNotFoundError: listing every place looked in and how to make the file.
    """
    places = candidate_locations(filename, explicit)
    hint = f" Make it with: {export_hint}" if export_hint else ""
    for place in places:
        if place.is_file():
            expected = sha256 or _known_checksums(place.parent).get(place.name)
            return _verify(place, expected)
        if explicit and place == places[0]:
            # An explicit path that does not exist is a mistake, not a reason to look elsewhere.
            raise ModelNotFoundError(f"model {filename!r} not found at the given path {place}.{hint}")

    repo = hub_repo or os.environ.get("WSLOC_HF_REPO", "").strip() or None
    hub_note = "no Hugging Face repository configured (set WSLOC_HF_REPO)"
    if repo:
        rev = revision or os.environ.get("WSLOC_HF_REVISION", "").strip() or DEFAULT_HF_REVISION
        try:
            from huggingface_hub import hf_hub_download

            downloaded = Path(hf_hub_download(repo_id=repo, filename=filename, revision=rev))
            return _verify(downloaded, sha256)
        except ImportError:
            hub_note = f"huggingface_hub is not installed, so {repo} was not tried"
        except Exception as error:  # offline, missing file, network: all mean "not here"
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            hub_note = f"Hugging Face repo {repo}@{rev}: {first_line}"
    looked = "; ".join(str(p) for p in places)
    raise ModelNotFoundError(f"model {filename!r} not found. Looked in: {looked}; {hub_note}.{hint}")
