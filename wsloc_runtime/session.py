"""One class owns every onnxruntime session: provider choice, threads, tensor names.

Models (WCBnet variants, segmenters) subclass :class:`OnnxModel` and add only their
own pre- and post-processing.

Provider choice. CUDA is chosen by default only when the installed onnxruntime has it
(the ``onnxruntime-gpu`` build, ``pip install 'wsloc[gpu]'``) and the NVIDIA driver is
there; otherwise the CPU, silently. When CUDA is requested, the CUDA and cuDNN libraries
of the ``nvidia-*`` wheels are loaded first (``onnxruntime.preload_dlls()``), and if
CUDA still does not start, one line per process says why and that the CPU runs instead;
:attr:`OnnxModel.providers` (and so every result) reports the providers really used.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import os
import re
import sys
import threading
import warnings
from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import ModelContractError, ModelNotFoundError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_GPU_PROVIDERS = (CUDA,)
# What the GPU extra installs; named in the fallback line so the fix can be copied.
_GPU_INSTALL = "pip install 'wsloc[gpu]' (or 'onnxruntime-gpu[cuda,cudnn]')"

_fallback_lock = threading.Lock()
_fallback_logged = False


def available_providers() -> list[str]:
    """Providers compiled into the installed onnxruntime (not necessarily loadable)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


@functools.cache
def nvidia_driver_found() -> bool:
    """Whether the NVIDIA driver's CUDA library loads; no CUDA provider can start without it."""
    try:
        ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return False
    return True


def default_providers() -> list[str]:
    """CUDA then CPU where CUDA can work (GPU build of onnxruntime and an NVIDIA driver), else CPU.

    ``WSLOC_PROVIDERS`` (comma-separated) overrides the choice, e.g. ``CPUExecutionProvider``.
    Whether CUDA really starts is only known once a session exists: see
    :attr:`OnnxModel.providers`.
    """
    override = os.environ.get("WSLOC_PROVIDERS", "").strip()
    if override:
        return [p.strip() for p in override.split(",") if p.strip()]
    available = available_providers()
    if CUDA not in available and _gpu_build_overwritten():
        # The user asked for the GPU build and is not getting it: worth the one line.
        _report_cpu_fallback(_why_cuda_is_missing(None))
    # A GPU build on a machine without the driver (CI, a CPU Space) is a CPU machine, not a fallback.
    if CUDA in available and nvidia_driver_found():
        return [CUDA, CPU]
    return [CPU]


def _gpu_build_overwritten() -> bool:
    """onnxruntime-gpu is installed, but the ``onnxruntime`` module on disk is the CPU build's.

    Both distributions install the same module; whichever pip installed last owns its files.
    """
    try:
        metadata.distribution("onnxruntime-gpu")
    except metadata.PackageNotFoundError:
        return False
    return CUDA not in available_providers()


@functools.cache
def preload_cuda_libraries() -> str | None:
    """Load the CUDA and cuDNN libraries of the nvidia-* wheels, once per process.

    ``onnxruntime.preload_dlls()`` (onnxruntime-gpu 1.21 and later) finds them in
    site-packages, where ``onnxruntime-gpu[cuda,cudnn]`` puts them; without it the CUDA
    provider only finds libraries on the system's library path. It prints what failed to
    stdout, which would mix with the command line's output, so that is captured.

    Returns:
        ``None`` when nothing failed, else a short note naming the libraries that did not load.
    """
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            preload()
        except Exception as error:  # a bad install must not stop the CPU path
            return f"onnxruntime.preload_dlls() failed: {error}"
    failed = dict.fromkeys(Path(found.group(1)).name  # a library fails from site-packages, then by name
                           for found in re.finditer(r"^Failed to load (\S+?):", printed.getvalue(), re.MULTILINE))
    notes = [f"could not load {', '.join(failed)}"] if failed else []
    notes += [str(w.message).splitlines()[0] for w in caught]
    return "; ".join(notes) or None


