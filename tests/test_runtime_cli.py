"""The command line: outputs per image, failures reported by name, evaluate's report."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT, make_splice
from wsloc_runtime.pipeline import Localizer
from wsloc_runtime.cli import localize_to_files, main, output_stems
from wsloc_runtime.outputs import verdict_line, verdict_sentence
from wsloc_runtime.wording import LINE_WIDTH, legend_lines


def save_rgb(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_localize_writes_five_outputs_and_reports_bad_input(tmp_path, contract_models, splice, capsys):
    good = save_rgb(tmp_path / "forged.png", splice[0])
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    code = main(["-q", "localize", str(good), str(bad), "--out", str(out), "--models", str(contract_models)])
    assert code == 1
    assert "broken.png" in capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["forged.json", "forged_heatmap.png", "forged_legend.png", "forged_mask.png", "forged_overlay.png"]
    payload = json.loads((out / "forged.json").read_text())
    assert 0.0 <= payload["probability"] <= 1.0 and payload["providers"]["wcbnet3"]
    mask = cv2.imread(str(out / "forged_mask.png"), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == splice[1].shape and set(np.unique(mask)) <= {0, 255}
    heat = cv2.imread(str(out / "forged_heatmap.png"))
    assert heat.shape[:2] == splice[1].shape


def test_all_good_inputs_exit_zero(tmp_path, contract_models, splice):
    good = save_rgb(tmp_path / "a.png", splice[0])
    assert main(["-q", "localize", str(good), "--out", str(tmp_path / "o"), "--models", str(contract_models)]) == 0
    assert json.loads((tmp_path / "o" / "a.json").read_text())["test_time_views"] == "hflip"  # the default
    assert main(["-q", "localize", str(good), "--out", str(tmp_path / "one"), "--models", str(contract_models),
                 "--views", "none"]) == 0
    assert json.loads((tmp_path / "one" / "a.json").read_text())["test_time_views"] == "none"


def test_an_unexpected_failure_becomes_a_row_error_and_writes_nothing(tmp_path, contract_models, splice,
                                                                     monkeypatch):
    """localize and batch share localize_to_files: a crash inside the pipeline (not a WslocError)
    must name the input, leave no output files and let the next image run."""
    good = save_rgb(tmp_path / "forged.png", splice[0])
    localizer = Localizer(models_dir=contract_models)
    out = tmp_path / "out"
    ok = localize_to_files(localizer, str(good), out, "forged")
    assert ok["error"] is None and 0.0 <= ok["probability"] <= 1.0 and "encode" in ok["timings"]

    def crash(self, source):
        raise RuntimeError("simulated segmenter crash")

    monkeypatch.setattr(Localizer, "localize", crash)
    failed = localize_to_files(localizer, str(good), out, "again")
    assert "forged.png" in failed["error"] and "unexpected RuntimeError: simulated segmenter crash" in failed["error"]
    assert failed["probability"] is None and failed["seconds"] >= 0
    assert not list(out.glob("again*"))


def test_localize_takes_a_folder_says_what_it_read_and_ends_with_one_summary_line(tmp_path, contract_models,
                                                                                   splice, capsys):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    save_rgb(folder / "forged.png", splice[0])
    cv2.imwrite(str(folder / "forged_mask.png"), splice[1].astype(np.uint8) * 255)  # its reference mask
    save_rgb(folder / "other.jpg", splice[0][::-1])
    (folder / "notes.txt").write_text("not an image")
    frames = [Image.fromarray(np.roll(splice[0], 30 * index, axis=1)) for index in range(4)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out"

    assert main(["localize", str(folder), "--out", str(out), "--models", str(contract_models)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert sorted(p.name for p in out.glob("*.json")) == ["animated.json", "forged.json", "other.json"]
    verdicts = {json.loads(p.read_text())["verdict"] for p in out.glob("*.json")}
    summary = printed[-1]
    assert summary.startswith("3 of 3 images analysed (0 failed): ") and summary.endswith(f"outputs in {out}{os.sep}")
    assert sum(int(part.split()[0]) for part in summary.split(": ", 1)[1].split(";")[0].split(", ")) == 3
    assert all(verdict in summary for verdict in verdicts)
    note = "the file holds 4 frames (animated or multi-page); only the first was analysed"
    assert json.loads((out / "animated.json").read_text())["notes"] == [note]
    assert f"  note: {note}" in printed
    # The file as given, its start cut with "..." where the line would pass 120 characters.
    forged = [line for line in printed if "forged.png: " in line]
    assert all(len(line) <= LINE_WIDTH for line in printed if ".png: " in line or ".jpg: " in line)
    assert len(forged) == 1 and re.search(r": [A-Z][a-z ]+ [01]\.\d\d \| could show ", forged[0]), forged
    assert any(line.startswith("Score: 0 = no sign of editing, 1 = strong signs.") for line in printed)


@pytest.mark.parametrize("command", ["localize", "batch"])
def test_outputs_are_readable_by_others_under_umask_022(tmp_path, contract_models, splice, command):
    folder = tmp_path / "in"
    folder.mkdir()
    save_rgb(folder / "a.png", splice[0])
    out = tmp_path / "out"
    previous = os.umask(0o022)
    try:
        assert main(["-q", command, str(folder), "--out", str(out), "--models", str(contract_models)]) == 0
    finally:
        os.umask(previous)
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in out.iterdir()}
    assert len(modes) >= 4 and set(modes.values()) == {"0o644"}, modes


def test_output_stems_are_unique():
    assert output_stems(["x/a.png", "y/a.jpg", "b.tif", "z/a.png"]) == ["a", "a_2", "b", "a_3"]


@pytest.fixture
def pairs_csv(tmp_path):
    rows = []
    for seed in range(2):
        forged, mask = make_splice(seed)
        save_rgb(tmp_path / f"t{seed}.png", forged)
        cv2.imwrite(str(tmp_path / f"t{seed}_gt.png"), mask.astype(np.uint8) * 255)
        rows.append((f"t{seed}.png", f"t{seed}_gt.png"))
    save_rgb(tmp_path / "authentic.png", make_splice(5)[0][::2, ::2])
    rows.append(("authentic.png", ""))
    save_rgb(tmp_path / "mismatch.png", make_splice(1)[0][:100])
    cv2.imwrite(str(tmp_path / "mismatch_gt.png"), np.zeros((50, 50), np.uint8))
    rows.append(("mismatch.png", "mismatch_gt.png"))
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["image", "mask"])
        writer.writerows(rows)
    return path


REPORT_KEYS = {"pixel_auc", "pixel_f1", "pixel_f1_best", "pixel_iou", "image_auc", "image_accuracy",
               "n_tampered", "n_authentic", "n_skipped"}


def test_evaluate_ones_equals_hand_computation(pairs_csv, tmp_path):
    out = tmp_path / "ones.json"
    assert main(["-q", "evaluate", "--pairs", str(pairs_csv), "--out", str(out), "--map", "ones"]) == 0
    report = json.loads(out.read_text())
    assert REPORT_KEYS <= set(report)
    fractions = [make_splice(seed)[1].mean() for seed in range(2)]
    expected_f1 = np.mean([2 * f / (1 + f) for f in fractions])  # precision f, recall 1
    # The report rounds to 6 decimals (<= 0.5e-6); the reference computes the same ratios of pixel
    # counts in another order of float64 operations (a few eps64 on values <= 1)
    rounding = 0.5e-6 + 8 * np.finfo(np.float64).eps
    assert report["pixel_f1"] == pytest.approx(expected_f1, abs=rounding)
    assert report["pixel_f1_best"] == pytest.approx(expected_f1, abs=rounding)
    assert report["pixel_iou"] == pytest.approx(np.mean(fractions), abs=rounding)
    assert report["pixel_auc"] == 0.5  # exact: all scores tie, U = P N / 2 in half-integer arithmetic
    assert report["image_auc"] == 0.5  # every image scores 1
    assert report["image_accuracy"] == pytest.approx(2 / 3, abs=rounding)
    assert (report["n_tampered"], report["n_authentic"], report["n_skipped"]) == (2, 1, 1)


def test_evaluate_enhanced_beats_ones_on_splices(pairs_csv, tmp_path, contract_models):
    reports = {}
    for kind in ("enhanced", "ones"):
        out = tmp_path / f"{kind}.json"
        args = ["-q", "evaluate", "--pairs", str(pairs_csv), "--out", str(out), "--map", kind,
                "--models", str(contract_models)]
        assert main(args) == 0
        reports[kind] = json.loads(out.read_text())
    assert reports["enhanced"]["pixel_f1"] > reports["ones"]["pixel_f1"] + 0.3
    assert reports["enhanced"]["image_auc"] is not None


def test_module_entry_point_and_bad_pairs_file(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "wsloc_runtime", "evaluate", "--pairs", str(tmp_path / "none.csv"),
         "--out", str(tmp_path / "r.json"), "--map", "ones"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    assert "pairs file not found" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "r.json").exists()


def test_evaluate_on_shared_casia_samples_matches_the_published_baseline(shared_data, tmp_path):
    out = tmp_path / "ela.json"
    pairs = shared_data / "casia2-samples.csv"
    assert main(["-q", "evaluate", "--pairs", str(pairs), "--out", str(out), "--map", "ones"]) == 0
    report = json.loads(out.read_text())
    # shared/data/README.md: all-tampered map on casia2-samples = 0.134 / 0.134 / 0.500.
    # the README publishes 3 decimals: the true value is within half the last digit of 0.134
    assert report["pixel_f1"] == pytest.approx(0.134, abs=0.0005 + 0.5e-6)
    assert report["pixel_auc"] == 0.5 and report["n_tampered"] == 17


@pytest.mark.parametrize("edges, verdict, flag", [((None, None), "uncertain", None),
                                                  ((None, 0.0), "likely manipulated", True),
                                                  ((2.0, None), "likely authentic", False)])
def test_is_manipulated_never_contradicts_the_verdict(tmp_path, contract_models, splice, monkeypatch,
                                                      edges, verdict, flag):
    """The JSON once said "is_manipulated": true beside "verdict": "uncertain"; the flag now follows
    the verdict (None while uncertain), in the result, its JSON and the results row."""
    from wsloc_runtime import pipeline
    from wsloc_runtime.readability import Readability

    # The band's edges as the verdict reads them: never confident, always manipulated, always authentic.
    monkeypatch.setattr(pipeline, "confident_edges", lambda band: edges)
    # The synthetic PNG keeps no JPEG history ("cannot tell"); the band is under test here, the
    # readability guard in tests/test_verdict.py.
    monkeypatch.setattr(Readability, "readable", property(lambda self: True))
    good = save_rgb(tmp_path / "forged.png", splice[0])
    localizer = Localizer(models_dir=contract_models)
    result = localizer.localize(str(good))
    assert (result.verdict, result.is_manipulated) == (verdict, flag)
    row = localize_to_files(localizer, str(good), tmp_path / "out", "forged")
    payload = json.loads((tmp_path / "out" / "forged.json").read_text())
    assert (payload["verdict"], payload["is_manipulated"]) == (verdict, flag)
    assert (row["verdict"], row["is_manipulated"]) == (verdict, flag)


def test_results_csv_leaves_is_manipulated_empty_while_uncertain(tmp_path, contract_models, splice, monkeypatch):
    from wsloc_runtime import pipeline

    folder = tmp_path / "in"
    folder.mkdir()
    save_rgb(folder / "a.png", splice[0])
    monkeypatch.setattr(pipeline, "confident_edges", lambda band: (None, None))  # every verdict uncertain
    monkeypatch.setattr(pipeline.Readability, "readable", property(lambda self: True))  # not "cannot tell"
    assert main(["-q", "batch", str(folder), "--out", str(tmp_path / "out"), "--models", str(contract_models)]) == 0
    with open(tmp_path / "out" / "results.csv", newline="") as stream:
        (row,) = list(csv.DictReader(stream))
    assert (row["verdict"], row["is_manipulated"]) == ("uncertain", "")


def test_results_csv_spells_booleans_as_the_json_does(tmp_path):
    """results.csv once wrote False/True where the JSON writes false/true."""
    from wsloc_runtime.batch import ResultsTable
    from wsloc_runtime.outputs import empty_row

    table = ResultsTable(tmp_path)
    for stem, flag in (("a", True), ("b", False), ("c", None)):
        table.add(empty_row(f"{stem}.jpg", stem) | {"is_manipulated": flag, "timings": {"decode": 0.1}})
    table.finish(["a", "b", "c"])
    with open(tmp_path / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["is_manipulated"] for row in rows] == ["true", "false", ""]
    assert json.loads(rows[0]["timings"]) == {"decode": 0.1} and rows[0]["notes"] == ""
    logged = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [json.dumps(row["is_manipulated"]) for row in logged] == ["true", "false", "null"]


def test_the_printed_line_is_one_short_line_and_gives_no_mask_share_for_an_authentic_verdict():
    """It once read as 400-560 characters a photo, the same explanation of the edges on every line;
    now one line of at most 120 characters, the edges said once after all lines."""
    row = {"file": "assets/examples/authentic_coffee.jpg", "stem": "authentic_coffee", "verdict": "uncertain",
           "probability": 0.773, "mask_fraction": 0.198, "could_show": "could show pastes, copies"}
    assert verdict_line(row) == "assets/examples/authentic_coffee.jpg: Uncertain 0.77 | could show pastes, copies | mask 19.8%"
    authentic = verdict_line(dict(row, verdict="likely authentic", probability=0.05))
    assert authentic.endswith("Likely authentic 0.05 | could show pastes, copies | no mask") and "%" not in authentic
    deep = verdict_line(dict(row, file="/" + "deep/" * 40 + "photo.jpg"))
    assert len(deep) == LINE_WIDTH and deep.startswith("...") and "photo.jpg: Uncertain 0.77" in deep
    legend = legend_lines((0.2, 0.8), "out/")
    assert legend[0] == 'Score: 0 = no sign of editing, 1 = strong signs. "Likely manipulated" from 0.80.'
    assert '"Likely authentic" below 0.20' in legend[1] and all(len(line) <= LINE_WIDTH for line in legend)
    assert "never" in legend_lines((0.2, 1.0))[0]  # a band open at the top: never "likely manipulated"
    # The sentences the app and the report show keep the whole explanation.
    assert verdict_sentence("likely manipulated", 0.91, (0.2, 0.8), 0.1).endswith(
        '"likely manipulated" from 0.80, and "likely authentic" below 0.20 only where its traces would have shown '
        'an edit. The mask marks the likely edited area: 10.0% of the photo.')
    assert "threshold" not in verdict_sentence("likely manipulated", 0.6, (0.5, 0.5), 0.1)


def test_every_line_of_the_examples_fits_in_120_characters_and_out_is_optional(tmp_path):
    """``wsloc localize assets/examples`` as a newcomer types it, without --out: every line at most
    120 characters, the outputs in ./wsloc-results, named by the summary; --jsonl gives one JSON
    object per photo on stdout and nothing else there."""
    (tmp_path / "assets").symlink_to(REPO_ROOT / "assets", target_is_directory=True)
    done = _wsloc("localize", "assets/examples", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) >= 8 and all(len(line) <= LINE_WIDTH for line in lines), [l for l in lines if len(l) > 120]
    assert lines[-1].endswith("outputs in wsloc-results/") and (tmp_path / "wsloc-results" / "spliced_boat.json").is_file()
    assert "\r" not in done.stderr, "no progress bar when stderr is not a terminal"
    records = _wsloc("localize", "assets/examples/spliced_boat.jpg", "assets/examples/copymove_hats.jpg", "--jsonl",
                     "--out", "j", cwd=tmp_path)
    parsed = [json.loads(line) for line in records.stdout.splitlines()]
    assert [Path(r["file"]).name for r in parsed] == ["spliced_boat.jpg", "copymove_hats.jpg"]
    assert all(r["verdict"] and r["error"] is None and r["could_show"].startswith("could show") for r in parsed)
    assert "2 of 2 images analysed" in records.stderr


def test_a_folder_without_images_is_a_failure_with_a_summary_line(tmp_path, contract_models, capsys):
    """It once exited 2 with only an error line, unlike every other failed input (exit 1)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    out = tmp_path / "out"
    assert main(["localize", str(tmp_path / "empty"), "--out", str(out), "--models", str(contract_models)]) == 1
    captured = capsys.readouterr()
    assert f"error: {tmp_path / 'empty'}: no image files in this folder" in captured.err
    assert captured.out.strip().splitlines()[-1] == "0 of 0 images analysed (0 failed), 1 folder without images; nothing written"
    assert not out.exists()


