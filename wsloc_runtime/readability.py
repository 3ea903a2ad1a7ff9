"""What a photo could have shown: which kinds of edit its traces would have revealed.

A verdict of "likely authentic" is read by people as "we looked and found nothing". That is only
true where the traces that reveal an edit survive on the photo: a region pasted from another
photo and saved again shows in the JPEG history only when the photo kept an earlier compression
to compare against; a platform that resized and re-saved the photo erased it. This module turns
the evidences' reliabilities into that statement, per kind of edit, so that the verdict can say
"cannot tell" where it could not look (``wsloc_runtime.pipeline.verdict_of``).

Every function here is pure: evidence readings in, a :class:`Readability` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .evidence import EvidenceMap

#: Kinds of edit, what each is in words, and the evidence that reveals it (``None``: no trace of
#: the runtime reads it yet, so no photo is ever readable for it).
EDIT_KINDS: dict[str, tuple[str, str | None]] = {
    "pasted": ("pasted regions", "jpeg"),
    "copied": ("copied regions", "copy_move"),
    "generated": ("generated fills", None),
}
#: Each kind in one word, for the one-line summaries (``wsloc localize``).
SHORT_NAMES = {"pasted": "pastes", "copied": "copies", "generated": "AI fills"}
#: The kinds a "likely authentic" verdict speaks for: it is said only where each of them was
#: readable (splices are the edit the detectors and the JPEG history are built for; a copy
#: would show in the copy-move trace).
VERDICT_KINDS = ("pasted",)
#: The evidences a verdict needs read on every photo, in either fusion mode.
READABILITY_EVIDENCE = tuple(EDIT_KINDS[kind][1] for kind in VERDICT_KINDS)
#: A kind counts as readable from this reliability of its evidence on (``studies.verdict_band``
#: chooses it with the band, over the seven visible sets; the value below is its choice).
DEFAULT_READABLE_FROM = 0.5


@dataclass(frozen=True)
class Readability:
    """How far a photo's traces would have shown each kind of edit.

    Attributes:
        kinds: per kind of :data:`EDIT_KINDS`, the reliability in [0, 1] of the evidence that
            reveals it on this photo (0: that evidence was not computed or cannot read the photo).
        readable_from: the reliability from which a kind counts as readable.
    """

    kinds: dict[str, float]
    readable_from: float = DEFAULT_READABLE_FROM

    def can_show(self, kind: str) -> bool:
        return self.kinds.get(kind, 0.0) >= self.readable_from

    @property
    def level(self) -> float:
        """:func:`verdict_level` of this photo's kinds."""
        return verdict_level(self.kinds)

    def could_show(self) -> str:
        """What the photo could show, in a few words for a one-line summary: ``"could show pastes,
        copies"``, ``"could show no edit"``."""
        shown = [SHORT_NAMES.get(kind, kind) for kind in self.kinds if self.can_show(kind)]
        return "could show " + (", ".join(shown) if shown else "no edit")

    @property
    def readable(self) -> bool:
        """True where every kind a "likely authentic" verdict speaks for would have shown."""
        return all(self.can_show(kind) for kind in VERDICT_KINDS)

    def sentence(self) -> str:
        """What the photo could and could not show, in plain words, for the verdict's line."""
        shown = [kind for kind in self.kinds if self.can_show(kind)]
        hidden = [kind for kind in self.kinds if not self.can_show(kind)]
        text = ""
        if "pasted" in hidden:
            text = ("No earlier JPEG save to compare its regions against (never a JPEG, saved once, or "
                    "resized and re-saved after any edit). ")
        if shown:
            text += f"Its traces would have shown {_join([EDIT_KINDS[kind][0] for kind in shown])}"
            text += f", not {_join([EDIT_KINDS[kind][0] for kind in hidden])}." if hidden else "."
        else:
            text += "Its traces would not have shown any kind of edit."
        return text

    def summary(self) -> dict:
        return {
            "readable": self.readable,
            "kinds": {kind: round(value, 4) for kind, value in self.kinds.items()},
            "readable_from": self.readable_from,
            "sentence": self.sentence(),
        }


def verdict_level(kinds: Mapping[str, float]) -> float:
    """The reliability, in [0, 1], of the kinds a "likely authentic" verdict speaks for (the lowest
    of them; 0 for a kind not read): a photo is readable from ``readable_from`` on, and a verdict
    margin scales with it (``wsloc_runtime.pipeline.verdict_of``)."""
    return min(float(kinds.get(kind, 0.0)) for kind in VERDICT_KINDS)


def _join(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b or c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def assess_readability(readings: Mapping[str, EvidenceMap],
                       readable_from: float = DEFAULT_READABLE_FROM) -> Readability:
    """Each kind of edit's readability from the evidence readings of one photo (by name).

    Args:
        readings: evidence readings by registry name; a kind whose evidence is missing is not readable.
        readable_from: reliability in (0, 1] from which a kind counts as readable.
    """
    if not 0.0 < readable_from <= 1.0:
        raise ValueError(f"readable_from must be in (0, 1], got {readable_from}")
    kinds = {}
    for kind, (_, evidence_name) in EDIT_KINDS.items():
        reading = readings.get(evidence_name) if evidence_name else None
        kinds[kind] = float(reading.reliability) if reading is not None else 0.0
    return Readability(kinds, readable_from)
