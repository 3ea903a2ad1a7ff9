"""Shared fixtures: tiny contract-honouring models, a synthetic forgery, the shared data path."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.contract_models import build_contract_model_set

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Warnings from the segmenter exports the tests run (torch.onnx over segment-anything, DeepLab and
#: PSPNet) that nothing in this repository can fix, each with why hiding it is safe. By message and
#: module, not by class: naming torch.jit.TracerWarning would import torch into the TensorFlow run.
EXPORT_WARNING_FILTERS = (
    # torch deprecates its TorchScript exporter; export/ chooses it on purpose (dynamo=False: the
    # SamOnnxModel recipe and the dynamic axes are written for it) and checks every export against
    # torch at sizes other than the traced ones.
    r"ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning:export\.",
    # torch's own exporter calling a function torch deprecated; there is no caller of ours to change.
    r"ignore:The feature will be removed:DeprecationWarning:torch\.onnx\.",
    # Sizes that become constants when segment-anything's modules are traced; the parity checks at
    # other image and batch sizes in export/sam_export.py catch any that should not have.
    r"ignore:Converting a tensor to a Python:Warning:segment_anything\.",
    # The pooling bins of export/pspnet_model.py are meant to be constants at the export size (see
    # adaptive_avg_pool2d_unrolled); the model is exported at one fixed size.
    r"ignore:Converting a tensor to a Python integer:Warning:export\.pspnet_model",
)


def pytest_configure(config) -> None:
    for line in EXPORT_WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", line)


def shared_data_dir() -> Path:
    """``$WSLOC_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("WSLOC_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def contract_models(tmp_path_factory) -> Path:
    """Directory with wcbnet{2,3,4}.onnx: transparent error-level detectors honouring the contract."""
    return build_contract_model_set(tmp_path_factory.mktemp("contract_models"))


def jpeg_cycle(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def make_splice(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A photo (JPEG q=90 history) with a never-compressed textured disc pasted in.

    Re-encoding at q=90 barely changes the host but changes the pasted disc a lot,
    so the disc is the region with a different error level, and it is also a
    visually distinct object a segmenter can find.

    Returns ``(rgb uint8 HxWx3, mask bool HxW)``.
    """
    from skimage import data

    host = jpeg_cycle(jpeg_cycle(data.coffee(), 90), 90)  # settled q=90 history
    rng = np.random.default_rng(seed)
    height, width = host.shape[:2]
    yy, xx = np.mgrid[:height, :width]
    cy, cx, radius = height // 2 + 20, width // 3, 70
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    texture = np.clip(rng.normal(0, 28, (height, width, 3)) + np.array([40, 160, 60]), 0, 255).astype(np.uint8)
    forged = host.copy()
    forged[mask] = texture[mask]
    return forged, mask


@pytest.fixture(scope="session")
def splice() -> tuple[np.ndarray, np.ndarray]:
    return make_splice()
