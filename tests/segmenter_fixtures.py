"""Session fixtures for the segmenter tests: small random-weight models exported once.

Import the fixtures you use into a test module (``from tests.segmenter_fixtures import ...``).
pytest registers an imported fixture once per importing module, so a session fixture
imported by two modules would run twice; each one therefore memoises its result in
:data:`_BUILT`, and the models are built and exported once per session. Fixtures that need torch or segment-anything skip
when those are absent, so a runtime-only install still runs the rest of the suite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak" / "kodim23.png"

# SAM test model: small ViT and decoder, random weights, 256-pixel input (16x16 embedding).
TINY_SAM_IMG_SIZE = 256
# Semantic test models: small inputs keep export and inference to seconds on 2 cores.
DEEPLAB_TEST = {"arch": "deeplabv3_mobilenet_v3_large", "num_classes": 5, "input_size": (128, 160)}
PSPNET_TEST = {"backbone": "resnet18", "num_classes": 6, "input_size": (96, 128)}


def photo() -> np.ndarray:
    """A real photo, ``uint8 (H, W, 3)`` RGB: scikit-image's 'chelsea' (300x451), no files needed."""
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.chelsea()


def kodak_photo() -> np.ndarray | None:
    """Kodak kodim23 (768x512) from ../shared when present, else None."""
    if not KODAK.is_file():
        return None
    import cv2

    return cv2.cvtColor(cv2.imread(str(KODAK), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


_BUILT: dict[str, object] = {}


@pytest.fixture(scope="session")
def tiny_sam():
    """The random-weight torch SAM (segment-anything's own modules)."""
    pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from export.sam_export import build_tiny_sam

    if "tiny_sam" not in _BUILT:
        _BUILT["tiny_sam"] = build_tiny_sam(seed=0, img_size=TINY_SAM_IMG_SIZE)
    return _BUILT["tiny_sam"]


@pytest.fixture(scope="session")
def tiny_sam_export(tiny_sam, tmp_path_factory):
    """``export_sam``'s result for :func:`tiny_sam`: paths and measured parity."""
    from export.sam_export import export_sam

    if "tiny_sam_export" not in _BUILT:
        _BUILT["tiny_sam_export"] = export_sam(tiny_sam, tmp_path_factory.mktemp("sam"), model_type="tiny",
                                               model_version="test")
    return _BUILT["tiny_sam_export"]


@pytest.fixture(scope="session")
def tiny_sam_dir(tiny_sam_export) -> Path:
    return Path(tiny_sam_export["encoder"]).parent


@pytest.fixture(scope="session")
def semantic_exports(tmp_path_factory):
    """DeepLabV3 and PSPNet with random weights, saved as checkpoints and exported from them
    (the path an official checkpoint takes). Returns ``{"dir", "deeplab", "pspnet"}`` results."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    if "semantic_exports" in _BUILT:
        return _BUILT["semantic_exports"]
    from export.semantic_export import build_deeplab, build_pspnet, export_deeplab, export_pspnet, randomize_batchnorm

    out = tmp_path_factory.mktemp("semantic")
    torch.manual_seed(0)
    deeplab = randomize_batchnorm(build_deeplab(DEEPLAB_TEST["arch"], num_classes=DEEPLAB_TEST["num_classes"]))
    with torch.no_grad():  # random DeepLab logits are ~0.02; scale to unit size so parity means something
        deeplab.classifier[-1].weight.mul_(50.0)
    torch.save(deeplab.state_dict(), out / "deeplab.pth")
    pspnet = randomize_batchnorm(build_pspnet(PSPNET_TEST["backbone"], num_classes=PSPNET_TEST["num_classes"]), 1)
    # Wrapped the way training scripts often save, to exercise the unwrapping.
    torch.save({"state_dict": {"module." + k: v for k, v in pspnet.state_dict().items()}}, out / "pspnet.pth")
    _BUILT["semantic_exports"] = {
        "dir": out,
        "deeplab": export_deeplab(DEEPLAB_TEST["arch"], out / "deeplab.pth", out, DEEPLAB_TEST["input_size"]),
        "pspnet": export_pspnet(PSPNET_TEST["backbone"], out / "pspnet.pth", out, PSPNET_TEST["input_size"]),
    }
    return _BUILT["semantic_exports"]


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every mask of ``a (N, H, W)`` with every mask of ``b (M, H, W)``."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
