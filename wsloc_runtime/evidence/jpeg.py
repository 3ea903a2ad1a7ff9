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

from ..jpeg_traces import JpegTraces, block_map_to_size, jpeg_traces, single_compression_evidence
from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence

#: Pooled single-compression evidence (nats per block, see ``single_compression_evidence``) at which
#: the map reads 0.5: pasted regions reach 2-8, untouched doubly compressed areas stay below 1.
SQ_HALF = 2.0
#: Frequencies with a detected double quantization at which the trace counts as fully readable.
FULL_RELIABILITY_FREQUENCIES = 8
#: Share of the photo whose map is above 0.5 at which the image-level strength saturates.
STRENGTH_AREA = 0.02


def evidence_from_traces(traces: JpegTraces, image_size: tuple[int, int], size: tuple[int, int]) -> EvidenceMap:
    """The ``jpeg`` evidence from traces of a photo of ``image_size``, mapped at ``size``."""
    if not traces.has_grid:
        return EvidenceMap(
            "jpeg", np.zeros(size, np.float32), 0.0,
            "no JPEG grid found: the photo was never JPEG-compressed, or was resized after its last JPEG save",
            details={"grid_score": round(traces.grid_score, 4)},
        )
    doubled = int(sum(1 for step in traces.first_steps if step))
    evidence = single_compression_evidence(traces)
    block_map = (1.0 - np.exp(-np.log(2.0) * evidence / SQ_HALF)).astype(np.float32)
    values = block_map_to_size(block_map, traces.offset, image_size, size)
    details = {"grid_score": round(traces.grid_score, 4), "double_frequencies": doubled,
               "grid_offset": list(traces.offset)}
    if doubled == 0:
        return EvidenceMap(
            "jpeg", values, 0.05,
            "the photo was JPEG-compressed once only (or resized between saves): there is no earlier "
            "compression to compare its regions against",
            details=details,
        )
    reliability = min(1.0, doubled / FULL_RELIABILITY_FREQUENCIES)
    flagged = float((values >= 0.5).mean())
    strength = min(1.0, flagged / STRENGTH_AREA) * float(np.quantile(values, 0.995))
    if flagged > 0:
        reason = (f"saved as JPEG at least twice; {flagged:.0%} of the photo looks saved only once, "
                  "as a region pasted from elsewhere would")
    else:
        reason = "saved as JPEG at least twice, evenly across the photo: no region looks pasted"
    details["flagged_fraction"] = round(flagged, 4)
    return EvidenceMap("jpeg", values, reliability, reason, strength, details)


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
