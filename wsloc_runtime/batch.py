"""``wsloc batch``: localize a folder (or a list) of images, resumably, on local processes or Ray.

For every input the outputs of ``wsloc localize`` are written (``<stem>_heatmap.png``,
``<stem>_mask.png``, ``<stem>_overlay.png``, ``<stem>.json``, each atomically, the JSON
last), plus one results table for the whole batch:

* ``results.jsonl``: one JSON object per input, appended (and fsync'ed) as each image
  finishes, so a crash loses at most the images in flight;
* ``results.csv``: the same rows in input order, rewritten at the end of every run.

Resuming: an input whose ``<stem>.json`` exists is done and is skipped. Stems come from
:func:`wsloc_runtime.outputs.output_stems` over the sorted input list, so a rerun with the
same inputs maps every image to the same files. Failed inputs leave no JSON and are
tried again on the next run.

Each worker (process or Ray actor) constructs ONE :class:`~wsloc_runtime.Localizer` and
reuses it for every image it gets: sessions and the segmenter are loaded once.

Stopping: worker processes end with the process that started them, however it ends
(SIGKILL included). From the command line, SIGTERM or Ctrl-C stops the workers at once
(images in flight are redone by the next run), keeps every finished result (every
``<stem>.json`` on disk, collected or not, is a row of the rewritten table), rewrites the
results table and exits with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import io
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from .errors import Stopped, WslocError
from .imageio import IMAGE_SUFFIXES, _atomic_write, image_files  # noqa: F401  (IMAGE_SUFFIXES: for importers)
from .options import add_localizer_arguments, localizer_from_args
from .provenance import read_trust_anchors
from .outputs import ROW_FIELDS, csv_cells, localize_to_files, output_stems, row_from_payload, verdict_counts
from .threads import limit_threads, thread_counts, thread_environment, threads_per_worker
from .views import DEFAULT_TEST_TIME_VIEWS

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
CSV_COLUMNS = ROW_FIELDS
#: Settings a worker needs to rebuild the Localizer with :func:`wsloc_runtime.options.localizer_from_args`.
LOCALIZER_SETTINGS = ("models", "variants", "segmenter", "segmenter_models", "providers", "work_max_side", "threads",
                      "views", "max_megapixels", "threads_per_worker")
#: How often a worker checks that the batch's process is still its parent (where prctl is missing).
PARENT_CHECK_INTERVAL_S = 0.5
PR_SET_PDEATHSIG = 1


class BatchSetupError(WslocError):
    """A worker could not construct its Localizer (missing models, bad options): nothing can run."""


def collect_inputs(source: str | os.PathLike) -> list[str]:
    """Image paths from a folder (see :func:`image_files`) or a list file
    (one path per line, relative to the list's folder; blank lines and ``#`` comments ignored)."""
    path = Path(source)
    if path.is_dir():
        return image_files(path)
    if path.is_file():
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                entry = Path(line)
                entries.append(str(entry if entry.is_absolute() else path.parent / entry))
        return entries
    raise WslocError(f"{source}: no such folder or list file")


# --- work done inside each worker -------------------------------------------------------------

_LOCALIZER = None
_SETUP_ERROR: str | None = None
#: The PEM trust list (``--trust-list``) this worker checks Content Credentials against, or None.
_TRUST_ANCHORS: str | None = None


def _init_worker(settings: argparse.Namespace, threads: int) -> None:
    """Build this worker's one Localizer; a failure is kept and reported by the first task.

    ``threads`` (see :func:`worker_threads`) is given to OpenCV and numpy's BLAS here, and to
    onnxruntime through ``settings.threads`` (each session's ``intra_op_num_threads``): each
    library would otherwise start one thread per core in every worker."""
    global _LOCALIZER, _SETUP_ERROR, _TRUST_ANCHORS
    if threads > 0:
        limit_threads(threads)
    _LOCALIZER, _SETUP_ERROR = None, None  # workers=1 runs in the caller's process, maybe more than once
    try:
        _TRUST_ANCHORS = read_trust_anchors(getattr(settings, "trust_list", None))
        _LOCALIZER = localizer_from_args(settings)
    except Exception as error:  # reported once per task; the driver stops the batch
        _SETUP_ERROR = f"{type(error).__name__}: {error}"


def _init_pool_worker(parent_pid: int, settings: argparse.Namespace, threads: int) -> None:
    """Initializer of a local worker process: tie its life to the batch's process, leave Ctrl-C
    to that process (which stops the workers itself), then build the Localizer."""
    _die_with_parent(parent_pid)
    # A terminal sends Ctrl-C to the whole process group; a worker would print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(settings, threads)


def _die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends, even by SIGKILL, which leaves it no chance to
    stop its workers: a worker left behind would go on writing results and holding memory.

    Linux sends SIGKILL on the parent's death through ``prctl(PR_SET_PDEATHSIG)`` (the pool's
    workers are started by the thread that submits, which lives as long as the batch does); a
    thread that watches for a new parent pid covers other systems and a parent that died
    before the prctl call.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no libc prctl (unusual builds): the watcher still works
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="wsloc-parent-watch", daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_INTERVAL_S)
    os._exit(1)  # not sys.exit: that would only end this thread


