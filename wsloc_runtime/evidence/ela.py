"""``ela``: the plain error-level map, shown as a panel and kept as a baseline.

Error levels are the residual of one more JPEG save; a region that was saved fewer times
(or never) than the rest shows a different residual. It also lights up texture and edges,
so it is a weak localizer and joins the fusion with a low reliability.
"""

from __future__ import annotations

import numpy as np

from ..sel import ErrorLevels, error_level_map
from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence, resize_map

#: ELA reads texture as much as editing; its voice in the fusion stays small.
ELA_RELIABILITY = 0.2


#: The re-encoding's JPEG quality.
ELA_QUALITY = 90


def ela_evidence(rgb: np.ndarray, size: tuple[int, int] | None = None) -> EvidenceMap:
    """Error-level map of ``rgb`` (``HxWx3`` ``uint8``) resized to ``size`` (default: its own)."""
    values = error_level_map(rgb, ELA_QUALITY)
    return _reading(resize_map(values, size or rgb.shape[:2]), float(values.max()))


def ela_from_levels(levels: ErrorLevels) -> EvidenceMap:
    """The same reading from an :func:`~wsloc_runtime.sel.error_levels_pass` that computed the map
    (with the models' SEL, from one JPEG re-encoding)."""
    return _reading(levels.ela, levels.ela_peak)


def _reading(values: np.ndarray, peak: float) -> EvidenceMap:
    return EvidenceMap(
        name="ela",
        map=values,
        reliability=ELA_RELIABILITY if peak > 0 else 0.0,
        reason=("error levels of one more JPEG save at quality 90; bright where the photo was saved fewer "
                "times, and also on edges and texture" if peak > 0
                else "one more JPEG save changes nothing: no error levels to read"),
        strength=0.0,
    )


@register_evidence("ela", "plain error-level map |image - JPEG90(image)| (a baseline; texture lights up too)")
class ErrorLevelEvidence(Evidence):
    name = "ela"
    title = "Error levels"

    error_levels_quality = ELA_QUALITY

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        levels = inputs.error_levels
        if (isinstance(levels, ErrorLevels) and levels.ela is not None and levels.quality == ELA_QUALITY
                and levels.ela.shape == inputs.working_size):
            return ela_from_levels(levels)
        return ela_evidence(inputs.native, inputs.working_size)
