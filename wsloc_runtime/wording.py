"""The verdict in sentences a reader without the method can use (the command line, the app, the report)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .evidence import EvidenceMap
from .pipeline import confident_edges


def band_in_words(band: Sequence[float]) -> str:
    """Which scores give which verdict, for people: ``these models call a photo "likely authentic"
    below 0.18 only where its traces would have shown an edit, and never "likely manipulated"``."""
    low, high = confident_edges((float(band[0]), float(band[1])))
    if low is not None and high is not None:
        return (f'these models call a photo "likely manipulated" from {high:.2f}, and "likely authentic" below '
                f'{low:.2f} only where its traces would have shown an edit')
    if low is not None:
        return (f'these models call a photo "likely authentic" below {low:.2f} only where its traces would have '
                f'shown an edit, and never "likely manipulated"')
    if high is not None:
        return f'these models call a photo "likely manipulated" from {high:.2f} and never "likely authentic"'
    return "these models never give a confident verdict"


#: The longest line ``wsloc localize`` prints for one photo.
LINE_WIDTH = 120


def short_path(path: str, width: int) -> str:
    """``path`` in at most ``width`` characters: whole when it fits, else its start cut with "..."
    so that the file name itself stays readable."""
    if len(path) <= width:
        return path
    return "..." + path[-max(1, width - 3):]


def verdict_short_line(file: str, verdict: str, probability: float, could_show: str | None,
                       mask_fraction: float | None, width: int = LINE_WIDTH) -> str:
    """One photo in one line of at most ``width`` characters, for people scanning many:
    ``boat.jpg: Uncertain 0.42 | could show pastes, copies | mask 22.4%``. The scale and the
    verdicts' edges are said once for all lines (:func:`legend_lines`)."""
    parts = [f"{verdict[0].upper()}{verdict[1:]} {probability:.2f}"]
    if could_show:
        parts.append(could_show)
    if verdict == "likely authentic" or mask_fraction is None:
        parts.append("no mask")
    else:
        parts.append(f"mask {100 * mask_fraction:.1f}%" if mask_fraction > 0 else "mask empty")
    rest = ": " + " | ".join(parts)
    return short_path(file, width - len(rest)) + rest


def legend_lines(band: Sequence[float], out_dir: str | None = None) -> list[str]:
    """What the one-line summaries mean, said once after them (each line at most :data:`LINE_WIDTH`):
    the score's scale, the verdicts' edges for these models, what "could show" is, and where each
    photo's files are."""
    low, high = confident_edges((float(band[0]), float(band[1])))
    lines = ["Score: 0 = no sign of editing, 1 = strong signs. "
             + (f'"Likely manipulated" from {high:.2f}.' if high is not None else
                'These models never say "likely manipulated".')]
    if low is not None:
        lines.append(f'"Likely authentic" below {low:.2f}, but only where the photo could show a pasted region '
                     '("cannot tell" where not).')
    else:
        lines.append('These models never say "likely authentic"; "cannot tell": the photo could not show a pasted '
                     'region.')
    lines.append('"Could show": the kinds of edit its traces would have revealed (pastes, copies, AI fills).')
    if out_dir is not None:
        lines.append(f"Each photo's heatmap, mask, overlay and JSON: {out_dir.rstrip('/')}/NAME_*.png, NAME.json.")
    return lines


def precision_in_words(verdict: str, stated: Mapping[str, Sequence] | None) -> str | None:
    """How often ``verdict`` was right out of sample, in words, from the verdict rule's own table
    (``FusionSettings.stated_precision[mode]``): ``'right 86 of 96 times (90 %) on the development
    set where it did worst, with its edges chosen without that set'``; None when the rule measured
    nothing for it (then nothing is claimed)."""
    if not stated or verdict not in stated:
        return None
    right, said, where = stated[verdict]
    if not said:
        return None
    share = f"right {right} of {said} times ({100 * right / said:.0f} %)"
    if where:
        return f"{share} on the development set where it did worst ({where}), with its edges chosen without that set"
    return f"{share} over the development sets, each with its edges chosen without it"


def precision_sentences(verdict: str, stated: Mapping[str, Sequence] | None) -> list[str]:
    """What the page and the report say about how often a verdict is right: one sentence for
    ``verdict`` from the verdict rule's own table (:func:`precision_in_words`), or none at all when
    the rule measured nothing for it. Never a number from anywhere else."""
    words = precision_in_words(verdict, stated)
    if words is None:
        return []
    return [f'When these models said "{verdict}", they were {words}.']


