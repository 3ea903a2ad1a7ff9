"""What every export does to the ONNX file it writes: its config in ``metadata_props`` (the runtime
reads the contract from there), ``onnx.checker``, and a write that leaves the file whole or absent.

Each exporter still runs its own onnxruntime-versus-framework parity check after writing, since what
is compared (and at which tolerance) is the exporter's to state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping


def replace_metadata(model, entries: Mapping[str, str]) -> None:
    """Set ``model.metadata_props`` to exactly ``entries`` (key -> JSON or text), in their order."""
    del model.metadata_props[:]
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def checked_bytes(model, what: str, error: type[Exception] = ValueError) -> bytes:
    """``model`` serialized after ``onnx.checker.check_model`` passed on it; ``error(...)`` naming
    ``what`` when it does not (for models under protobuf's 2 GB, checked in memory)."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as problem:
        raise error(f"onnx.checker rejected {what}: {problem}") from problem
    return model.SerializeToString()


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a ``.part`` file renamed into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target
