"""``jpeg``: where blocks look singly compressed amid a doubly compressed photo.

A photo saved as JPEG twice keeps, in its 8x8 DCT coefficients, the trace of both
quantizations; a region pasted from elsewhere (resized, rotated or off the grid) lost its
first lattice and looks singly compressed (:mod:`wsloc_runtime.jpeg_traces`). The evidence
is one-sided: it marks where a region looks pasted, and says nothing where it does not.

Reliability comes from what the photo lets us read: no 8x8 grid (never JPEG-compressed, or
resized after its last save) -> 0; a grid but no double compression found -> near 0 (there
is no earlier compression to compare regions against); double compression at many
frequencies -> 1.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..jpeg_traces import (JpegTraces, block_map_to_size, coded_double_quantization, jpeg_traces,
                           pooled_double_quantization, rank_within_photo)
from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence

#: Frequencies with a detected double quantization at which the trace counts as fully readable.
FULL_RELIABILITY_FREQUENCIES = 8
#: The trace is fully readable when the host's median P(single | all its coefficients) is this
#: far below 0.5 (a photo saved once sits at 0.49-0.51 on casia1-dev's authentic photos; doubly
#: saved hosts at 0.01-0.43). Read from all coefficients, not the coded ones only: on photos resized
#: before their last save (NIST16's) the per-coded-coefficient ratio still leans to "double".
DOUBLE_HOST_MARGIN = 0.1
#: A block looks "saved once" when its ratio is this many robust spreads (IQR / 1.349) below the
#: host's: set on synthesized photos so that few doubly saved authentic photos show such an area.
SINGLE_SPREADS = 3.0
#: Area (share of the photo) of the largest "saved once" region at which the strength saturates.
STRENGTH_AREA = 0.03
#: Below this reliability the reason says the trace cannot be read.
UNREADABLE = 0.25


def evidence_from_traces(traces: JpegTraces, image_size: tuple[int, int], size: tuple[int, int]) -> EvidenceMap:
    """The ``jpeg`` evidence from traces of a photo of ``image_size``, mapped at ``size``."""
    if not traces.has_grid:
        return EvidenceMap(
            "jpeg", np.zeros(size, np.float32), 0.0,
            "no JPEG grid found: the photo was never JPEG-compressed, or was resized after its last JPEG save",
            details={"grid_score": round(traces.grid_score, 4)},
        )
    doubled = int(sum(1 for step in traces.first_steps if step))
    ratio = coded_double_quantization(traces)
    informative = np.isfinite(ratio)
    details = {"grid_score": round(traces.grid_score, 4), "double_frequencies": doubled,
               "grid_offset": list(traces.offset)}
    if doubled == 0 or not informative.any():
        return EvidenceMap(
            "jpeg", np.zeros(size, np.float32), 0.05,
            "the photo was JPEG-compressed once only (or resized between saves): there is no earlier "
            "compression to compare its regions against",
            details=details,
        )
    host = float(np.median(ratio[informative]))
    # The map ranks blocks within the photo: a pasted region is singly compressed *relative to its
    # host*; after a finer last save its absolute ratio rarely drops below 0. Blocks without
    # evidence sit at the host's level, neither pasted nor not.
    rank = rank_within_photo(-np.where(informative, ratio, host))
    values = block_map_to_size(rank, traces.offset, image_size, size)
    reliability, strength, reason, numbers = read_single_compression(ratio, host, doubled, double_host_term(traces))
    details.update(numbers)
    return EvidenceMap("jpeg", values, reliability, reason, strength, details)


def double_host_term(traces: JpegTraces) -> float:
    """In [0, 1]: how clearly the photo's typical block is doubly compressed, from its median
    P(single | all coefficients) = sigmoid(-pooled ratio): near 0.5 both fit alike, as in a photo
    saved once; clearly below it, the host was saved twice."""
    ratio = pooled_double_quantization(traces)
    informative = ratio != 0  # blocks without one informative frequency: no evidence
    if not informative.any():
        return 0.0
    single = 1.0 / (1.0 + np.exp(np.clip(ratio[informative], -30, 30)))
    return float(np.clip((0.5 - float(np.median(single))) / DOUBLE_HOST_MARGIN, 0.0, 1.0))


def read_single_compression(ratio: np.ndarray, host: float, doubled: int,
                            double_host: float) -> tuple[float, float, str, dict]:
    """``(reliability, strength, reason, details)`` of a per-coded-coefficient ratio map (NaN where a
    block has no evidence; see :func:`coded_double_quantization`) whose informative blocks' median is
    ``host``, for a photo with ``doubled`` doubly quantized frequencies whose host reads
    ``double_host`` (:func:`double_host_term`).

    The trace is readable where the photo's host is clearly doubly compressed (a photo saved once
    has nothing to compare against); the sign of editing is a compact minority of the photo that
    looks saved once relative to the host, as a pasted region would.
    """
    informative = np.isfinite(ratio)
    share_informative = float(informative.mean())
    reliability = min(1.0, doubled / FULL_RELIABILITY_FREQUENCIES) * min(1.0, share_informative / 0.5) * double_host
    if informative.any():
        q25, q75 = np.percentile(ratio[informative], [25, 75])
        spread = max(float(q75 - q25) / 1.349, 1e-3)
    else:
        spread = 1.0
    largest = largest_area_share(informative & (ratio <= host - SINGLE_SPREADS * spread))
    strength = minority_area_strength(largest, STRENGTH_AREA) * reliability
    numbers = {"host_ratio_per_coefficient": round(host, 4), "largest_single_area": round(largest, 4)}
    if reliability < UNREADABLE:
        reason = ("the photo looks JPEG-compressed once only (or resized between saves): there is no earlier "
                  "compression to compare its regions against")
    elif largest >= 0.005:
        reason = (f"saved as JPEG at least twice; an area of {largest:.0%} of the photo looks saved only once, "
                  "as a region pasted from elsewhere would")
    else:
        reason = "saved as JPEG at least twice, evenly across the photo: no region looks pasted"
    return reliability, strength, reason, numbers


def largest_area_share(flagged: np.ndarray) -> float:
    """The largest 8-connected area of ``flagged`` (``bool`` block map), as a share of the map."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(flagged.astype(np.uint8), connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / flagged.size if count > 1 else 0.0


