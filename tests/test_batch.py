"""``wsloc batch``: results table, resuming after a kill, bad files, list inputs, worker processes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import psutil
import pytest
from skimage import data

from tests.contract_models import build_contract_model_set
from wsloc_runtime import batch, cli, outputs
from wsloc_runtime.batch import batch_summary, collect_inputs, run_batch
from wsloc_runtime.errors import Stopped

REPO = Path(__file__).resolve().parents[1]
GOOD = 12


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return build_contract_model_set(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def photos(tmp_path) -> Path:
    """GOOD small photos (crops of one picture, JPEG and PNG) and one corrupt ``.jpg``."""
    folder = tmp_path / "in"
    folder.mkdir()
    rgb = data.astronaut()
    for index in range(GOOD):
        crop = rgb[index * 16 : index * 16 + 192, index * 20 : index * 20 + 256]
        suffix = ".jpg" if index % 2 else ".png"
        cv2.imwrite(str(folder / f"photo{index:02d}{suffix}"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    return folder


def batch_command(inputs: Path, out: Path, models: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wsloc_runtime", "-q", "batch", str(inputs), "--out", str(out),
            "--models", str(models), *extra]


def environment() -> dict:
    env = dict(os.environ, WSLOC_PROVIDERS="CPUExecutionProvider")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def json_stamps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}


def good_stems() -> set[str]:
    return {f"photo{index:02d}" for index in range(GOOD)}


def wait_for_outputs(run: subprocess.Popen, out: Path, count: int) -> None:
    deadline = time.monotonic() + 300  # generous: the host may be busy; this is not a timing assertion
    while len(list(out.glob("photo*.json"))) < count:
        assert run.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no outputs appeared"
        time.sleep(0.02)


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running; a zombie has ended (nobody may reap it once its parent is gone)."""
    living = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.NoSuchProcess:
            pass
    return living


