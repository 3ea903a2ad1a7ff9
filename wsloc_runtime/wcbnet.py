"""A WCBnet variant run by onnxruntime: SEL tensor in, logit, F_c and dz/dF_c out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .cam import grad_cam
from .config import METADATA_KEY, WCBnetConfig
from .errors import ModelContractError
from .inputs import scale_input
from .session import OnnxModel
from .views import map_to_input, view_input


@dataclass
class WCBnetOutput:
    """One forward pass.

    Attributes:
        logit: z, the pre-sigmoid score (float).
        probability: sigmoid(z), P(manipulated) in [0, 1].
        features: F_c, ``float32`` ``(h, w, D)``.
        gradient: dz/dF_c, ``float32`` ``(h, w, D)``.
    """

    logit: float
    probability: float
    features: np.ndarray
    gradient: np.ndarray


@dataclass
class ViewsOutput:
    """A variant's answer averaged over test-time views.

    Attributes:
        logit: mean of the views' logits z (float).
        probability: sigmoid of that mean, P(manipulated) in [0, 1].
        cam: ``float32`` ``(h, w)``, non-negative, not normalised: the mean of the views'
            Grad-CAMs, each flipped back to the input's orientation.
    """

    logit: float
    probability: float
    cam: np.ndarray


def sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0))))


class WCBnetModel(OnnxModel):
    """Load a WCBnet ONNX file and check it honours the contract in :mod:`wsloc_runtime.config`."""

    def __init__(
        self, path: str | os.PathLike, providers: Sequence[str] | None = None, intra_op_threads: int = 0
    ) -> None:
        super().__init__(path, providers, intra_op_threads)
        if METADATA_KEY not in self.metadata:
            raise ModelContractError(
                f"{self.path.name}: no '{METADATA_KEY}' metadata; export it with python -m export.convert"
            )
        self.config = WCBnetConfig.from_json(self.metadata[METADATA_KEY])
        names = self.config.output_names
        self.require_names([self.config.input_name], [names["logit"], names["features"], names["gradient"]])
        shape = self.session.get_inputs()[0].shape
        expected = [1, *self.config.input_size, self.config.input_channels]
        if [d if isinstance(d, int) else -1 for d in shape] != expected:
            raise ModelContractError(f"{self.path.name}: input shape {shape}, contract says {expected}")

    @property
    def name(self) -> str:
        return self.config.name

    def prepare(self, raw_input: np.ndarray) -> np.ndarray:
        """Scale unscaled input maps (:func:`wsloc_runtime.inputs.raw_inputs`, already resized to
        ``config.input_size``) into the ``[1, H, W, C]`` input tensor."""
        c = self.config
        expected = (*c.input_size, c.input_channels)
        if raw_input.shape != expected:
            raise ValueError(f"input maps must be resized to {expected}, got {raw_input.shape}")
        return scale_input(raw_input, c.input_features, c.sel_scaling, c.sel_scale, c.sel_clip)[None]

    def forward(self, input_tensor: np.ndarray) -> WCBnetOutput:
        names = self.config.output_names
        logit, features, gradient = self.run(
            {self.config.input_name: input_tensor},
            [names["logit"], names["features"], names["gradient"]],
        )
        z = float(np.asarray(logit).reshape(-1)[0])
        return WCBnetOutput(z, sigmoid(z), features[0], gradient[0])

    def forward_views(self, input_tensor: np.ndarray, views: Sequence[tuple[int, ...]]) -> ViewsOutput:
        """Run every view of ``input_tensor`` (``[1, H, W, 3]`` from :meth:`prepare`) and average.

        ``views`` is a value of :data:`wsloc_runtime.views.TEST_TIME_VIEWS`; ``((),)`` is one plain
        forward pass.
        """
        if not views:
            raise ValueError("views must name at least one view, e.g. ((),) for the input as it is")
        logits, cams = [], []
        for axes in views:
            output = self.forward(view_input(input_tensor, axes))
            cams.append(map_to_input(grad_cam(output.features, output.gradient), axes))
            logits.append(output.logit)
        z = float(np.mean(logits))
        return ViewsOutput(z, sigmoid(z), np.mean(cams, axis=0).astype(np.float32))
