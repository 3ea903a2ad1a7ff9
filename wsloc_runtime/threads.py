"""How many threads each library may start: onnxruntime, OpenCV and numpy's BLAS.

Each of the three starts, by default, one thread per core it sees. One process alone is
fine with that; ``wsloc batch --workers N`` is not: N processes of ``cores`` threads each put
N x cores threads on ``cores`` cores, and they wait on each other. The rule here gives each
worker ``max(1, cores // workers)`` threads in every library, so that 16 workers on 16 cores
run 16 threads, not 256.

* ``cores`` is what this process may really use (:func:`usable_cores`): the CPU affinity mask
  and a cgroup CPU quota, where set, not the host's count that a container's
  ``os.cpu_count()`` reports;
* onnxruntime: ``intra_op_num_threads`` of every session (set where sessions are made,
  :class:`wsloc_runtime.session.OnnxModel`, from ``Localizer(intra_op_threads=...)``);
* OpenCV: ``cv2.setNumThreads``;
* numpy's BLAS: ``threadpoolctl`` when it is installed, else the OpenBLAS that numpy loaded,
  called directly (``*openblas_set_num_threads*``); worker processes also get
  ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` in their environment
  (:func:`thread_environment`), read when numpy loads, before any code of ours runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
from pathlib import Path
from typing import Iterator

#: Environment variables the BLAS libraries (and OpenMP) read when they load.
BLAS_ENVIRONMENT = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on: ``os.cpu_count()`` narrowed by the affinity mask and by a
    cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), rounded up; at least 1."""
    cores = os.cpu_count() or 1
    with contextlib.suppress(AttributeError, OSError):
        cores = min(cores, len(os.sched_getaffinity(0)))
    quota = _cgroup_quota()
    if quota:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """CPUs the cgroup allows (quota / period), or None without a quota."""
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def threads_per_worker(workers: int, requested: int = 0, cores: int | None = None) -> int:
    """Threads each worker's libraries get: ``requested`` when positive, else
    ``max(1, cores // workers)`` (``cores``: :func:`usable_cores` by default)."""
    if requested and requested > 0:
        return int(requested)
    cores = usable_cores() if cores is None else int(cores)
    return max(1, cores // max(1, int(workers)))


@contextlib.contextmanager
def thread_environment(threads: int) -> Iterator[None]:
    """While inside, :data:`BLAS_ENVIRONMENT` says ``threads``: processes started then (the batch's
    spawned workers) load their BLAS with that many threads. The variables are put back after."""
    saved = {name: os.environ.get(name) for name in BLAS_ENVIRONMENT}
    os.environ.update({name: str(int(threads)) for name in BLAS_ENVIRONMENT})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def limit_threads(threads: int) -> dict[str, int | None]:
    """Give OpenCV and numpy's BLAS ``threads`` threads in this process (onnxruntime's are set per
    session). Returns :func:`thread_counts` after the change."""
    import cv2

    cv2.setNumThreads(int(threads))
    _set_blas_threads(int(threads))
    return thread_counts()


def thread_counts() -> dict[str, int | None]:
    """Threads OpenCV and numpy's BLAS use in this process (``None``: the BLAS could not be asked)."""
    import cv2

    return {"opencv": int(cv2.getNumThreads()), "blas": _blas_threads()}


def _set_blas_threads(threads: int) -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        for _, setter in _openblas_functions():
            setter(threads)
        return
    threadpool_limits(limits=threads, user_api="blas")


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        counts = [getter() for getter, _ in _openblas_functions()]
        return int(min(counts)) if counts else None
    counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
    return int(min(counts)) if counts else None


def _openblas_functions() -> list[tuple]:
    """``(get_num_threads, set_num_threads)`` of each OpenBLAS loaded in this process (numpy's wheels
    bundle one, whose symbols carry a ``scipy_`` prefix and a ``64_`` suffix)."""
    import numpy  # noqa: F401  (loads the BLAS)

    functions = []
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: threadpoolctl or the environment variables only
        return functions
    libraries = sorted({line.split()[-1] for line in maps.splitlines()
                        if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    for path in libraries:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"), ("openblas", "")):
            getter = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
            setter = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
            if getter is not None and setter is not None:
                getter.restype = ctypes.c_int
                setter.argtypes = [ctypes.c_int]
                functions.append((getter, setter))
                break
    return functions
