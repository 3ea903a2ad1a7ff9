"""Plain-words helpers: sentences a reader sees in the app, the CLI and the report."""

import itertools

import numpy as np
import pytest

from wsloc_runtime.evidence import EvidenceMap, create_evidence
from wsloc_runtime.pipeline import verdict_of
from wsloc_runtime.wording import as_sentence, drivers_sentence, score_in_words, trace_caption

#: A reason that says the trace found nothing, as the JPEG history trace writes it.
NOTHING = "saved as JPEG at least twice, evenly across the photo: no region looks pasted"
RAMP = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))  # bright at one side
DARK = np.zeros((48, 64), np.float32)


def test_drivers_name_the_traces_in_order_and_keep_acronyms():
    titles = {name: create_evidence(name).title for name in ("copy_move", "jpeg", "jpeg_grid", "noise")}
    sentence = drivers_sentence(titles, {"copy_move": 0.81, "jpeg": 0.12, "jpeg_grid": 0.04, "noise": 0.03})
    assert sentence == "The map rests mostly on copy-move (81%), then JPEG history (12%)."


def test_drivers_say_when_no_trace_shaped_the_map():
    assert drivers_sentence({"noise": "Noise"}, {"noise": 0.01}).startswith("No trace found")


def test_a_trace_that_carries_most_of_the_map_never_says_it_found_nothing():
    """The JPEG history caption once said "no region looks pasted" while the trace carried 74% of the
    final map, bright on the pasted cat."""
    caption = trace_caption(EvidenceMap("jpeg", RAMP, 0.9, NOTHING, strength=0.03), 0.74, "JPEG history")
    assert caption == ("JPEG history: readable on this photo. It found no clear sign of editing on its own "
                       "(strength 3%), but its map, brightest where blocks look saved as JPEG fewer times than the "
                       "rest, carries 74% of the final map.")


def test_a_bright_map_with_no_sign_says_what_its_brightness_means():
    """The hats report showed a bright JPEG map beside "strength of the sign of editing it found: 0%"."""
    caption = trace_caption(EvidenceMap("jpeg", RAMP, 0.8, NOTHING, strength=0.0), 0.1)
    assert caption.startswith("Readable on this photo. It found no clear sign of editing on its own (strength 0%).")
    assert "Its map is brightest where blocks look saved as JPEG fewer times than the rest, which alone is no " \
           "sign of editing." in caption and caption.endswith("It carries 10% of the final map.")
    assert "no region looks pasted" not in caption


def test_a_dark_map_keeps_the_traces_own_reason_and_a_sign_is_named_with_its_strength():
    quiet = trace_caption(EvidenceMap("copy_move", DARK, 0.7, "no duplicated area found among 3,000 points"), 0.0,
                          "Copy-move")
    assert quiet == "Copy-move: readable on this photo. No duplicated area found among 3,000 points."
    found = trace_caption(EvidenceMap("copy_move", RAMP, 1.0, "two areas covering 3.1% of the photo are copies of "
                                      "each other", strength=0.87), 0.81, "Copy-move")
    assert found == ("Copy-move: readable on this photo. It found a clear sign of editing (strength 87%). Two areas "
                     "covering 3.1% of the photo are copies of each other. It carries 81% of the final map.")
    weak = trace_caption(EvidenceMap("noise", RAMP, 0.6, "an area of 4% of the photo has clearly more grain",
                                     strength=0.3), 0.2)
    assert "It found a weak sign of editing (strength 30%). An area of 4%" in weak
    unreadable = trace_caption(EvidenceMap("jpeg_grid", DARK, 0.0, "no JPEG grid found"), 0.0, "JPEG grid")
    assert unreadable == "JPEG grid: not readable on this photo. No JPEG grid found."


@pytest.mark.parametrize("reliability, strength, share, values", list(itertools.product(
    (0.1, 0.5, 1.0), (0.0, 0.1, 0.19), (0.0, 0.3, 0.5, 0.9), (RAMP, DARK))))
def test_no_caption_puts_found_nothing_beside_a_bright_or_leading_map(reliability, strength, share, values):
    caption = trace_caption(EvidenceMap("jpeg", values, reliability, NOTHING, strength), share, "JPEG history")
    leading, bright = share >= 0.5, float(values.max()) >= 0.5
    if leading or bright:
        assert "no region looks pasted" not in caption, caption
    if share >= 0.005:
        assert f"{share:.0%} of the final map" in caption, caption
    assert ". " not in caption or all(part[:1].isupper() for part in caption.split(". ")[1:]), caption


@pytest.mark.parametrize("band", [(0.2719, 0.8287), (0.1767, 1.0), (0.0, 0.8), (0.5, 0.5), (0.0, 1.0)])
def test_the_score_line_never_puts_uncertain_beside_a_confident_verdict(band):
    """It once read "P(manipulated) = 0.888 (uncertain between 0.27 and 0.83)" under LIKELY MANIPULATED."""
    for probability in np.linspace(0.0, 1.0, 41):
        verdict = verdict_of(float(probability), band)
        line = score_in_words(float(probability), band, verdict)
        assert line.endswith(f"verdict: {verdict}")
        if verdict != "uncertain":
            assert "uncertain" not in line, line
    assert score_in_words(0.888, (0.27, 0.83), "likely manipulated") == (
        "P(manipulated) = 0.888, at or above 0.83; verdict: likely manipulated")
    assert score_in_words(0.5, (0.27, 0.83), "uncertain") == "P(manipulated) = 0.500, between 0.27 and 0.83; verdict: uncertain"


def test_as_sentence_capitalises_and_ends_with_a_full_stop():
    assert as_sentence("the grain is even across the photo") == "The grain is even across the photo."
    assert as_sentence("Done.") == "Done." and as_sentence("  ") == ""
