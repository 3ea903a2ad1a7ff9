"""The WCBnet model contract: a typed config carried inside each ONNX file.

A WCBnet variant's ONNX file

* takes one input, named ``config.input_name`` (default ``"sel"``): ``float32``,
  shape ``[1, H, W, C]`` (NHWC, batch fixed at 1), holding the features
  ``config.input_features`` names (default: the 3 channels of signed error levels),
  resized to ``H x W`` and scaled by :func:`wsloc_runtime.inputs.scale_input`;
* returns three outputs, named by ``config.output_names``:
  ``logit`` ``[1, 1]`` (z, before the sigmoid; P(manipulated) = sigmoid(z)),
  ``features`` ``[1, h, w, D]`` (F_c, the cross-block attention output),
  ``gradient`` ``[1, h, w, D]`` (dz/dF_c, computed inside the graph);
* carries this config as JSON in ``metadata_props["wsloc.config"]``.

The runtime derives every preprocessing step from the config, so a model trained
with other settings runs correctly without code changes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Type, TypeVar

from .errors import ModelContractError
from .inputs import DEFAULT_INPUT_FEATURES, check_features, feature_channels

METADATA_KEY = "wsloc.config"
CONTRACT_VERSION = 1


@dataclass(frozen=True)
class WCBnetConfig:
    """Everything the runtime must know about one WCBnet variant.

    Attributes:
        cbam_scale: backbone block (2, 3 or 4) whose spatial size the attention fuses to.
        input_size: ``(height, width)`` of the network input.
        sel_jpeg_quality: JPEG quality used to compute signed error levels.
        sel_scaling: ``"fixed"`` or ``"std"`` (see :func:`~wsloc_runtime.sel.scale_error_levels`).
        sel_scale: divisor of the SEL values.
        sel_clip: inputs are clipped to ``[-sel_clip, sel_clip]``.
        input_name: name of the input tensor.
        output_names: names of the ``logit``, ``features`` and ``gradient`` outputs.
        backbone: backbone architecture, for the model card.
        feature_dim: D, channels of F_c.
        model_version: version string of the trained weights.
        training_data: free text: what the weights were trained on.
        decision_threshold: probability at or above which an image is called manipulated.
        input_features: the input channels, by name (:data:`wsloc_runtime.inputs.INPUT_FEATURES`).
        verdict_band: ``(low, high)`` probabilities: below ``low`` the verdict reads "likely
            authentic", at or above ``high`` "likely manipulated", between them "uncertain".
    """

    cbam_scale: int
    input_size: tuple[int, int] = (384, 384)
    sel_jpeg_quality: int = 90
    sel_scaling: str = "fixed"
    sel_scale: float = 16.0
    sel_clip: float = 8.0
    input_name: str = "sel"
    output_names: Mapping[str, str] = field(
        default_factory=lambda: {"logit": "logit", "features": "features", "gradient": "gradient"}
    )
    backbone: str = "resnet50"
    feature_dim: int = 256
    model_version: str = "untrained"
    training_data: str = ""
    decision_threshold: float = 0.5
    input_features: tuple[str, ...] = DEFAULT_INPUT_FEATURES
    verdict_band: tuple[float, float] = (0.5, 0.5)
    contract_version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        if self.cbam_scale not in (1, 2, 3, 4, 5):
            raise ModelContractError(f"cbam_scale must be a block index 1..5, got {self.cbam_scale}")
        if len(self.input_size) != 2 or min(self.input_size) < 32:
            raise ModelContractError(f"input_size must be (height, width) >= 32, got {self.input_size}")
        if self.sel_scaling not in ("fixed", "std"):
            raise ModelContractError(f"sel_scaling must be 'fixed' or 'std', got {self.sel_scaling!r}")
        missing = {"logit", "features", "gradient"} - set(self.output_names)
        if missing:
            raise ModelContractError(f"output_names lacks {sorted(missing)}")
        object.__setattr__(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))
        object.__setattr__(self, "output_names", dict(self.output_names))
        object.__setattr__(self, "input_features", check_features(self.input_features))
        if len(self.verdict_band) != 2 or not 0.0 <= self.verdict_band[0] <= self.verdict_band[1] <= 1.0:
            raise ModelContractError(f"verdict_band must be (low, high) with 0 <= low <= high <= 1, got {self.verdict_band}")
        object.__setattr__(self, "verdict_band", (float(self.verdict_band[0]), float(self.verdict_band[1])))

    @property
    def name(self) -> str:
        return f"wcbnet{self.cbam_scale}"

    @property
    def input_channels(self) -> int:
        return feature_channels(self.input_features)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "WCBnetConfig":
        raw = read_config_json(text, source="model", key=METADATA_KEY, max_version=CONTRACT_VERSION)
        return build_config(cls, raw, source="model", key=METADATA_KEY)


C = TypeVar("C")


def read_config_json(text: str, source: str, key: str, max_version: int) -> dict[str, Any]:
    """The JSON config an ONNX file carries under ``key``, as a dict.

    Raises:
        ModelContractError: invalid JSON, or a contract version above ``max_version``.
    """
    try:
        raw: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelContractError(f"{source}: {key} is not valid JSON: {error}") from error
    version = raw.get("contract_version", max_version)
    if version > max_version:
        raise ModelContractError(
            f"{source}: uses contract version {version}; this runtime understands up to {max_version}"
        )
    return raw


def build_config(cls: Type[C], raw: Mapping[str, Any], source: str, key: str) -> C:
    """The dataclass ``cls`` from a config dict: unknown fields are ignored (a newer exporter
    may add some) and JSON lists become tuples.

    Raises:
        ModelContractError: values that do not fit ``cls``.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in known}
    try:
        return cls(**fields)
    except ModelContractError:
        raise
    except (TypeError, ValueError) as error:
        raise ModelContractError(f"{source}: {key} does not match {cls.__name__}: {error}") from error
