"""Fusing the evidences into the one prior that the paper's region step and Bayes update read.

The paper makes a coarse activation precise by Bayes' rule with a region as evidence. Here the
prior of that step is every evidence at once: each map is a one-sided detector ("this pixel
looks edited in my trace", 0 = "I see nothing", which is no sign of authenticity, since a
splice leaves no copy-move trace and a copy-move no JPEG trace), weighted by the evidence's
reliability on this photo. Independent one-sided detectors combine by noisy-OR: the pixel is
untouched only if every trace that can speak says so,

    prior(x) = 1 - prod_i (1 - w_i * r_i * e_i(x)),

with ``r_i`` the evidence's reliability, ``e_i`` its map and ``w_i`` a global gain (how far a
fully reliable map of that kind is trusted; chosen on the development sets, ``docs/fusion.md``).
A vote lets the coarse activation outweigh a trace that is specific where it speaks: a copy
whose matches agree on one geometric transform, a compact area saved once inside a doubly
compressed photo. So where such a trace is sure of an edit, it takes the prior over,

    prior <- (1 - c) prior + c e_k,   c = min(1, g r_k s_k),

with ``k`` the surest of the specific traces (``override_by``), ``s_k`` its image-level strength
and ``g`` the ``override_gain``. The region choice and the posterior A* then proceed as in the
paper with this prior.

The image-level P(manipulated) combines the same way: the models' probability and each
evidence's strength (never the file's compression settings or metadata).

``fusion="paper"`` skips all of this: A alone, the paper's pipeline unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import UnknownNameError
from .evidence import EvidenceMap

FUSION_MODES = {
    "evidence": "every evidence, weighted by its reliability, fused into the prior of the Bayes step (default)",
    "paper": "the paper's pipeline: the detectors' activation A alone",
}
DEFAULT_FUSION = "evidence"
#: Evidences computed in ``evidence`` mode, in panel order.
DEFAULT_EVIDENCE = ("activation", "jpeg", "copy_move", "noise", "ela")


def check_fusion(mode: str) -> str:
    if mode not in FUSION_MODES:
        raise UnknownNameError(f"unknown fusion {mode!r}; choose one of: {', '.join(FUSION_MODES)}")
    return mode


@dataclass(frozen=True)
class FusionSettings:
    """The fusion's global constants (one setting for every photo; ``docs/fusion.md``).

    Attributes:
        map_gain: ``w_i`` per evidence for the prior (missing = 0: shown, not fused).
        strength_gain: per evidence, how far a full-strength, fully reliable reading raises
            P(manipulated) in the verdict (missing = 0).
        model_gain: weight of the models' probability in the verdict's noisy-OR.
        yield_to_specific: how far the learned activation steps back when a specific trace
            found a clear sign of editing: its weight is multiplied by
            ``1 - yield_to_specific * max_i(r_i * strength_i)`` over the other evidences (the
            detectors' attention is coarse; a verified copy or a pasted JPEG region is not).
        override_by: the specific traces of which the surest replaces the vote by its own map,
            in proportion ``min(1, override_gain * r * strength)``.
        override_gain: how soon a specific trace takes over (2: at half strength, fully).
    """

    map_gain: Mapping[str, float] = field(default_factory=lambda: {
        "activation": 0.6, "jpeg": 1.0, "copy_move": 1.0, "noise": 0.5, "ela": 0.0})
    strength_gain: Mapping[str, float] = field(default_factory=lambda: {
        "jpeg": 0.5, "copy_move": 0.95, "noise": 0.0})
    model_gain: float = 1.0
    yield_to_specific: float = 0.8
    #: Specific traces that take the prior over where they are sure (``c = min(1, gain r s)``).
    override_by: tuple[str, ...] = ("jpeg", "copy_move")
    override_gain: float = 2.0
    #: The uncertain band of the fused probability (``export.verdict_band`` on the fused scores).
    verdict_band: tuple[float, float] = (0.2719, 0.8287)


DEFAULT_SETTINGS = FusionSettings()


@dataclass
class FusedEvidence:
    """The fusion's output for one photo.

    Attributes:
        prior: ``(h, w)`` ``float32`` in [0, 1], the prior of the Bayes step.
        weights: each evidence's weight in the prior: ``w_i * r_i`` in the vote, scaled by what
            an overriding trace left of it, plus that trace's own take-over (0 for those shown
            but not fused).
        probability: P(manipulated) from the models and the evidences' strengths.
    """

    prior: np.ndarray
    weights: dict[str, float]
    probability: float

    def shares(self, readings: Mapping[str, EvidenceMap], where: np.ndarray | None = None) -> dict[str, float]:
        """Each evidence's share of the fused prior's mass inside ``where`` (default: everywhere),
        summing to 1 over the evidences that spoke (all 0 when none did)."""
        masses = {}
        for name, reading in readings.items():
            weighted = self.weights.get(name, 0.0) * reading.map
            masses[name] = float(weighted[where].sum() if where is not None and where.any() else weighted.sum())
        total = sum(masses.values())
        return {name: (mass / total if total > 0 else 0.0) for name, mass in masses.items()}


def fuse(readings: Sequence[EvidenceMap], model_probability: float | None,
         settings: FusionSettings = DEFAULT_SETTINGS) -> FusedEvidence:
    """Noisy-OR of the reliability-weighted evidence maps, and the verdict's probability.

    Args:
        readings: evidence maps of one photo, all of one ``(h, w)`` shape.
        model_probability: the models' P(manipulated), or ``None`` without models.
        settings: the global constants.

    Returns:
        :class:`FusedEvidence`.
    """
    if not readings:
        raise ValueError("fusion needs at least one evidence")
    shape = readings[0].map.shape
    untouched = np.ones(shape, np.float64)
    weights: dict[str, float] = {}
    specific = max([r.reliability * r.strength for r in readings if r.name != "activation"], default=0.0)
    for reading in readings:
        if reading.map.shape != shape:
            raise ValueError(f"evidence {reading.name!r} is {reading.map.shape}, expected {shape}")
        weight = float(np.clip(settings.map_gain.get(reading.name, 0.0) * reading.reliability, 0.0, 1.0))
        if reading.name == "activation":
            weight *= 1.0 - float(np.clip(settings.yield_to_specific * specific, 0.0, 1.0))
        weights[reading.name] = weight
        if weight > 0:
            untouched *= 1.0 - weight * reading.map
    authentic = 1.0
    if model_probability is not None:
        authentic *= 1.0 - float(np.clip(settings.model_gain * model_probability, 0.0, 1.0))
    for reading in readings:
        gain = settings.strength_gain.get(reading.name, 0.0)
        authentic *= 1.0 - float(np.clip(gain * reading.reliability * reading.strength, 0.0, 1.0))
    prior = 1.0 - untouched
    overriding = [r for r in readings if r.name in settings.override_by]
    if overriding:
        surest = max(overriding, key=lambda r: r.reliability * r.strength)
        take_over = float(np.clip(settings.override_gain * surest.reliability * surest.strength, 0.0, 1.0))
        if take_over > 0:
            prior = (1.0 - take_over) * prior + take_over * surest.map
            weights = {name: weight * (1.0 - take_over) for name, weight in weights.items()}
            weights[surest.name] += take_over
    return FusedEvidence(prior.astype(np.float32), weights, float(1.0 - authentic))
