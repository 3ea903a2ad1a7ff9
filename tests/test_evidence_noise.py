"""The ``noise`` evidence on small synthetic photos: a region of other grain is found, even grain
is not, flat or tiny photos are declared unreadable, and the map honours the working size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from wsloc_runtime.evidence import EvidenceInputs, create_evidence, evidence_names
from wsloc_runtime.evidence.noise import analysis_luminance, noise_evidence
from wsloc_runtime.metrics import roc_auc


def smooth_photo() -> np.ndarray:
    """skimage's CC0 coffee photo, blurred so that its own grain is gone: ``(400, 600, 3)`` float32."""
    return cv2.GaussianBlur(data.coffee().astype(np.float32), (0, 0), 1.5)


def with_grain(photo: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return photo + rng.normal(0.0, sigma, photo.shape).astype(np.float32)


def to_uint8(photo: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8)


def region_mask(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[120:260, 330:470] = True  # about 8 % of the photo
    return mask


@pytest.mark.parametrize("inner_sigma", [1.0, 8.0], ids=["less-grain", "more-grain"])
def test_region_of_other_grain_is_found(inner_sigma):
    photo = with_grain(smooth_photo(), 3.0)
    mask = region_mask(photo.shape[:2])
    other = with_grain(smooth_photo(), inner_sigma, seed=1)
    photo[mask] = other[mask]
    reading = noise_evidence(to_uint8(photo))
    assert reading.map.shape == mask.shape
    assert roc_auc(reading.map, mask) > 0.9
    predicted = reading.map >= 0.5
    iou = (predicted & mask).sum() / (predicted | mask).sum()
    assert iou > 0.5
    assert reading.strength > 0.5
    assert reading.reliability > 0.8
    word = "less" if inner_sigma < 3.0 else "more"
    assert f"{word} grain" in reading.reason


def test_inpainted_region_is_found():
    """OpenCV's inpainting leaves a region without grain, as diffusion inpaintings do."""
    photo = to_uint8(with_grain(smooth_photo(), 3.0))
    mask = region_mask(photo.shape[:2])
    inpainted = cv2.inpaint(photo, mask.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    reading = noise_evidence(inpainted)
    assert roc_auc(reading.map, mask) > 0.9
    assert reading.map[mask].mean() > 0.5 > reading.map[~mask].mean()


def test_even_grain_gives_low_strength():
    reading = noise_evidence(to_uint8(with_grain(smooth_photo(), 3.0)))
    assert reading.reliability > 0.8
    assert reading.strength < 0.15
    assert reading.details["odd_fraction"] < 0.03
    assert float((reading.map >= 0.5).mean()) < 0.03


@pytest.mark.parametrize("rgb, words", [
    (np.full((300, 400, 3), 128, np.uint8), "no grain"),
    (np.full((300, 400, 3), 255, np.uint8), "black or white"),
    (np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8), "too small"),
], ids=["flat", "white", "tiny"])
def test_unreadable_photos_have_reliability_zero(rgb, words):
    reading = noise_evidence(rgb)
    assert reading.reliability == 0.0
    assert reading.strength == 0.0
    assert words in reading.reason
    assert not reading.map.any()


def test_map_at_a_working_size_other_than_the_photo():
    photo = to_uint8(with_grain(smooth_photo(), 3.0))
    assert "noise" in evidence_names()
    evidence = create_evidence("noise")
    assert evidence.title == "Noise"
    small = cv2.resize(photo, (300, 200), interpolation=cv2.INTER_AREA)
    reading = evidence.compute(EvidenceInputs(image=small, full=photo))
    assert reading.map.shape == (200, 300)
    assert reading.map.dtype == np.float32
    assert 0.0 <= float(reading.map.min()) and float(reading.map.max()) <= 1.0
    assert 0.0 <= reading.reliability <= 1.0 and 0.0 <= reading.strength <= 1.0


def test_large_photo_is_analysed_downscaled_with_the_region_still_found():
    """Beyond the pixel budget the luminance is area-downscaled by an integer factor, centred."""
    photo = with_grain(smooth_photo(), 3.0)
    mask = region_mask(photo.shape[:2])
    photo[mask] = with_grain(smooth_photo(), 12.0, seed=1)[mask]
    rgb = to_uint8(photo)
    luma, factor, offset = analysis_luminance(rgb, max_pixels=60_000)
    assert factor == 2 and luma.shape == (200, 300) and offset == (0, 0)
    reading = noise_evidence(rgb, (100, 150), max_pixels=60_000)
    assert reading.details["downscale"] == 2
    small_mask = cv2.resize(mask.astype(np.uint8), (150, 100), interpolation=cv2.INTER_NEAREST) > 0
    assert roc_auc(reading.map, small_mask) > 0.85


def test_bad_input_raises():
    with pytest.raises(ValueError):
        noise_evidence(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError):
        noise_evidence(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(ValueError):
        noise_evidence(np.zeros((100, 100, 3), np.uint8), (0, 10))