def minority_area_strength(largest: float, saturating_area: float) -> float:
    """In [0, 1]: an odd area's share of the photo read as a sign of editing, full from
    ``saturating_area`` on. An edited region is a minority of the photo: an odd area over half of
    it is the host, so the strength falls back to 0 between a quarter and a half."""
    return min(1.0, largest / saturating_area) * float(np.clip((0.5 - largest) / 0.25, 0.0, 1.0))


def jpeg_evidence(rgb: np.ndarray, size: tuple[int, int] | None = None) -> EvidenceMap:
    """The ``jpeg`` evidence of ``rgb`` (``HxWx3`` ``uint8`` at its own resolution) at ``size``."""
    return evidence_from_traces(jpeg_traces(rgb), rgb.shape[:2], size or rgb.shape[:2])


class JpegTracesEvidence(Evidence):
    """An evidence read from the photo's :class:`JpegTraces` (the pipeline's, when it computed them
    for the models, so that the block DCT runs once per photo)."""

    reads_jpeg_traces = True

    @staticmethod
    def from_traces(traces: JpegTraces, image_size: tuple[int, int], size: tuple[int, int]) -> EvidenceMap:
        raise NotImplementedError

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        native = inputs.native
        traces = inputs.jpeg if inputs.jpeg is not None else jpeg_traces(native)
        return self.from_traces(traces, native.shape[:2], inputs.working_size)


@register_evidence("jpeg", "double-quantization evidence on the 8x8 JPEG grid: regions that look singly compressed")
class JpegEvidence(JpegTracesEvidence):
    name = "jpeg"
    title = "JPEG history"
    from_traces = staticmethod(evidence_from_traces)