def test_a_run_that_wrote_nothing_does_not_point_at_an_output_folder(tmp_path, contract_models, capsys):
    """It once ended "outputs in out/" for a folder it never created."""
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    assert main(["localize", str(bad), "--out", str(out), "--models", str(contract_models)]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == "0 of 1 images analysed (1 failed); nothing written"
    assert not out.exists()


# --------------------------------------------------------------------------- stdout, stderr, --help (issue 27)


def _wsloc(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WSLOC_PROVIDERS="CPUExecutionProvider",
               PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "wsloc_runtime", *arguments], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["localize", "batch"])
def test_the_summary_goes_to_stdout_and_the_diagnostics_to_stderr(command, tmp_path, contract_models, splice):
    """``wsloc batch ... > log`` once left the log empty: batch printed its summary on stderr."""
    folder = tmp_path / "photos"
    folder.mkdir()
    save_rgb(folder / "forged.png", splice[0])
    (folder / "broken.png").write_text("not an image")
    done = _wsloc("-q", command, str(folder), "--out", str(tmp_path / "out"), "--models", str(contract_models),
                  cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    out, err = done.stdout.strip().splitlines(), done.stderr.strip().splitlines()
    summary = out[-1]
    if command == "localize":
        assert summary.startswith("1 of 2 images analysed (1 failed)"), done.stdout
    else:
        assert summary.startswith("2 images: 1 analysed in this run, 0 skipped as done before, 1 failed"), done.stdout
    assert summary.endswith(("/", os.sep)) or "results in" in summary
    assert "broken.png" in done.stderr and "broken.png" not in done.stdout
    assert not any(line.startswith(summary[:12]) for line in err), "the summary is printed once, on stdout"


def test_a_truncated_png_gives_one_line_and_no_decoder_noise(tmp_path, contract_models, splice, capfd):
    """libpng printed "libpng error: Not enough image data" (C's stderr, through OpenCV's imdecode)
    above wsloc's own message; capfd sees file descriptor 2 itself, where that line went."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(splice[0], cv2.COLOR_RGB2BGR))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(encoded.tobytes()[: encoded.size // 2])
    capfd.readouterr()
    code = main(["-q", "localize", str(truncated), "--out", str(tmp_path / "out"), "--models", str(contract_models)])
    captured = capfd.readouterr()
    assert code == 1
    assert captured.err.strip().splitlines() == [f"error: {truncated}: not a readable image (the file is truncated)"]
    assert "libpng" not in captured.err + captured.out


def test_damaged_files_of_every_kind_fail_quietly(capfd):
    """Each damaged file is refused by wsloc alone: no libpng line, no OpenCV log line, no Pillow warning."""
    import io

    from PIL import Image, UnidentifiedImageError

    from wsloc_runtime.errors import InvalidImageError
    from wsloc_runtime.imageio import load_image

    rgb = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    encoded = {ext: cv2.imencode(ext, rgb)[1].tobytes() for ext in (".png", ".jpg", ".tiff", ".webp", ".bmp")}
    broken_header = encoded[".png"][:16] + b"\0" * 8 + encoded[".png"][24:]  # width and height 0
    damaged = [data[: len(data) // 2] for data in encoded.values()] + [
        broken_header, b"II*\x00" + b"\x07" * 200, b"MM\x00*" + b"\x00" * 100, b"GIF89a" + b"\x01" * 50]
    capfd.readouterr()
    for data in damaged:
        with pytest.raises(InvalidImageError, match="not a readable image"):
            load_image(data)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == "", captured.err
    # The OpenCV fallback still reads what Pillow cannot, and leaves OpenCV's log level as it was.
    level = cv2.utils.logging.getLogLevel()
    hdr = cv2.imencode(".hdr", rgb.astype(np.float32) / 255)[1].tobytes()
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(hdr))
    assert load_image(hdr).shape == (60, 80, 3)
    assert cv2.utils.logging.getLogLevel() == level


def _help_texts() -> dict[str, str]:
    from wsloc_runtime.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 (argparse keeps them here)
    return {"wsloc": parser.format_help(), **{f"wsloc {name}": sub.format_help() for name, sub in commands.items()}}


def test_help_figures_are_the_measured_ones():
    """``wsloc batch --help`` once said a 108 MP photo needs about 1.4 GB where the README measured
    3.1 GB: every size, memory or time figure in a --help must be one the docs state."""
    import re

    from wsloc_runtime.options import LARGEST_MEASURED

    docs = " ".join((REPO_ROOT / name).read_text(encoding="utf-8")
                    for name in ("README.md", "docs/usage.md", "docs/performance.md")).split()
    docs = " ".join(docs)
    helps = _help_texts()
    assert all(LARGEST_MEASURED in " ".join(text.split()) for name, text in helps.items() if name != "wsloc"
               and "--max-megapixels" in text)
    measured = LARGEST_MEASURED.split("took ", 1)[1].split(" on ")[0]  # "24 s and 3.1 GB at its peak"
    assert measured in docs, f"the docs no longer say {measured!r}: update LARGEST_MEASURED or the docs"
    for name, text in helps.items():
        for figure in re.findall(r"\d+(?:\.\d+)?\s(?:GB|MB|ms|s)\b", " ".join(text.split())):
            assert figure in docs, f"{name} --help says {figure!r}, which neither README.md, docs/usage.md nor docs/performance.md states"
