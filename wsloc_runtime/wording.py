"""The verdict in sentences a reader without the method can use (the command line, the app, the report)."""

from __future__ import annotations

from typing import Sequence

from .pipeline import confident_edges


def band_in_words(band: Sequence[float]) -> str:
    """Which scores give which verdict, for people: ``these models call a photo "likely authentic"
    below 0.18 and never "likely manipulated"``."""
    low, high = confident_edges((float(band[0]), float(band[1])))
    if low is not None and high is not None:
        return f'these models call a photo "likely authentic" below {low:.2f} and "likely manipulated" from {high:.2f}'
    if low is not None:
        return f'these models call a photo "likely authentic" below {low:.2f} and never "likely manipulated"'
    if high is not None:
        return f'these models call a photo "likely manipulated" from {high:.2f} and never "likely authentic"'
    return "these models never give a confident verdict"


def verdict_sentence(verdict: str, probability: float, band: Sequence[float], mask_fraction: float | None) -> str:
    """The verdict as sentences a reader without the method can use: what it is, the score it rests
    on and how that score is read, and (unless the photo was judged authentic) how much of the
    photo the mask marks."""
    text = (f"{verdict[0].upper()}{verdict[1:]}. Score {probability:.2f} on a scale from 0 (no sign of editing) "
            f"to 1 (strong signs); {band_in_words(band)}.")
    if verdict != "likely authentic" and mask_fraction is not None:
        if mask_fraction > 0:
            where = "the likely edited area" if verdict == "likely manipulated" else "the area with the strongest signs"
            text += f" The mask marks {where}: {100 * mask_fraction:.1f}% of the photo."
        else:
            text += " The mask marks no part of the photo."
    return text


def reliability_in_words(reliability: float) -> str:
    """How far a trace can speak about a photo, in words."""
    if reliability >= 0.7:
        return "readable on this photo"
    if reliability >= 0.3:
        return "partly readable on this photo"
    if reliability > 0.0:
        return "barely readable on this photo"
    return "not readable on this photo"


def evidence_caption(title: str, reliability: float, share: float, reason: str) -> str:
    """One evidence panel's caption: the trace, whether it can speak here, what it says, its share."""
    text = f"{title}: {reliability_in_words(reliability)}. {reason[0].upper()}{reason[1:]}."
    if share >= 0.005:
        text += f" It carries {share:.0%} of the final map."
    return text


def _mid_sentence(title: str) -> str:
    """A panel title inside a sentence: "Copy-move" -> "copy-move", "JPEG history" stays."""
    return title if title[:2].isupper() else title[:1].lower() + title[1:]


def drivers_sentence(titles: dict[str, str], shares: dict[str, float]) -> str:
    """Which evidence drove the result: ``The map rests mostly on copy-move (81%), then JPEG history (12%).``"""
    ranked = [(name, share) for name, share in sorted(shares.items(), key=lambda item: -item[1]) if share >= 0.05]
    if not ranked:
        return "No trace found a sign of editing strong enough to shape the map."
    first, *rest = ranked
    text = f"The map rests mostly on {_mid_sentence(titles.get(first[0], first[0]))} ({first[1]:.0%})"
    if rest:
        text += ", then " + ", ".join(f"{_mid_sentence(titles.get(n, n))} ({s:.0%})" for n, s in rest)
    return text + "."
