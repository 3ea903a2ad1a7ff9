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

import numpy as np

from ..jpeg_traces import (JpegTraces, block_map_to_size, jpeg_traces, pooled_double_quantization,
                           single_compression_rank)
from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence

#: The map is P(single | coefficients) = sigmoid(-ratio / LLR_TEMPERATURE) of the pooled
#: double-vs-single log-likelihood ratio: 0.5 where both fit equally (the Bayes decision at even
#: odds), the temperature damping the ratio's over-confidence (coefficients are not independent).
LLR_TEMPERATURE = 1.0
#: Frequencies with a detected double quantization at which the trace counts as fully readable.
FULL_RELIABILITY_FREQUENCIES = 8
#: Area (share of the photo) of the largest "saved once" region at which the strength saturates.
STRENGTH_AREA = 0.03
#: The trace is fully readable when the host's median P(single) is this far below 0.5 (a photo
#: saved once sits at 0.49-0.51 on casia1-dev's authentic photos; doubly saved hosts at 0.01-0.43).
DOUBLE_HOST_MARGIN = 0.1
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
    ratio = pooled_double_quantization(traces)
    # Blocks without one informative frequency have a ratio of exactly 0: no evidence, not even odds.
    single = np.where(ratio != 0, 1.0 / (1.0 + np.exp(np.clip(ratio / LLR_TEMPERATURE, -30, 30))), 0.0)
    probability = block_map_to_size(single.astype(np.float32), traces.offset, image_size, size)
    # The map shown and fused ranks blocks within the photo (min-max of the ratio): a pasted region
    # is singly compressed *relative to its host*, and after a finer last save (casia1-dev-swap) its
    # absolute ratio rarely crosses even odds. Whether the trace can speak at all, and how strongly
    # it says "pasted", is read from the absolute probability.
    values = block_map_to_size(single_compression_rank(traces), traces.offset, image_size, size)
    details = {"grid_score": round(traces.grid_score, 4), "double_frequencies": doubled,
               "grid_offset": list(traces.offset)}
    if doubled == 0:
        return EvidenceMap(
            "jpeg", values, 0.05,
            "the photo was JPEG-compressed once only (or resized between saves): there is no earlier "
            "compression to compare its regions against",
            details=details,
        )
    reliability, strength, reason, numbers = read_single_compression(probability, doubled)
    details.update(numbers)
    return EvidenceMap("jpeg", values, reliability, reason, strength, details)


def read_single_compression(values: np.ndarray, doubled: int) -> tuple[float, float, str, dict]:
    """``(reliability, strength, reason, details)`` of a P(single compression) map.

    The trace is readable where the photo's host is clearly doubly compressed (a photo saved once
    looks "single" everywhere and has nothing to compare against); the sign of editing is a
    compact minority of the photo that looks saved once, as a pasted region would.
    """
    import cv2

    informative = values > 0
    share_informative = float(informative.mean())
    # The photo's typical block (its host): P(single) near 0.5 means double and single fit alike,
    # as in a photo saved once; clearly below it, the host is doubly compressed.
    host = float(np.median(values[informative])) if informative.any() else 0.5
    reliability = (min(1.0, doubled / FULL_RELIABILITY_FREQUENCIES) * min(1.0, share_informative / 0.5)
                   * float(np.clip((0.5 - host) / DOUBLE_HOST_MARGIN, 0.0, 1.0)))
    flagged = (values >= 0.5).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(flagged, connectivity=8)
    largest = float(stats[1:, cv2.CC_STAT_AREA].max()) / flagged.size if count > 1 else 0.0
    # A pasted region is a minority of the photo: a "single" area over half of it is the host.
    strength = min(1.0, largest / STRENGTH_AREA) * float(np.clip((0.5 - largest) / 0.25, 0.0, 1.0)) * reliability
    numbers = {"host_single_probability": round(host, 4), "largest_single_area": round(largest, 4)}
    if reliability < UNREADABLE:
        reason = ("the photo looks JPEG-compressed once only (or resized between saves): there is no earlier "
                  "compression to compare its regions against")
    elif largest >= 0.005:
        reason = (f"saved as JPEG at least twice; an area of {largest:.0%} of the photo looks saved only once, "
                  "as a region pasted from elsewhere would")
    else:
        reason = "saved as JPEG at least twice, evenly across the photo: no region looks pasted"
    return reliability, strength, reason, numbers


def jpeg_evidence(rgb: np.ndarray, size: tuple[int, int] | None = None) -> EvidenceMap:
    """The ``jpeg`` evidence of ``rgb`` (``HxWx3`` ``uint8`` at its own resolution) at ``size``."""
    return evidence_from_traces(jpeg_traces(rgb), rgb.shape[:2], size or rgb.shape[:2])


@register_evidence("jpeg", "double-quantization evidence on the 8x8 JPEG grid: regions that look singly compressed")
class JpegEvidence(Evidence):
    name = "jpeg"
    title = "JPEG history"

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        native = inputs.native
        traces = inputs.jpeg if inputs.jpeg is not None else jpeg_traces(native)
        return evidence_from_traces(traces, native.shape[:2], inputs.working_size)
