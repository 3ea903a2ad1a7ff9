"""The evidence interface and its registry.

An *evidence* is one forensic trace read from a photo: a map of where the trace says the
photo was edited, how far that trace can be trusted on this photo at all, and why, in one
line a reader understands. Each lives in its own module and registers itself here, as the
segmenters do; the pipeline fuses whichever are asked for (see ``wsloc_runtime.fusion``).

Every evidence is a pure function of :class:`EvidenceInputs` (numpy/OpenCV, no model files of
its own), testable on a synthetic image without any network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict

import numpy as np

from ..errors import UnknownNameError


@dataclass
class EvidenceInputs:
    """What an evidence may read about one photo.

    Attributes:
        image: the photo at the working size, ``(h, w, 3)`` ``uint8`` RGB. Every map is
            returned at this size.
        full: the photo at its own resolution, ``(H, W, 3)`` ``uint8`` RGB, for traces that
            downscaling destroys (JPEG grid, sensor noise). May be the same array as
            ``image``. Read it, never keep it: the pipeline frees it after the evidence step.
        jpeg: :class:`~wsloc_runtime.jpeg_traces.JpegTraces` of ``full`` when the pipeline has
            already computed them (the models' inputs need them), else ``None``.
        error_levels: :class:`~wsloc_runtime.sel.ErrorLevels` of ``full`` with its error-level map
            at the working size, when the pipeline computed it with the models' SEL (one JPEG
            re-encoding for both), else ``None``.
        activation: the models' fused Grad-CAM A at the working size, ``(h, w)`` ``float32``
            in [0, 1], or ``None`` when no model ran.
        probability: the models' P(manipulated), or ``None`` when no model ran.
    """

    image: np.ndarray
    full: np.ndarray | None = None
    jpeg: object | None = None
    error_levels: object | None = None
    activation: np.ndarray | None = None
    probability: float | None = None

    @property
    def working_size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def native(self) -> np.ndarray:
        """The highest-resolution copy at hand."""
        return self.full if self.full is not None else self.image


@dataclass
class EvidenceMap:
    """One evidence's reading of one photo.

    Attributes:
        name: registry name of the evidence.
        map: ``(h, w)`` ``float32`` in [0, 1] at the working size: how strongly this trace says
            each pixel was manipulated (0 = no sign of editing).
        reliability: in [0, 1]: whether this photo carries the trace at all (0 = this evidence
            cannot speak about this photo, e.g. a photo never JPEG-compressed for ``jpeg``).
        reason: one plain sentence for a reader, e.g. "no JPEG grid found: the photo was never
            JPEG-compressed or was resized".
        strength: in [0, 1]: image-level strength of the sign of editing this trace found
            (0 = nothing found), for the verdict. Never derived from file metadata or the
            compression settings themselves.
        details: small JSON-ready numbers that explain the reading (counts, scores).
        claim: in [0, 1] or None: how strongly the reading claims an edit *for the verdict* when that
            differs from ``strength`` (which also weighs the map in the fused prior). Copy-move sets it
            for two areas that match but not as only a copy does: they still show where to look,
            and claim little (:attr:`claim_strength`).
    """

    name: str
    map: np.ndarray
    reliability: float
    reason: str
    strength: float = 0.0
    details: dict = field(default_factory=dict)
    claim: float | None = None

    @property
    def claim_strength(self) -> float:
        """The image-level strength the verdict reads: :attr:`claim` when set, else :attr:`strength`."""
        return self.strength if self.claim is None else self.claim

    def __post_init__(self) -> None:
        values = np.asarray(self.map, np.float32)
        if values.ndim != 2:
            raise ValueError(f"evidence {self.name!r}: map must be (h, w), got shape {values.shape}")
        self.map = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
        self.reliability = float(np.clip(self.reliability, 0.0, 1.0))
        self.strength = float(np.clip(self.strength, 0.0, 1.0))
        if self.claim is not None:
            self.claim = float(np.clip(self.claim, 0.0, 1.0))

    def summary(self) -> dict:
        return {
            "reliability": round(self.reliability, 4),
            "strength": round(self.strength, 4),
            **({"claim": round(self.claim, 4)} if self.claim is not None else {}),
            "reason": self.reason,
            **({"details": self.details} if self.details else {}),
        }


class Evidence:
    """Base class: construct once, call :meth:`compute` for each photo.

    Attributes:
        name: registry name.
        title: a short heading for panels ("Copy-move", "Noise").
        needs_models: True when the evidence reads the models' outputs (``activation``).
        reads_jpeg_traces: True when it reads :attr:`EvidenceInputs.jpeg` (the pipeline then computes
            the traces once for it and the models).
        error_levels_quality: the JPEG quality of the error-level map it reads from
            :attr:`EvidenceInputs.error_levels` when present (the pipeline then computes that map with
            the models' SEL, from one re-encoding, when their quality is the same), else ``None``.
        runs_beside_models: True for a slow evidence that reads only the photo (``image`` and
            ``full``, nothing computed from them): the pipeline starts it on a background thread
            as soon as the photo is decoded, beside the traces and the models (a pure function, so
            the reading is the same).
    """

    name = "base"
    title = "Evidence"
    needs_models = False
    reads_jpeg_traces = False
    runs_beside_models = False
    error_levels_quality: int | None = None

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        raise NotImplementedError


EvidenceFactory = Callable[..., Evidence]
_REGISTRY: Dict[str, EvidenceFactory] = {}
_DESCRIPTIONS: Dict[str, str] = {}


def register_evidence(name: str, description: str = "") -> Callable[[EvidenceFactory], EvidenceFactory]:
    """Class decorator adding an evidence to the registry under ``name``."""

    def decorator(factory: EvidenceFactory) -> EvidenceFactory:
        _REGISTRY[name] = factory
        _DESCRIPTIONS[name] = description
        return factory

    return decorator


def evidence_names() -> list[str]:
    return sorted(_REGISTRY)


def describe_evidence() -> dict[str, str]:
    return {name: _DESCRIPTIONS[name] for name in evidence_names()}


def create_evidence(name: str, **kwargs) -> Evidence:
    """Build a registered evidence by name.

    Raises:
        UnknownNameError: the name is not registered; the message lists the valid names.
    """
    if name not in _REGISTRY:
        raise UnknownNameError(f"unknown evidence {name!r}; choose one of: {', '.join(evidence_names())}")
    return _REGISTRY[name](**kwargs)


def resize_map(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float map resized to ``(h, w)``: area-averaged when shrinking, bilinear when enlarging."""
    import cv2

    values = np.asarray(values, np.float32)
    if values.shape == tuple(size):
        return values
    shrinking = values.shape[0] * values.shape[1] > size[0] * size[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(values, (size[1], size[0]), interpolation=interpolation)


def inputs_for_image(rgb: np.ndarray, work_max_side: int = 1024) -> EvidenceInputs:
    """Evidence inputs of a photo without models: the working copy and the photo itself."""
    import cv2

    height, width = rgb.shape[:2]
    factor = min(1.0, work_max_side / max(height, width))
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    image = rgb if size == (height, width) else cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA)
    return EvidenceInputs(image=image, full=rgb)
