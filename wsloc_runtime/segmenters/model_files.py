"""Model files of the ONNX-backed segmenters: one registry, one metadata key, one resolver.

Every ONNX file written by ``python -m export.segmenters`` carries its typed config as
JSON in ``metadata_props[METADATA_KEY]``; the runtime reads sizes, normalisation and
tensor names from there and never from constants of its own.

:data:`SEGMENTER_FILES` is the single table of file names: the exporter writes these
names and the runtime looks for them with :func:`wsloc_runtime.models.resolve_model`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Type, TypeVar

from ..config import build_config, read_config_json
from ..errors import ModelContractError, ModelNotFoundError
from ..models import candidate_locations, resolve_model

METADATA_KEY = "wsloc.segmenter"
CONTRACT_VERSION = 1


@dataclass(frozen=True)
class ModelFile:
    """One ONNX file a segmenter needs.

    Attributes:
        filename: the name looked for (explicit dir, ``$WSLOC_MODELS``, ``assets/models``, Hub).
        export_hint: the command that writes it, quoted in :class:`ModelNotFoundError`.
        external_data: name of the companion weights file that large exports (over
            onnx's 2 GB protobuf limit, i.e. SAM ViT-H) keep beside the ``.onnx``; it is
            fetched too when present, and optional otherwise.
    """

    filename: str
    export_hint: str
    external_data: str = ""


_SAM_HINT = "python -m export.segmenters sam --model-type vit_b --checkpoint sam_vit_b_01ec64.pth --out assets/models"
SEGMENTER_FILES: dict[str, dict[str, ModelFile]] = {
    "sam": {
        "encoder": ModelFile("sam_encoder.onnx", _SAM_HINT, external_data="sam_encoder.onnx.data"),
        "decoder": ModelFile("sam_decoder.onnx", _SAM_HINT),
    },
    "deeplab": {
        "model": ModelFile(
            "deeplab.onnx",
            "python -m export.segmenters deeplab --arch deeplabv3_resnet50 "
            "--checkpoint deeplabv3_resnet50_coco-cd0a2569.pth --out assets/models",
        )
    },
    "pspnet": {
        "model": ModelFile(
            "pspnet.onnx",
            "python -m export.segmenters pspnet --backbone resnet50 --checkpoint pspnet.pth --out assets/models",
        )
    },
}


def resolve_segmenter_files(
    name: str, model_dir: str | os.PathLike | None = None, hub_repo: str | None = None, revision: str | None = None
) -> dict[str, Path]:
    """Find every file segmenter ``name`` needs, or raise ONE error naming all that are missing.

    Args:
        name: a key of :data:`SEGMENTER_FILES`.
        model_dir: a directory to look in first (then ``$WSLOC_MODELS``, ``assets/models``, the Hub).

    Returns:
        role -> path of the ``.onnx`` file (companion external-data files sit beside it).

    Raises:
        ModelNotFoundError: one or more files are missing; the message lists each file
            with the places looked in and the export command that writes it.
    """
    found: dict[str, Path] = {}
    problems: list[str] = []
    for role, spec in SEGMENTER_FILES[name].items():
        try:
            path = resolve_model(spec.filename, explicit=model_dir, hub_repo=hub_repo, revision=revision)
        except ModelNotFoundError as error:
            problems.append(str(error))
            continue
        came_from_hub = path not in candidate_locations(spec.filename, model_dir)
        if spec.external_data and came_from_hub and not (path.parent / spec.external_data).is_file():
            # A large export keeps its weights in a companion file; hf_hub_download puts it
            # in the same snapshot directory as the graph, where onnxruntime looks for it.
            # Small exports have none, so its absence is not an error here; a file that
            # needs it and lacks it fails to load with onnxruntime's own message.
            try:
                resolve_model(spec.external_data, hub_repo=hub_repo, revision=revision)
            except ModelNotFoundError:
                pass
        found[role] = path
    if problems:
        hint = next(iter(SEGMENTER_FILES[name].values())).export_hint
        raise ModelNotFoundError(
            f"segmenter {name!r} needs {len(problems)} missing model file(s). "
            + " | ".join(p.split(" Make it with:")[0] for p in problems)
            + f" Make them with: {hint}"
        )
    return found


C = TypeVar("C", bound="OnnxSegmenterConfig")


@dataclass(frozen=True)
class OnnxSegmenterConfig:
    """Base of the typed configs stored in :data:`METADATA_KEY` (JSON round trip, version check)."""

    kind: str = ""
    contract_version: int = CONTRACT_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_metadata(cls: Type[C], metadata: Mapping[str, str], path: Path, expected_kind: str) -> C:
        """Parse the config of an ONNX file, raising :class:`ModelContractError` when it does not fit."""
        if METADATA_KEY not in metadata:
            raise ModelContractError(
                f"{path.name}: no '{METADATA_KEY}' metadata; export it with python -m export.segmenters"
            )
        raw = read_config_json(metadata[METADATA_KEY], path.name, METADATA_KEY, CONTRACT_VERSION)
        if raw.get("kind") != expected_kind:
            raise ModelContractError(f"{path.name}: is a {raw.get('kind')!r} model, expected {expected_kind!r}")
        return build_config(cls, raw, path.name, METADATA_KEY)