def assert_rerun_finishes_each_image_once(photos: Path, out: Path, models: Path, before: dict[str, int]) -> None:
    """A plain rerun after an interrupted one: redoes none of ``before`` and finishes every other image."""
    rerun = subprocess.run(batch_command(photos, out, models), cwd=REPO, env=environment(),
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 1, rerun.stderr  # one input is corrupt
    assert "corrupt.jpg" in rerun.stderr.split("failed:")[-1]
    summary = rerun.stdout.strip().splitlines()[-1]  # the summary on stdout, the failures on stderr
    assert f"{GOOD - len(before)} analysed in this run, {len(before)} skipped as done before, 1 failed" in summary
    after = json_stamps(out)
    assert {name: after[name] for name in before} == before
    assert {Path(name).stem for name in after} == good_stems()
    assert not list(out.glob(".*.part"))
    rows = read_csv(out / "results.csv")
    assert [row["stem"] for row in rows] == sorted(good_stems() | {"corrupt"})
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [line["stem"] for line in lines] == [row["stem"] for row in rows]


def test_killed_batch_resumes_and_finishes_every_image_once(photos, models, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(batch_command(photos, out, models), cwd=REPO, env=environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_outputs(first, out, 3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = json_stamps(out)
    assert 3 <= len(before) < GOOD, "the kill must land half-way for this test to mean anything"

    assert_rerun_finishes_each_image_once(photos, out, models, before)
    for stem in good_stems():
        for suffix in ("_heatmap.png", "_mask.png", "_overlay.png"):
            assert cv2.imread(str(out / f"{stem}{suffix}")) is not None
    by_stem = {row["stem"]: row for row in read_csv(out / "results.csv")}
    assert "not a readable image" in by_stem["corrupt"]["error"]
    for stem in good_stems():
        row = by_stem[stem]
        assert row["error"] == ""
        assert 0.0 <= float(row["probability"]) <= 1.0
        assert row["is_manipulated"] == {"likely manipulated": "true", "likely authentic": "false"}.get(
            row["verdict"], "")  # spelt as in the JSON; empty while uncertain
        assert 0.0 <= float(row["mask_fraction"]) <= 1.0
        payload = json.loads((out / f"{stem}.json").read_text())
        # exact: the row holds the JSON's (already rounded) float, and str/float round-trips a float64
        assert float(row["probability"]) == payload["probability"]
        assert row["verdict"] == payload["verdict"]


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_no_worker_outlives_a_stopped_two_worker_batch(photos, models, tmp_path, stop):
    """However the batch's process ends, its worker processes and multiprocessing's resource
    tracker end with it (a SIGKILL leaves it no chance to stop them itself); SIGTERM also keeps
    what finished, says how far it got and exits with 128 + 15."""
    out = tmp_path / "out"
    log = tmp_path / "stdout.txt"
    with open(log, "w") as stdout:
        first = subprocess.Popen(batch_command(photos, out, models, "--workers", "2"), cwd=REPO,
                                 env=environment(), stdout=stdout, stderr=subprocess.DEVNULL)
    wait_for_outputs(first, out, 2)
    helpers = psutil.Process(first.pid).children(recursive=True)
    assert len(helpers) >= 2  # two workers (and the resource tracker)
    first.send_signal(stop)
    code = first.wait(timeout=120)

    deadline = time.monotonic() + 10
    while alive(helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [" ".join(process.cmdline())[-80:] for process in alive(helpers)]
    for process in alive(helpers):  # do not leave them to slow down the rest of the suite
        process.kill()
    assert not survivors

    if stop == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM
        summary = log.read_text().strip().splitlines()[-1]
        assert summary.startswith("stopped by SIGTERM after ") and "run the same command again" in summary
        finished = {row["stem"] for row in read_csv(out / "results.csv") if not row["error"]}
        assert finished == {Path(name).stem for name in json_stamps(out)}  # the table was rewritten
    before = json_stamps(out)
    assert 2 <= len(before) < GOOD, "the stop must land half-way for this test to mean anything"
    assert_rerun_finishes_each_image_once(photos, out, models, before)


def test_rerun_of_finished_batch_redoes_nothing_and_rebuilds_lost_table(photos, models, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["-q", "batch", str(photos), "--out", str(out), "--models", str(models)]) == 1
    stamps = json_stamps(out)
    # A run killed between writing an image's JSON and logging its row: the row is rebuilt, not the image.
    (out / "results.jsonl").unlink()
    (out / "results.csv").unlink()
    assert cli.main(["-q", "batch", str(photos), "--out", str(out), "--models", str(models)]) == 1
    assert json_stamps(out) == stamps
    rows = read_csv(out / "results.csv")
    assert {row["stem"] for row in rows if not row["error"]} == good_stems()
    assert [row["stem"] for row in rows if row["error"]] == ["corrupt"]


def test_list_file_input_and_two_worker_processes(photos, models, tmp_path):
    listing = tmp_path / "list.txt"
    names = sorted(p.name for p in photos.iterdir() if p.name != "corrupt.jpg")[:4]
    listing.write_text("# four photos\n\n" + "\n".join(f"in/{name}" for name in names) + "\n")
    assert collect_inputs(listing) == [str(tmp_path / "in" / name) for name in names]
    out = tmp_path / "out"
    result = subprocess.run(batch_command(listing, out, models, "--workers", "2"), cwd=REPO, env=environment(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = read_csv(out / "results.csv")
    assert [row["stem"] for row in rows] == [Path(name).stem for name in names]
    assert all(row["error"] == "" for row in rows)


def test_missing_models_stop_the_batch_with_a_clear_error(photos, tmp_path, capsys):
    code = cli.main(["-q", "batch", str(photos), "--out", str(tmp_path / "out"), "--models", str(tmp_path / "none")])
    assert code == 2
    assert "wcbnet" in capsys.readouterr().err


def test_empty_folder_is_a_failure_with_a_summary_line(tmp_path, models, capsys):
    """Like any failed input: exit 1 and a last line that says what happened (it was exit 2, no summary)."""
    (tmp_path / "empty").mkdir()
    assert cli.main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "out"), "--models", str(models)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"error: {tmp_path / 'empty'}: no images found"]
    assert captured.out.strip().splitlines() == ["0 images: nothing analysed, nothing written"]
    assert not (tmp_path / "out").exists()


def test_file_added_between_runs_that_shifts_stems_is_not_mistaken_for_done(models, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rgb = data.astronaut()[:160, :200]
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    argv = ["-q", "batch", str(folder), "--out", str(out), "--models", str(models)]
    assert cli.main(argv) == 0
    # a.bmp sorts first, so it now takes the stem "a" and a.png becomes "a_2".
    cv2.imwrite(str(folder / "a.bmp"), cv2.cvtColor(rgb[:, ::-1], cv2.COLOR_RGB2BGR))
    assert cli.main(argv) == 0
    rows = read_csv(out / "results.csv")
    assert [(Path(row["file"]).name, row["stem"]) for row in rows] == [("a.bmp", "a"), ("a.png", "a_2")]
    assert Path(json.loads((out / "a.json").read_text())["input"]).name == "a.bmp"
    assert Path(json.loads((out / "a_2.json").read_text())["input"]).name == "a.png"


def batch_settings(photos: Path, out: Path, models: Path):
    return cli.build_parser().parse_args(["batch", str(photos), "--out", str(out), "--models", str(models)])


def assert_every_json_is_a_row(out: Path, outcome) -> set[str]:
    """After a stop: each ``<stem>.json`` present is a finished row of results.csv, and the count
    the summary line gives is theirs."""
    written = {Path(name).stem for name in json_stamps(out)}
    rows = read_csv(out / "results.csv")
    assert {row["stem"] for row in rows if not row["error"]} == written
    assert outcome.done == len(written)
    assert f"stopped by SIGTERM after {len(written)} of {outcome.total} images" in batch_summary(outcome, out)
    return written


def test_stop_right_after_an_image_is_written_keeps_its_row(photos, models, tmp_path, monkeypatch):
    """A SIGTERM that lands after the third image's JSON is written and before its row is
    collected (here: raised at that very point, so it does not depend on the machine's load)."""
    monkeypatch.setenv("WSLOC_PROVIDERS", "CPUExecutionProvider")
    real_write = outputs.write_json_atomic
    written = []

    def write_then_stop(path, payload):
        real_write(path, payload)
        written.append(Path(path).stem)
        if len(written) == 3:
            raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(outputs, "write_json_atomic", write_then_stop)
    out = tmp_path / "out"
    outcome = run_batch(collect_inputs(photos), out, batch_settings(photos, out, models), show_progress=False)
    assert outcome.stopped_by == signal.SIGTERM
    assert assert_every_json_is_a_row(out, outcome) == set(written) and len(written) == 3


def test_stop_while_two_workers_have_results_waiting_keeps_every_written_image(photos, models, tmp_path,
                                                                               monkeypatch):
    """The race of issue 19: with two worker processes, the stop arrives while finished images wait
    to be collected. The driver's first collected row holds the stop until two more JSONs are on
    disk (written by the workers, not yet collected), whatever the load."""
    monkeypatch.setenv("WSLOC_PROVIDERS", "CPUExecutionProvider")
    out = tmp_path / "out"
    real_add = batch.ResultsTable.add

    stopped = []

    def add_then_stop(self, row):
        if stopped:  # the one signal has come; what follows is the driver's clean-up
            return real_add(self, row)
        stopped.append(row["stem"])
        deadline = time.monotonic() + 300  # generous: a busy host only makes this slower
        while len(list(out.glob("photo*.json"))) < 3:
            assert time.monotonic() < deadline, "the workers wrote no more results"
            time.sleep(0.02)
        raise Stopped(signal.SIGTERM)  # before this row is logged: it, too, must be recovered

    monkeypatch.setattr(batch.ResultsTable, "add", add_then_stop)
    outcome = run_batch(collect_inputs(photos), out, batch_settings(photos, out, models), workers=2,
                        show_progress=False)
    assert outcome.stopped_by == signal.SIGTERM
    assert len(assert_every_json_is_a_row(out, outcome)) >= 3
    assert not list(out.glob(".*.part"))


def test_thread_rule_shares_the_cores_out_and_never_oversubscribes():
    # 16 workers on 16 cores run one thread each (16 in all), not 16 x 16.
    assert [batch.worker_threads(w, cores=16) for w in (1, 2, 4, 8, 16, 32)] == [16, 8, 4, 2, 1, 1]
    assert batch.worker_threads(2, cores=2) == 1
    assert batch.worker_threads(1, cores=2) == 2
    assert batch.worker_threads(4, requested=3, cores=16) == 3  # --threads-per-worker wins


def test_each_worker_sets_its_threads_in_onnxruntime_opencv_and_blas(models, monkeypatch):
    """The threads each worker process really set: every onnxruntime session, OpenCV and numpy's
    BLAS (no timing). The rule is computed in the batch's process from its usable cores."""
    from wsloc_runtime import threads as thread_rule

    monkeypatch.setattr(thread_rule, "usable_cores", lambda: 6)  # 2 workers on "6 cores": 3 threads each
    settings = batch.argparse.Namespace(models=str(models), variants="2,3,4", segmenter="graph",
                                        segmenter_models=None, providers="CPUExecutionProvider", work_max_side=1024,
                                        threads=0, views="none", max_megapixels=None, threads_per_worker=0)
    with batch.worker_pool(settings, 2) as pool:
        reports = [pool.submit(batch.worker_thread_counts).result(timeout=300) for _ in range(4)]
    for report in reports:
        assert report["pid"] != os.getpid()
        assert report["onnxruntime"] == [3, 3, 3]
        assert report["opencv"] == 3
        # OpenBLAS never goes above the machine's own cores.
        assert report["blas"] == min(3, os.cpu_count())

    settings.threads_per_worker = 1
    with batch.worker_pool(settings, 2) as pool:
        report = pool.submit(batch.worker_thread_counts).result(timeout=300)
    assert (report["onnxruntime"], report["opencv"], report["blas"]) == ([1, 1, 1], 1, 1)


def test_threads_per_worker_flag(photos, models, tmp_path):
    args = cli.build_parser().parse_args(["batch", str(photos), "--out", str(tmp_path / "o"), "--models", str(models),
                                          "--threads-per-worker", "1"])
    assert args.threads_per_worker == 1
    assert batch.requested_threads(args) == 1
