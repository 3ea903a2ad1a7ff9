"""One class owns every onnxruntime session: provider choice, threads, tensor names.

Models (WCBnet variants, segmenters) subclass :class:`OnnxModel` and add only their
own pre- and post-processing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import ModelContractError, ModelNotFoundError

log = logging.getLogger(__name__)

_GPU_PROVIDERS = ("CUDAExecutionProvider",)


def available_providers() -> list[str]:
    """Providers compiled into the installed onnxruntime (not necessarily loadable)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def default_providers() -> list[str]:
    """CUDA first when onnxruntime was built with it, then CPU.

    ``WSLOC_PROVIDERS`` (comma-separated) overrides the choice, e.g. ``CPUExecutionProvider``.
    Whether CUDA really loads is only known once a session exists: see
    :attr:`OnnxModel.providers`.
    """
    override = os.environ.get("WSLOC_PROVIDERS", "").strip()
    if override:
        return [p.strip() for p in override.split(",") if p.strip()]
    available = available_providers()
    chosen = [p for p in _GPU_PROVIDERS if p in available]
    return chosen + ["CPUExecutionProvider"]


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
        # A CUDA provider that fails to load logs an error and falls back; that is expected on CPU hosts.
        options.log_severity_level = 3
        requested = list(providers) if providers else default_providers()
        if any(p in _GPU_PROVIDERS for p in requested):
            # onnxruntime prints a multi-line error per session when CUDA libraries are absent;
            # what matters is reported once, through self.providers.
            ort.set_default_logger_severity(4)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=requested)
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            if "CPUExecutionProvider" in requested and len(requested) > 1:
                log.warning("could not create a session with %s (%s); using CPU", requested, error)
                self.session = ort.InferenceSession(
                    str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            else:
                raise ModelContractError(f"{self.path}: onnxruntime cannot load it: {error}") from error
        ort.set_default_logger_severity(2)
        self.requested_providers = requested
        self.providers: list[str] = list(self.session.get_providers())
        lost = [p for p in requested if p in _GPU_PROVIDERS and p not in self.providers]
        if lost:
            log.warning("%s: %s did not load (no usable GPU libraries); running on %s",
                        self.path.name, ", ".join(lost), ", ".join(self.providers))
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
