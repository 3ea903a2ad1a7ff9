"""Forensic evidences behind one interface; see :func:`create_evidence`."""

from .base import (
    Evidence,
    EvidenceInputs,
    EvidenceMap,
    create_evidence,
    describe_evidence,
    evidence_names,
    inputs_for_image,
    register_evidence,
    resize_map,
)

__all__ = [
    "Evidence",
    "EvidenceInputs",
    "EvidenceMap",
    "create_evidence",
    "describe_evidence",
    "evidence_names",
    "inputs_for_image",
    "register_evidence",
    "resize_map",
]

# Each module registers its evidence on import.
from . import activation, ela, jpeg, jpeg_grid  # noqa: E402,F401
from . import noise  # noqa: E402,F401
from . import copy_move  # noqa: E402,F401
from . import fingerprint  # noqa: E402,F401