def _why_cuda_is_missing(preload_note: str | None) -> str:
    if _gpu_build_overwritten():
        gpu_version = metadata.version("onnxruntime-gpu")
        return ("the onnxruntime package (CPU) was installed after onnxruntime-gpu and overwrote the module they "
                f"share; put the GPU build back: pip install --force-reinstall --no-deps onnxruntime-gpu=={gpu_version}")
    if CUDA not in available_providers():
        return f"this onnxruntime is the CPU build; for CUDA, {_GPU_INSTALL}"
    if not nvidia_driver_found():
        return "no NVIDIA driver (libcuda) on this machine"
    if preload_note:
        return f"{preload_note}; {_GPU_INSTALL} installs the CUDA and cuDNN libraries"
    return ("onnxruntime could not start its CUDA provider (is the driver new enough for its CUDA, "
            "580+ for CUDA 13? `python -c 'import onnxruntime; onnxruntime.print_debug_info()'` shows more)")


def _report_cpu_fallback(reason: str) -> None:
    """Log that the CPU runs instead of CUDA, once per process: every later session would say the same."""
    global _fallback_logged
    with _fallback_lock:
        if _fallback_logged:
            return
        _fallback_logged = True
    log.warning("CUDA not used, running on the CPU: %s", reason)


class OnnxModel:
    """An onnxruntime inference session with the provider it really got.

    Args:
        path: the ``.onnx`` file.
        providers: execution providers in order of preference; ``None`` picks
            :func:`default_providers`. Providers that fail to load are dropped by
            onnxruntime, and :attr:`providers` reports what remained.
        intra_op_threads: threads per operator; 0 lets onnxruntime decide.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"model file not found: {self.path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(intra_op_threads)
        # Idle onnxruntime workers spin by default, waiting for the next operator; our models are a
        # few ms each between stages on other threads (copy-move, the segmenter), which the spinning
        # took cores from: 1 MP 0.52 -> 0.44 s on 2 cores with it off (docs/performance.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # A CUDA provider that fails to load logs an error and falls back; report_cpu_fallback says it once.
        options.log_severity_level = 3
        requested = list(providers) if providers else default_providers()
        wants_gpu = any(p in _GPU_PROVIDERS for p in requested)
        available = available_providers()
        # A CPU build warns about each GPU provider it lacks, per session; the fallback line says it once.
        attempted = [p for p in requested if p in available or p not in _GPU_PROVIDERS] or [CPU]
        preload_note = preload_cuda_libraries() if CUDA in attempted else None
        if wants_gpu:
            # onnxruntime prints a multi-line error per session when CUDA cannot start;
            # _report_cpu_fallback says it in one line per process instead.
            ort.set_default_logger_severity(4)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=attempted)
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            if CPU in attempted and len(attempted) > 1:
                first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                _report_cpu_fallback(f"onnxruntime could not create a session with {attempted}: {first_line}")
                self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=[CPU])
            else:
                raise ModelContractError(f"{self.path}: onnxruntime cannot load it: {error}") from error
        finally:
            if wants_gpu:
                ort.set_default_logger_severity(2)  # onnxruntime's default, for sessions made elsewhere
        self.requested_providers = requested
        self.providers: list[str] = list(self.session.get_providers())
        if wants_gpu and not any(p in self.providers for p in _GPU_PROVIDERS):
            _report_cpu_fallback(_why_cuda_is_missing(preload_note))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        return self.session.run(list(outputs) if outputs else None, dict(feeds))

    def require_names(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        """Raise :class:`ModelContractError` unless the graph has these tensor names."""
        missing_in = [n for n in inputs if n not in self.input_names]
        missing_out = [n for n in outputs if n not in self.output_names]
        if missing_in or missing_out:
            raise ModelContractError(
                f"{self.path.name}: graph lacks inputs {missing_in} / outputs {missing_out}; "
                f"it has inputs {self.input_names} and outputs {self.output_names}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path.name!r}, providers={self.providers})"
