"""``jpeg_grid``: where blocks are off the 8x8 lattice that the rest of the photo sits on.

A photo that was once a JPEG keeps, after decoding, the trace of that compression: in every
8x8 block of its grid, each DCT coefficient sits close to a multiple of the quantization step
(:mod:`wsloc_runtime.jpeg_traces` estimates the grid and the steps from the pixels). A region
pasted, moved, rotated or resampled after that compression no longer does, as long as the
photo was not JPEG-compressed again afterwards (a lossless save, TIFF or PNG, keeps the host's
lattice and the paste's lack of it; a later JPEG save puts every block back on one lattice,
which the ``jpeg`` evidence then reads as double compression).

Per block, the mean of ``cos(2 pi c / q)`` over the coefficients the lattice codes to a non-zero
value (pooled over 5 x 5 blocks; flat blocks code too little to say anything, clipped blocks
are left out): about 1 on the lattice, about 0 off it.

- map: minus that fit, ranked within the photo (blocks without evidence sit at the host's level);
- reliability: a grid, a lattice at enough frequencies, and a host that clearly sits on it;
- strength: the largest connected area at least :data:`OFF_GRID_DROP` below the host's fit,
  saturating at :data:`STRENGTH_AREA` of the photo, times the reliability.

The constants were set on synthesized forgeries (``training.synth``, test split, seed 7: hosts from
JPEG photos, half saved losslessly) and on casia1-train's authentic photos, not on the
development sets: with them an area of 3 % or more is off the grid in 0-2 % of the synthesized
authentic photos and 4 % of casia1-train's, and in 93 % of the synthesized splices saved losslessly.
"""

from __future__ import annotations

import numpy as np

from ..jpeg_traces import JpegTraces, block_map_to_size, grid_fit_per_coefficient, jpeg_traces, rank_within_photo
from .base import EvidenceMap, register_evidence
from .jpeg import JpegTracesEvidence, largest_area_share, minority_area_strength

#: A block is off the grid when its fit is this far below the host's (off-lattice blocks read
#: about 0, the host 0.8-0.9 on photos saved as JPEG once or twice).
OFF_GRID_DROP = 0.4
#: Area (share of the photo) of the largest off-grid region at which the strength saturates.
STRENGTH_AREA = 0.03
#: The host's median fit at which the trace starts to be readable, and is fully readable.
HOST_FIT_UNREADABLE, HOST_FIT_READABLE = 0.4, 0.7
#: Frequencies with a lattice at which the trace counts as fully readable.
FULL_RELIABILITY_FREQUENCIES = 8
#: Below this reliability the reason says the trace cannot be read.
UNREADABLE = 0.25


def _reading(reason: str, size: tuple[int, int], reliability: float = 0.0, details: dict | None = None) -> EvidenceMap:
    return EvidenceMap("jpeg_grid", np.zeros(size, np.float32), reliability, reason, 0.0, details or {})


def grid_evidence_from_traces(traces: JpegTraces, image_size: tuple[int, int], size: tuple[int, int]) -> EvidenceMap:
    """The ``jpeg_grid`` evidence from traces of a photo of ``image_size``, mapped at ``size``."""
    details = {"grid_score": round(traces.grid_score, 4)}
    if not traces.has_grid:
        return _reading("no JPEG grid found: the photo was never JPEG-compressed, or was resized after its "
                        "last JPEG save", size, details=details)
    lattice_frequencies = int(sum(1 for step in traces.steps if step > 1))
    fit = grid_fit_per_coefficient(traces)
    informative = np.isfinite(fit)
    details.update({"lattice_frequencies": lattice_frequencies, "grid_offset": list(traces.offset)})
    if lattice_frequencies == 0 or not informative.any():
        return _reading("a JPEG grid but no quantization lattice could be read: nothing to compare regions against",
                        size, details=details)
    host = float(np.median(fit[informative]))
    reliability = (min(1.0, lattice_frequencies / FULL_RELIABILITY_FREQUENCIES)
                   * min(1.0, float(informative.mean()) / 0.5)
                   * float(np.clip((host - HOST_FIT_UNREADABLE) / (HOST_FIT_READABLE - HOST_FIT_UNREADABLE), 0.0, 1.0)))
    largest = largest_area_share(informative & (fit <= host - OFF_GRID_DROP))
    strength = minority_area_strength(largest, STRENGTH_AREA) * reliability
    rank = rank_within_photo(-np.where(informative, fit, host))
    values = block_map_to_size(rank, traces.offset, image_size, size)
    details.update({"host_fit": round(host, 4), "largest_off_grid_area": round(largest, 4)})
    if reliability < UNREADABLE:
        reason = "the photo's blocks sit only loosely on a JPEG lattice: regions cannot be told apart by it"
    elif largest >= 0.005:
        area = f"an area of {largest:.0%} of it" if largest >= 0.01 else "a small area of it"
        reason = (f"the photo sits on one JPEG grid, but {area} does not, as a region pasted, moved or "
                  "resampled after that JPEG save would")
    else:
        reason = ("the whole photo sits on its JPEG grid: no region was pasted after its last JPEG save "
                  "(one pasted before it would sit on the grid too)")
    return EvidenceMap("jpeg_grid", values, reliability, reason, strength, details)


def jpeg_grid_evidence(rgb: np.ndarray, size: tuple[int, int] | None = None) -> EvidenceMap:
    """The ``jpeg_grid`` evidence of ``rgb`` (``HxWx3`` ``uint8`` at its own resolution) at ``size``.

    Returns:
        :class:`EvidenceMap` named ``jpeg_grid``: ``map`` ``(h, w)`` ``float32`` in [0, 1], high
        where blocks are off the photo's lattice; reliability 0 without a JPEG grid.
    """
    return grid_evidence_from_traces(jpeg_traces(rgb), rgb.shape[:2], size or rgb.shape[:2])


@register_evidence("jpeg_grid", "blocks off the photo's 8x8 JPEG lattice: regions pasted, moved or resampled "
                                "after its JPEG save (read on photos saved losslessly since)")
class JpegGridEvidence(JpegTracesEvidence):
    name = "jpeg_grid"
    title = "JPEG grid"
    from_traces = staticmethod(grid_evidence_from_traces)
