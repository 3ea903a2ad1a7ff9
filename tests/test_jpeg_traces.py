"""JPEG traces on the 8x8 grid and the input features built on them: no model, real photos
(scikit-image's CC0 samples) put through real JPEG encoders."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import jpeg_cycle
from wsloc_runtime.config import WCBnetConfig
from wsloc_runtime.errors import ModelContractError
from wsloc_runtime.inputs import feature_channels, raw_inputs, scale_input, select_channels
from wsloc_runtime.jpeg_traces import FREQUENCIES, jpeg_traces, single_compression_evidence, single_compression_map
from wsloc_runtime.metrics import roc_auc
from wsloc_runtime.sel import resized_error_levels


def photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:384, :448])


def pil_jpeg(rgb: np.ndarray, quality: int) -> tuple[np.ndarray, list[int]]:
    """``rgb`` through Pillow's JPEG at ``quality``; returns the decoded photo and its luminance table
    (natural order)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded.convert("RGB")), list(decoded.quantization[0])


def test_steps_are_the_jpeg_table_and_the_grid_is_found_after_a_crop():
    compressed, table = pil_jpeg(photo(), 80)
    traces = jpeg_traces(compressed)
    assert traces.has_grid and traces.offset == (0, 0)
    # The lowest ten AC frequencies always have enough non-zero coefficients to read their step.
    assert list(traces.steps[:10]) == [table[f] for f in FREQUENCIES[:10]]
    cropped = np.ascontiguousarray(compressed[3:, 5:])
    assert jpeg_traces(cropped).offset == (5, 3)  # the grid now starts 8 - 3 rows and 8 - 5 columns in


def test_no_jpeg_history_gives_no_grid_and_zero_maps():
    import cv2

    never_compressed = cv2.resize(photo(), None, fx=0.77, fy=0.77, interpolation=cv2.INTER_AREA)
    traces = jpeg_traces(never_compressed)
    assert not traces.has_grid
    assert not traces.double_quantization.any() and not traces.lattice_fit.any()
    assert not single_compression_evidence(traces).any()


def spliced_double_jpeg() -> tuple[np.ndarray, np.ndarray]:
    """A photo compressed at quality 90, a never-compressed region pasted off the grid, the whole
    saved at 75: the host is doubly quantized, the pasted region singly."""
    from skimage import data

    host, _ = pil_jpeg(photo(), 90)
    donor = np.ascontiguousarray(data.chelsea()[:300, :400])
    image = host.copy()
    mask = np.zeros(host.shape[:2], bool)
    top, left, height, width = 101, 203, 150, 180
    image[top : top + height, left : left + width] = donor[37 : 37 + height, 51 : 51 + width]
    mask[top : top + height, left : left + width] = True
    final, _ = pil_jpeg(image, 75)
    return final, mask


def test_double_quantization_marks_the_singly_compressed_region():
    image, mask = spliced_double_jpeg()
    traces = jpeg_traces(image)
    assert traces.has_grid and any(traces.first_steps)
    heat = single_compression_map(image)
    assert heat.shape == mask.shape and 0.0 <= heat.min() and heat.max() <= 1.0
    assert roc_auc(heat, mask) > 0.9
    # Per block: most of the pasted region's blocks lean to single compression, most of the host's
    # to double (single blocks are weak evidence; pooling over neighbours makes the map above).
    ratio = traces.double_quantization
    blocks = mask[: ratio.shape[0] * 8 : 8, : ratio.shape[1] * 8 : 8]
    assert (ratio[blocks] < 0).mean() > 0.7 and (ratio[~blocks] < 0).mean() < 0.4
    # The one-sided evidence is where the pasted region is, and nearly absent elsewhere.
    evidence = single_compression_evidence(traces)
    assert evidence.min() >= 0.0 and evidence[blocks].mean() > 4 * evidence[~blocks].mean()