def worker_thread_counts() -> dict:
    """The threads this worker's libraries were given: onnxruntime per session, OpenCV, BLAS
    (for tests and benchmarks; run it as a task in a worker)."""
    sessions = [model.session for model in (_LOCALIZER.models if _LOCALIZER is not None else [])]
    return {"pid": os.getpid(),
            "onnxruntime": [session.get_session_options().intra_op_num_threads for session in sessions],
            **thread_counts()}


def _localize_one(source: str, stem: str, out_dir: str) -> dict:
    """Localize one image with this worker's Localizer and write its files. Returns its results row."""
    if _LOCALIZER is None:
        raise BatchSetupError(_SETUP_ERROR or "the worker has no Localizer")
    return localize_to_files(_LOCALIZER, source, Path(out_dir), stem, trust_anchors=_TRUST_ANCHORS)


# --- the driver -------------------------------------------------------------------------------


class ResultsTable:
    """``results.jsonl`` (append-only log of finished rows) and ``results.csv`` (one row per input)."""

    def __init__(self, out_dir: Path) -> None:
        self.jsonl = out_dir / RESULTS_JSONL
        self.csv = out_dir / RESULTS_CSV
        self.rows: dict[str, dict] = {}  # by stem; a later row (a retried failure) replaces an earlier one
        if self.jsonl.is_file():
            for line in self.jsonl.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of a run killed mid-write
                if isinstance(row, dict) and "stem" in row:
                    self.rows[row["stem"]] = row
        self._stream = None

    def add(self, row: dict) -> None:
        self.rows[row["stem"]] = row
        if self._stream is None:
            self.jsonl.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(self.jsonl, "a", encoding="utf-8")
        self._stream.write(json.dumps(row) + "\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def finish(self, stems: Sequence[str]) -> list[dict]:
        """Rewrite both files with exactly one row per input, in input order; returns the rows."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        rows = [self.rows[stem] for stem in stems if stem in self.rows]
        text = "".join(json.dumps(row) + "\n" for row in rows)
        _atomic_write(self.jsonl, lambda stream: stream.write(text.encode("utf-8")))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(csv_cells(row))
        _atomic_write(self.csv, lambda stream: stream.write(buffer.getvalue().encode("utf-8")))
        return rows


def _finished(done: Path, source: str) -> bool:
    """Whether ``done`` (a ``<stem>.json``) holds this input's result.

    Stems of inputs sharing a name (``a.jpg``, ``a.png``) get suffixes in input order, so a
    file added to the folder between runs can shift them: the JSON must name this input's
    file (by name, so a folder spelled differently on the rerun still counts)."""
    try:
        payload = json.loads(done.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(payload, dict) and Path(str(payload.get("input", ""))).name == Path(source).name


def _row_from_json(path: Path, source: str, stem: str) -> dict:
    """The results row of an image finished by an earlier run that was killed before logging it."""
    return row_from_payload(json.loads(path.read_text(encoding="utf-8")), source, stem)


def worker_threads(workers: int, requested: int = 0, cores: int | None = None) -> int:
    """Threads per worker for onnxruntime, OpenCV and numpy's BLAS alike: as asked, else the usable
    cores shared out, ``max(1, cores // workers)`` (1 each for 2 workers on 2 cores, 1 each for 16
    on 16; :func:`wsloc_runtime.threads.threads_per_worker`)."""
    return threads_per_worker(workers, requested, cores)


def requested_threads(settings: argparse.Namespace) -> int:
    """``--threads-per-worker``, else ``--threads`` (onnxruntime's, which batch applies to all three), else 0."""
    return int(getattr(settings, "threads_per_worker", None) or getattr(settings, "threads", None) or 0)


@contextlib.contextmanager
def worker_pool(settings: argparse.Namespace, workers: int) -> Iterator[ProcessPoolExecutor]:
    """``workers`` local worker processes, each with its Localizer and its share of the threads
    (:func:`worker_threads`). ``spawn``: a fork would copy any onnxruntime thread pools of the
    parent into the children; the workers start inside :func:`thread_environment`, so their BLAS
    loads with their share of the threads."""
    import multiprocessing

    threads = worker_threads(workers, requested_threads(settings))
    worker_settings = argparse.Namespace(**{**vars(settings), "threads": threads})
    context = multiprocessing.get_context("spawn")
    with thread_environment(threads), \
            ProcessPoolExecutor(workers, mp_context=context, initializer=_init_pool_worker,
                                initargs=(os.getpid(), worker_settings, threads)) as pool:
        yield pool


def _local_rows(todo, out_dir: Path, settings: argparse.Namespace, workers: int) -> Iterator[dict]:
    if workers <= 1:
        threads = worker_threads(workers, requested_threads(settings))
        _init_worker(argparse.Namespace(**{**vars(settings), "threads": threads}), threads)
        for source, stem in todo:
            yield _localize_one(source, stem, str(out_dir))
        return
    with worker_pool(settings, workers) as pool:
        pending = iter(todo)
        running = set()
        try:
            while True:
                # At most two tasks per worker are queued: a crash or Ctrl-C loses little work.
                while len(running) < 2 * workers:
                    item = next(pending, None)
                    if item is None:
                        break
                    running.add(pool.submit(_localize_one, item[0], item[1], str(out_dir)))
                if not running:
                    return
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        except BaseException:  # Stopped, KeyboardInterrupt, a setup error, or the caller closing us
            _terminate_workers(pool)
            raise


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now, images in flight included: leaving the ``with`` block would wait
    for them (14 s for a 108 MP photo). Their files are written atomically, so nothing
    half-written stays, and the next run redoes them."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    # Before 3.14 the pool keeps its processes only in this attribute (pid -> Process); the pool
    # then sees them die, and leaving the ``with`` block waits until they are gone.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _ray_rows(todo, out_dir: Path, settings: argparse.Namespace, workers: int, address: str) -> Iterator[dict]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as error:
        raise WslocError("--ray needs Ray: pip install ray") from error
    if not ray.is_initialized():
        # "" = RAY_ADDRESS or a running local cluster if there is one, else a new local instance.
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": _package_root()}})
    resources = ray.cluster_resources()
    actors = workers if workers > 0 else max(1, int(resources.get("CPU", 1)))
    gpus = float(resources.get("GPU", 0))
    # Every actor holds its own sessions; with GPUs, share them out so CUDA is used where present.
    gpus_per_actor = min(1.0, gpus / actors) if gpus else 0
    # Each actor reserves the cores its onnxruntime and OpenCV threads will use, so Ray never
    # packs more threads onto a node than it has cores (see worker_threads).
    threads = worker_threads(actors, requested_threads(settings), cores=int(resources.get("CPU", 1)))
    worker_settings = argparse.Namespace(**{**vars(settings), "threads": threads})

    @ray.remote(num_cpus=threads, num_gpus=gpus_per_actor)
    class LocalizerActor:
        def __init__(self) -> None:
            _init_worker(worker_settings, threads)

        def localize(self, source: str, stem: str) -> dict:
            return _localize_one(source, stem, str(out_dir))

    pool = ActorPool([LocalizerActor.remote() for _ in range(actors)])
    try:
        yield from pool.map_unordered(lambda actor, item: actor.localize.remote(*item), list(todo))
    except ray.exceptions.RayTaskError as error:
        cause = error.as_instanceof_cause()
        if isinstance(cause, BatchSetupError):
            raise BatchSetupError(str(cause).splitlines()[-1]) from None
        raise


def _package_root() -> str:
    """The folder holding ``wsloc_runtime``, for Ray workers on this machine (a cluster needs it installed)."""
    root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH", "")
    return root + (os.pathsep + existing if existing else "")


@dataclass
class BatchOutcome:
    """What :func:`run_batch` did.

    Attributes:
        rows: one results row per input that has one, in input order (a run stopped early
            has none for the images it did not reach).
        failures: ``(file, error)`` of each failed input.
        total: how many inputs there were.
        skipped: inputs an earlier run had finished, not redone.
        stopped_by: the signal that stopped the run early (see :func:`stop_on_signals`), else ``None``.
    """

    rows: list[dict]
    failures: list[tuple[str, str]]
    total: int
    skipped: int
    stopped_by: int | None = None

    @property
    def done(self) -> int:
        return sum(1 for row in self.rows if not row.get("error"))


def run_batch(
    inputs: Sequence[str],
    out_dir: str | os.PathLike,
    settings: argparse.Namespace,
    workers: int = 1,
    ray_address: str | None = None,
    show_progress: bool = True,
) -> BatchOutcome:
    """Localize ``inputs`` into ``out_dir``, skipping those already done.

    Args:
        settings: the ``models`` options of the CLI (see :data:`LOCALIZER_SETTINGS`).
        workers: local worker processes (1 = in this process), or Ray actors (0 = one per CPU).
        ray_address: ``None`` runs locally; a string runs on Ray (``""`` = local/auto).

    The results table is rewritten however the run ends; a :class:`Stopped` raised while it
    runs (:func:`stop_on_signals`) ends it early with ``stopped_by`` set instead of raising.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_partial_files(out_dir)
    settings = argparse.Namespace(**{k: getattr(settings, k, None) for k in LOCALIZER_SETTINGS})
    settings.threads = settings.threads or 0
    settings.views = settings.views or DEFAULT_TEST_TIME_VIEWS
    if settings.models:  # workers may run elsewhere (Ray) or in another folder
        settings.models = str(Path(settings.models).resolve())
    stems = output_stems(inputs)
    table = ResultsTable(out_dir)
    todo = []
    for source, stem in zip(inputs, stems):
        done = out_dir / f"{stem}.json"
        if _finished(done, source):
            logged = table.rows.get(stem)
            if logged is None or logged.get("error") or Path(str(logged.get("file"))).name != Path(source).name:
                table.add(_row_from_json(done, source, stem))
        else:
            todo.append((source, stem))
    progress = tqdm(total=len(inputs), initial=len(inputs) - len(todo), desc="batch", unit="img",
                    file=sys.stderr, disable=not show_progress or not sys.stderr.isatty())
    if ray_address is None:
        rows = _local_rows(todo, out_dir, settings, workers)
    else:
        rows = _ray_rows(todo, out_dir, settings, workers, ray_address)
    stopped_by = None
    logged_now: set[str] = set()
    try:
        for row in rows:
            table.add(row)
            logged_now.add(row["stem"])
            if row["error"]:
                progress.write(f"error: {row['error']}", file=sys.stderr)
            progress.update(1)
    except Stopped as stop:
        stopped_by = stop.signum
    finally:
        rows.close()  # after an early end: stops the workers before the table is rewritten
        progress.close()
        _log_unreported_results(table, todo, logged_now, out_dir)
        final = table.finish(stems)
    if stopped_by is not None and ray_address is None:
        _remove_partial_files(out_dir)  # of the images in flight; every worker has ended
    failures = [(row["file"], row["error"]) for row in final if row.get("error")]
    return BatchOutcome(final, failures, total=len(inputs), skipped=len(inputs) - len(todo), stopped_by=stopped_by)


def _log_unreported_results(table: ResultsTable, todo, logged_now: set[str], out_dir: Path) -> None:
    """Rows for the images of this run whose ``<stem>.json`` exists but whose row never reached the
    table: a stop (or a crash of the driver) that came after a worker wrote the JSON and before its
    row was collected. Every JSON present is then a row, so a stopped table is true."""
    for source, stem in todo:
        if stem not in logged_now and _finished(out_dir / f"{stem}.json", source):
            try:
                table.add(_row_from_json(out_dir / f"{stem}.json", source, stem))
            except (OSError, ValueError):  # unreadable: the next run redoes the image
                continue


def _remove_partial_files(out_dir: Path) -> None:
    """Temporary files of writers that were killed mid-write (see ``imageio._atomic_write``)."""
    for stale in out_dir.glob(".*.part"):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def stop_on_signals():
    """While inside, SIGTERM and SIGINT (Ctrl-C) raise :class:`Stopped` in the main thread, once:
    :func:`run_batch` then stops its workers, keeps what finished and says how far it got. A
    second signal acts as it normally would, for someone who will not wait for the clean-up."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def batch_summary(outcome: BatchOutcome, results: Path) -> str:
    """The one line a batch ends with: how far it got, what it skipped, what it found, where it is."""
    done_now = outcome.done - outcome.skipped
    if outcome.stopped_by is not None:
        left = outcome.total - len(outcome.rows)
        return (f"stopped by {signal.Signals(outcome.stopped_by).name} after {outcome.done} of {outcome.total} "
                f"images ({done_now} in this run, {outcome.skipped} done before); run the same command again "
                f"for the other {left}; results in {results}")
    found = verdict_counts(outcome.rows)
    return (f"{outcome.total} images: {done_now} analysed in this run, {outcome.skipped} skipped as done before, "
            f"{len(outcome.failures)} failed{'; ' + found if found else ''}; results in {results}")


def command_batch(args: argparse.Namespace) -> int:
    try:  # a trust list that cannot be read stops the batch before any worker starts
        read_trust_anchors(getattr(args, "trust_list", None))
    except (OSError, ValueError) as error:
        raise WslocError(f"--trust-list: {error}") from None
    inputs = collect_inputs(args.input)
    if not inputs:  # a failed input, like a broken image: reported, one summary line, exit 1
        print(f"error: {args.input}: no images found", file=sys.stderr)
        print("0 images: nothing analysed, nothing written")
        return 1
    with stop_on_signals():
        outcome = run_batch(inputs, args.out, args, workers=args.workers, ray_address=args.ray,
                            show_progress=not args.quiet)
    if outcome.failures:
        print(f"{len(outcome.failures)} failed:", file=sys.stderr)
        for source, error in outcome.failures:
            # Most messages already start with the file's name.
            print(f"  {error}" if error.startswith(source) else f"  {source}: {error}", file=sys.stderr)
    # Diagnostics (the failures above, progress, errors) on stderr; the summary on stdout, as
    # ``localize`` prints its own, so ``wsloc batch ... > log`` keeps it. Stderr first: a terminal
    # shows the summary last.
    sys.stderr.flush()
    print(batch_summary(outcome, Path(args.out) / RESULTS_CSV), flush=True)
    if outcome.stopped_by is not None:
        return 128 + outcome.stopped_by  # what a shell reports for a process the signal ended
    return 1 if outcome.failures else 0


def register(commands) -> None:
    """Add the ``batch`` subcommand to the CLI's subparsers."""
    batch = commands.add_parser(
        "batch", help="localize a folder or list of images, resumably, with a results table",
        description="Outputs as 'localize', plus results.csv / results.jsonl. Rerunning skips images "
                    "whose <stem>.json exists; failed images are retried and listed (on stderr, with the "
                    "progress bar); the summary line goes to stdout; exit 1 if any failed.",
    )
    batch.add_argument("input", metavar="INPUT_DIR_OR_LIST", help="folder of images, or a text file of paths")
    batch.add_argument("--out", required=True, metavar="DIR")
    batch.add_argument("--workers", type=int, default=None,
                       help="worker processes (default 1), or Ray actors (default one per cluster CPU)")
    batch.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run on Ray: a cluster address, or none for RAY_ADDRESS / a local instance "
                            "(put --ray after INPUT, or write --ray=ADDRESS)")
    batch.add_argument("--threads-per-worker", type=int, default=0, metavar="N",
                       help="threads each worker gives onnxruntime, OpenCV and numpy's BLAS (default: the usable "
                            "cores shared out, max(1, cores // workers))")
    add_localizer_arguments(batch)
    batch.set_defaults(handler=_command_batch_defaults)


def _command_batch_defaults(args: argparse.Namespace) -> int:
    if args.workers is None:
        args.workers = 0 if args.ray is not None else 1
    if args.workers < 0 or (args.workers == 0 and args.ray is None):
        raise WslocError("--workers must be at least 1")
    if (args.threads_per_worker or 0) < 0:
        raise WslocError("--threads-per-worker must be at least 1 (or 0 for the default)")
    return command_batch(args)
