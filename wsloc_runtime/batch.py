"""``wsloc batch``: localize a folder (or a list) of images, resumably, on local processes or Ray.

For every input the outputs of ``wsloc localize`` are written (``<stem>_heatmap.png``,
``<stem>_mask.png``, ``<stem>_overlay.png``, ``<stem>.json``, each atomically, the JSON
last), plus one results table for the whole batch:

* ``results.jsonl``: one JSON object per input, appended (and fsync'ed) as each image
  finishes, so a crash loses at most the images in flight;
* ``results.csv``: the same rows in input order, rewritten at the end of every run.

Resuming: an input whose ``<stem>.json`` exists is done and is skipped. Stems come from
:func:`wsloc_runtime.cli.output_stems` over the sorted input list, so a rerun with the
same inputs maps every image to the same files. Failed inputs leave no JSON and are
tried again on the next run.

Each worker (process or Ray actor) constructs ONE :class:`~wsloc_runtime.Localizer` and
reuses it for every image it gets: sessions and the segmenter are loaded once.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterator, Sequence

from .errors import WslocError
from .views import DEFAULT_TEST_TIME_VIEWS

#: Suffixes a folder scan treats as images (a corrupt file with one of them is a failure, not skipped).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".jp2", ".ppm", ".pgm"}
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
CSV_COLUMNS = ("file", "stem", "probability", "is_manipulated", "mask_fraction", "seconds", "timings", "error")
#: Settings a worker needs to rebuild the Localizer with :func:`wsloc_runtime.cli.localizer_from_args`.
LOCALIZER_SETTINGS = ("models", "variants", "segmenter", "segmenter_models", "providers", "work_max_side", "threads",
                      "views")


class BatchSetupError(WslocError):
    """A worker could not construct its Localizer (missing models, bad options): nothing can run."""


def collect_inputs(source: str | os.PathLike) -> list[str]:
    """Image paths from a folder (its image files, sorted, not recursive) or a list file
    (one path per line, relative to the list's folder; blank lines and ``#`` comments ignored)."""
    path = Path(source)
    if path.is_dir():
        return [str(p) for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
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


def _init_worker(settings: argparse.Namespace, threads: int) -> None:
    """Build this worker's one Localizer; a failure is kept and reported by the first task."""
    global _LOCALIZER, _SETUP_ERROR
    if threads > 0:
        import cv2

        # OpenCV's own pool would otherwise use every core in every worker.
        cv2.setNumThreads(threads)
    from .cli import localizer_from_args

    _LOCALIZER, _SETUP_ERROR = None, None  # workers=1 runs in the caller's process, maybe more than once
    try:
        _LOCALIZER = localizer_from_args(settings)
    except Exception as error:  # reported once per task; the driver stops the batch
        _SETUP_ERROR = f"{type(error).__name__}: {error}"


def _localize_one(source: str, stem: str, out_dir: str) -> dict:
    """Localize one image with this worker's Localizer and write its files. Returns its results row."""
    if _LOCALIZER is None:
        raise BatchSetupError(_SETUP_ERROR or "the worker has no Localizer")
    from .cli import localize_to_files

    return localize_to_files(_LOCALIZER, source, Path(out_dir), stem)


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
        from .imageio import _atomic_write

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
            writer.writerow({**row, "timings": json.dumps(row["timings"]) if row.get("timings") else ""})
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
    payload = json.loads(path.read_text(encoding="utf-8"))
    return {"file": source, "stem": stem, "probability": payload.get("probability"),
            "is_manipulated": payload.get("is_manipulated"), "mask_fraction": payload.get("mask_fraction"),
            "seconds": None, "timings": payload.get("timings"), "error": None}


def worker_threads(workers: int, requested: int) -> int:
    """Intra-op threads per worker: as asked, else the cores shared out (1 each on a 2-core host
    with 2 workers; measured in bench/bench_batch.py, oversubscribing costs throughput)."""
    if requested > 0:
        return requested
    if workers <= 1:
        return 0
    return max(1, (os.cpu_count() or 1) // workers)


def _local_rows(todo, out_dir: Path, settings: argparse.Namespace, workers: int) -> Iterator[dict]:
    threads = worker_threads(workers, settings.threads)
    worker_settings = argparse.Namespace(**{**vars(settings), "threads": threads})
    if workers <= 1:
        _init_worker(worker_settings, threads)
        for source, stem in todo:
            yield _localize_one(source, stem, str(out_dir))
        return
    import multiprocessing

    # spawn: a fork would copy any onnxruntime thread pools of the parent into the children.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(worker_settings, threads)) as pool:
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
        finally:
            for future in running:
                future.cancel()


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
    threads = settings.threads or max(1, int(resources.get("CPU", 1)) // actors)
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


def run_batch(
    inputs: Sequence[str],
    out_dir: str | os.PathLike,
    settings: argparse.Namespace,
    workers: int = 1,
    ray_address: str | None = None,
    show_progress: bool = True,
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Localize ``inputs`` into ``out_dir``, skipping those already done.

    Args:
        settings: the ``models`` options of the CLI (see :data:`LOCALIZER_SETTINGS`).
        workers: local worker processes (1 = in this process), or Ray actors (0 = one per CPU).
        ray_address: ``None`` runs locally; a string runs on Ray (``""`` = local/auto).

    Returns:
        ``(rows, failures)``: one results row per input in input order, and ``(file, error)`` per failure.
    """
    from tqdm import tqdm

    from .cli import output_stems

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.part"):  # temp files of a run that was killed mid-write
        stale.unlink(missing_ok=True)
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
                    file=sys.stderr, disable=not show_progress)
    try:
        if ray_address is None:
            rows = _local_rows(todo, out_dir, settings, workers)
        else:
            rows = _ray_rows(todo, out_dir, settings, workers, ray_address)
        for row in rows:
            table.add(row)
            if row["error"]:
                progress.write(f"error: {row['error']}", file=sys.stderr)
            progress.update(1)
    finally:
        progress.close()
        final = table.finish(stems)
    failures = [(row["file"], row["error"]) for row in final if row.get("error")]
    return final, failures


def command_batch(args: argparse.Namespace) -> int:
    inputs = collect_inputs(args.input)
    if not inputs:
        raise WslocError(f"{args.input}: no images found")
    rows, failures = run_batch(inputs, args.out, args, workers=args.workers, ray_address=args.ray,
                               show_progress=not args.quiet)
    done = sum(1 for row in rows if not row.get("error"))
    print(f"{done} of {len(inputs)} images done; results in {Path(args.out) / RESULTS_CSV}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for source, error in failures:
            # Most messages already start with the file's name.
            print(f"  {error}" if error.startswith(source) else f"  {source}: {error}", file=sys.stderr)
        return 1
    return 0


def register(commands) -> None:
    """Add the ``batch`` subcommand to the CLI's subparsers."""
    from .cli import add_localizer_arguments

    batch = commands.add_parser(
        "batch", help="localize a folder or list of images, resumably, with a results table",
        description="Outputs as 'localize', plus results.csv / results.jsonl. Rerunning skips images "
                    "whose <stem>.json exists; failed images are retried and listed; exit 1 if any failed.",
    )
    batch.add_argument("input", metavar="INPUT_DIR_OR_LIST", help="folder of images, or a text file of paths")
    batch.add_argument("--out", required=True, metavar="DIR")
    batch.add_argument("--workers", type=int, default=None,
                       help="worker processes (default 1), or Ray actors (default one per cluster CPU)")
    batch.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run on Ray: a cluster address, or none for RAY_ADDRESS / a local instance "
                            "(put --ray after INPUT, or write --ray=ADDRESS)")
    add_localizer_arguments(batch)
    batch.set_defaults(handler=_command_batch_defaults)


def _command_batch_defaults(args: argparse.Namespace) -> int:
    if args.workers is None:
        args.workers = 0 if args.ray is not None else 1
    if args.workers < 0 or (args.workers == 0 and args.ray is None):
        raise WslocError("--workers must be at least 1")
    return command_batch(args)