def test_lattice_fit_marks_a_region_moved_off_the_grid_in_a_lossless_save():
    host, _ = pil_jpeg(photo(), 85)
    image = host.copy()
    mask = np.zeros(host.shape[:2], bool)
    image[203:323, 93:253] = host[40:160, 211:371]  # shifted by (163, -118): off the 8x8 grid
    mask[203:323, 93:253] = True
    traces = jpeg_traces(image)  # never re-compressed: the host's lattice is the only one
    fit = traces.lattice_fit
    blocks = mask[: fit.shape[0] * 8 : 8, : fit.shape[1] * 8 : 8]
    assert fit[~blocks].mean() > 0.15 and fit[blocks].mean() < fit[~blocks].mean() - 0.15


def test_raw_inputs_stack_features_in_the_order_asked():
    image, _ = spliced_double_jpeg()
    sizes = [(64, 96), (32, 32)]
    stacked = raw_inputs(image, ["jpeg_dq", "sel", "jpeg_lattice"], sizes)
    assert [s.shape for s in stacked] == [(64, 96, 5), (32, 32, 5)]
    sel = resized_error_levels(image, sizes)
    # exact: raw_inputs calls the same resized_error_levels / jpeg_traces on the same photo and only
    # stacks (copies) their channels, so these are the same float computations, bit for bit
    for maps, expected in zip(stacked, sel):
        np.testing.assert_array_equal(select_channels(maps, ["jpeg_dq", "sel", "jpeg_lattice"], ["sel"]), expected)
    dq_only = raw_inputs(image, ["jpeg_dq"], sizes[:1])[0]
    np.testing.assert_array_equal(dq_only[..., 0], stacked[0][..., 0])
    sq = raw_inputs(image, ["jpeg_sq"], sizes[:1])[0]
    assert sq.shape == (64, 96, 1) and sq.min() >= 0.0 and sq.max() > 1.0


def test_scale_input_scales_each_feature_its_own_way():
    raw = np.zeros((4, 4, 6), np.float32)
    raw[..., :3] = 32.0  # SEL: fixed scaling divides by sel_scale and clips
    raw[..., 3] = 1000.0  # a huge double-quantization ratio is clipped
    raw[..., 4] = -0.5  # lattice fit passes through
    raw[..., 5] = 6.0  # single-compression evidence is divided by SQ_SCALE
    scaled = scale_input(raw, ["sel", "jpeg_dq", "jpeg_lattice", "jpeg_sq"], "fixed", 16.0, 1.5)
    # exact arithmetic (division by 16 and by SQ_SCALE = 4, clips, a pass-through): allclose's default
    # rtol = 1e-7 is below one float32 ulp, so this is an equality check
    np.testing.assert_allclose(scaled[0, 0], [1.5, 1.5, 1.5, 4.0, -0.5, 1.5])
    with pytest.raises(ValueError, match="channels"):
        scale_input(raw[..., :4], ["sel", "jpeg_dq", "jpeg_lattice", "jpeg_sq"], "fixed", 16.0, 1.5)


def test_config_carries_features_and_verdict_band_and_reads_old_files():
    config = WCBnetConfig(cbam_scale=3, input_features=("sel", "jpeg_dq"), verdict_band=(0.3, 0.7))
    again = WCBnetConfig.from_json(config.to_json())
    assert again == config and again.input_channels == 4 == feature_channels(["sel", "jpeg_dq"])
    old = json.loads(config.to_json())
    del old["input_features"], old["verdict_band"]
    legacy = WCBnetConfig.from_json(json.dumps(old))
    assert legacy.input_features == ("sel",) and legacy.input_channels == 3 and legacy.verdict_band == (0.5, 0.5)
    with pytest.raises(ModelContractError, match="input_features"):
        WCBnetConfig(cbam_scale=2, input_features=("sel", "exif"))
    with pytest.raises(ModelContractError, match="verdict_band"):
        WCBnetConfig(cbam_scale=2, verdict_band=(0.8, 0.2))


def test_jpeg_traces_refuses_what_is_not_an_rgb_photo():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        jpeg_traces(np.zeros((64, 64), np.uint8))
    tiny = jpeg_cycle(np.full((12, 12, 3), 128, np.uint8), 90)
    assert not jpeg_traces(tiny).has_grid  # too small to estimate: no evidence, no error
