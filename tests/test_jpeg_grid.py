"""The ``jpeg_grid`` evidence on small synthetic photos: blocks off the photo's JPEG lattice."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.test_jpeg_traces import photo, pil_jpeg
from wsloc_runtime.evidence import EvidenceInputs, create_evidence
from wsloc_runtime.jpeg_traces import jpeg_traces
from wsloc_runtime.metrics import roc_auc


def read(image: np.ndarray):
    return create_evidence("jpeg_grid").compute(EvidenceInputs(image=image, full=image))


def donor_patch(height: int, width: int) -> np.ndarray:
    """A region from another JPEG photo, scaled by 0.8: its own lattice is gone."""
    from skimage import data

    donor, _ = pil_jpeg(np.ascontiguousarray(data.chelsea()), 85)
    scaled = cv2.resize(donor, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    return scaled[20 : 20 + height, 30 : 30 + width]


def spliced_then_saved_losslessly(quality: int = 85):
    """A JPEG photo with a resampled region pasted in, kept as decoded pixels (as a TIFF or PNG save keeps it)."""
    host, _ = pil_jpeg(photo(), quality)
    image, mask = host.copy(), np.zeros(host.shape[:2], bool)
    image[101:231, 203:363] = donor_patch(130, 160)
    mask[101:231, 203:363] = True
    return image, mask


def test_a_photo_never_jpeg_compressed_gets_reliability_zero():
    result = read(photo())
    assert result.reliability == 0.0 and result.strength == 0.0 and not result.map.any()
    assert "no JPEG grid" in result.reason


@pytest.mark.parametrize("quality", [75, 85, 90])
def test_a_region_pasted_after_the_jpeg_save_is_off_the_grid(quality):
    image, mask = spliced_then_saved_losslessly(quality)
    result = read(image)
    assert result.reliability > 0.8 and result.strength > 0.8, result.details
    assert roc_auc(result.map, mask) > 0.95
    assert result.map[mask].mean() > result.map[~mask].mean() + 0.3
    assert "does not" in result.reason


@pytest.mark.parametrize("top, left", [(3, 5), (7, 1)])
def test_a_crop_moves_the_grid_and_the_paste_is_still_found(top, left):
    image, mask = spliced_then_saved_losslessly(85)
    cropped, truth = np.ascontiguousarray(image[top:, left:]), mask[top:, left:]
    result = read(cropped)
    assert result.details["grid_offset"] == [(8 - top) % 8, (8 - left) % 8]
    assert result.strength > 0.8 and roc_auc(result.map, truth) > 0.95


def test_a_region_moved_off_the_grid_within_the_photo_is_found():
    host, _ = pil_jpeg(photo(), 85)
    image, mask = host.copy(), np.zeros(host.shape[:2], bool)
    # Copied from (21, 37) to (203, 251): an offset of (6, 6) modulo 8 off the host's grid.
    image[203:323, 251:411] = host[21:141, 37:197]
    mask[203:323, 251:411] = True
    result = read(image)
    assert result.strength > 0.8 and roc_auc(result.map, mask) > 0.9


@pytest.mark.parametrize("name", ["coffee", "chelsea", "astronaut"])
@pytest.mark.parametrize("qualities", [(85,), (92,), (95, 90), (80, 90)])
def test_an_untouched_jpeg_photo_has_no_off_grid_area(name, qualities):
    # The astronaut's white suit clips at 255 after decoding: a clipped block leaves its lattice
    # though nobody edited it, so clipped blocks are left out (with them, 85 and 92 fail here).
    from skimage import data

    image = np.ascontiguousarray(getattr(data, name)())
    for quality in qualities:
        image, _ = pil_jpeg(image, quality)
    result = read(image)
    assert result.reliability > 0.5 and result.strength < 0.25, result.details


def test_a_paste_saved_as_jpeg_afterwards_sits_on_the_new_grid():
    # A JPEG save after the paste puts every block on one lattice: this trace must not claim it
    # (the jpeg evidence reads that case as double compression).
    image, _ = spliced_then_saved_losslessly(85)
    once_more, _ = pil_jpeg(image, 85)
    assert read(once_more).strength < 0.25


def test_the_fit_is_read_per_coded_coefficient():
    # A flat area codes no coefficient: it carries no evidence rather than reading "off the grid".
    rgb = photo().copy()
    rgb[200:360, 16:200] = (120, 130, 140)
    saved, _ = pil_jpeg(rgb, 90)
    traces = jpeg_traces(saved)
    assert traces.grid_fit_count[26:44, 3:24].sum() == 0
    result = read(saved)
    assert result.strength < 0.25