def verdict_sentence(verdict: str, probability: float, band: Sequence[float], mask_fraction: float | None,
                     readability: str | None = None) -> str:
    """The verdict as sentences a reader without the method can use: what it is, the score it rests
    on and how that score is read, what the photo's traces could have shown (``readability``, the
    sentence of :class:`~wsloc_runtime.readability.Readability`), and (unless the photo was judged
    authentic) how much of the photo the mask marks."""
    text = (f"{verdict[0].upper()}{verdict[1:]}. Score {probability:.2f} on a scale from 0 (no sign of editing) "
            f"to 1 (strong signs); {band_in_words(band)}.")
    if readability:
        text += f" {readability}"
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


def score_in_words(probability: float, band: Sequence[float], verdict: str) -> str:
    """The score for specialists, where it sits against the band, and the verdict it got:
    ``P(manipulated) = 0.888, at or above 0.83; verdict: likely manipulated``. Never the band's
    "uncertain" beside a confident verdict: the verdict named is the one given."""
    low, high = confident_edges((float(band[0]), float(band[1])))
    if high is not None and probability >= high:
        position = f"at or above {high:.2f}"
    elif low is not None and probability < low:
        position = f"below {low:.2f}"
    elif low is not None and high is not None:
        position = f"between {low:.2f} and {high:.2f}"
    elif low is not None:
        position = f"at or above {low:.2f}, where these models never say \"likely manipulated\""
    elif high is not None:
        position = f"below {high:.2f}, where these models never say \"likely authentic\""
    else:
        position = "on a scale where these models never give a confident verdict"
    return f"P(manipulated) = {probability:.3f}, {position}; verdict: {verdict}"


def fusion_in_words(fusion: str) -> str:
    """What the map rests on, for a reader: ``"evidence"`` and ``"paper"`` in words."""
    return {"evidence": "all the traces, each weighted by how readable it is on this photo",
            "paper": "the paper's method: the detectors' attention alone"}.get(fusion, fusion)


def as_sentence(text: str) -> str:
    """``text`` as one sentence: a capital first letter and a full stop (reasons come lower-case)."""
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


#: Strength (0-1) of a trace's sign of editing from which its caption calls it clear, and weak.
CLEAR_SIGN, WEAK_SIGN = 0.5, 0.2
#: A map this bright somewhere (0-1) draws the eye: its caption says what the brightness means.
BRIGHT_MAP = 0.5
#: Share of the final map from which a trace carries most of it.
MOST_OF_THE_MAP = 0.5
#: Where each trace's map is brightest, in words (others: :data:`DEFAULT_MAP_BRIGHT`).
MAP_BRIGHT = {
    "activation": "where the detectors looked",
    "jpeg": "where blocks look saved as JPEG fewer times than the rest",
    "jpeg_grid": "where blocks sit least well on the photo's JPEG grid",
    "noise": "where the grain differs most from the rest",
    "copy_move": "on areas that are copies of each other",
    "ela": "where one more JPEG save changes the photo most",
}
DEFAULT_MAP_BRIGHT = "where the photo looks least like the rest"


def trace_caption(reading: EvidenceMap, share: float, title: str | None = None) -> str:
    """One trace's caption, from the same numbers as its map and its share: whether it can speak
    about this photo (``reliability``), what it found (``strength``, and its ``reason`` unless that
    would contradict the map), what its map's bright parts mean, and its ``share`` of the final map.

    A trace that found no clear sign but whose map is bright, or that carries most of the final map,
    never says it found nothing: ``It found no clear sign of editing on its own (strength 3%), but
    its map, brightest where ..., carries 74% of the final map.``
    """
    readable = reliability_in_words(reading.reliability)
    parts = [f"{title}: {readable}." if title else as_sentence(readable)]
    strength = reading.strength
    bright = bool(reading.map.size) and float(np.max(reading.map)) >= BRIGHT_MAP
    where = MAP_BRIGHT.get(reading.name, DEFAULT_MAP_BRIGHT)
    carries = f"carries {share:.0%} of the final map" if share >= 0.005 else ""
    reason = as_sentence(reading.reason)
    if strength >= WEAK_SIGN:
        grade = "a clear" if strength >= CLEAR_SIGN else "a weak"
        parts += [f"It found {grade} sign of editing (strength {strength:.0%}).", reason]
    elif share >= MOST_OF_THE_MAP:
        # Its reason may say "no region looks pasted": not beside a map that shapes most of the result.
        return " ".join(parts + [f"It found no clear sign of editing on its own (strength {strength:.0%}), but its "
                                 f"map, brightest {where}, {carries}."])
    elif not bright or reading.reliability <= 0.0:
        parts.append(reason)  # what it found (nothing, beside a dark map), or why it cannot speak here
    else:
        parts.append(f"It found no clear sign of editing on its own (strength {strength:.0%}).")
    if bright and strength < WEAK_SIGN and reading.reliability > 0.0:
        parts.append(f"Its map is brightest {where}, which alone is no sign of editing.")
    if carries:
        parts.append(f"It {carries}.")
    return " ".join(part for part in parts if part)


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
