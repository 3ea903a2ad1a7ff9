"""Plain-words helpers: sentences a reader sees in the app, the CLI and the report."""

from wsloc_runtime.evidence import create_evidence
from wsloc_runtime.wording import drivers_sentence


def test_drivers_name_the_traces_in_order_and_keep_acronyms():
    titles = {name: create_evidence(name).title for name in ("copy_move", "jpeg", "jpeg_grid", "noise")}
    sentence = drivers_sentence(titles, {"copy_move": 0.81, "jpeg": 0.12, "jpeg_grid": 0.04, "noise": 0.03})
    assert sentence == "The map rests mostly on copy-move (81%), then JPEG history (12%)."


def test_drivers_say_when_no_trace_shaped_the_map():
    assert drivers_sentence({"noise": "Noise"}, {"noise": 0.01}).startswith("No trace found")
