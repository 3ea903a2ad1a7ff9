"""The speed-ups of issue 28 compute the same numbers as the code they replaced (no timing here)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

import wsloc_runtime.sel as sel_module
from wsloc_runtime import jpeg_traces
from wsloc_runtime.evidence import create_evidence
from wsloc_runtime.evidence.base import EvidenceInputs, resize_map
from wsloc_runtime.regions import Regions, distance_weighted_mean, region_similarity, soft_dice


def camera_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(big.astype(np.int16) + rng.normal(0, 3, big.shape).astype(np.int16), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def test_block_dct_matches_the_einsum_it_replaced():
    """Two float64 computations of the same sums in different orders (BLAS matmuls against einsum):
    equal within what float64 rounding allows. Each coefficient sums 64 products of a luminance
    (|y| <= 128) and two DCT weights (<= 1/2), so |c| <= 64 * 128 / 4 = 2048 and each way of
    summing is within 64 * eps * 2048 of the exact value."""
    y = jpeg_traces.luminance(camera_like(203, 157), np.float64)
    d = jpeg_traces.DCT_MATRIX
    tolerance = 2 * 64 * np.finfo(np.float64).eps * 2048
    for offset in [(0, 0), (3, 5)]:
        dy, dx = offset
        part = y[dy:, dx:]
        rows, cols = part.shape[0] // 8, part.shape[1] // 8
        blocks = part[: rows * 8, : cols * 8].reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3)
        reference = np.einsum("ij,abjk,lk->abil", d, blocks, d, optimize=True).reshape(rows, cols, 64)
        computed = jpeg_traces.block_dct(y, offset)
        assert computed.dtype == np.float64
        np.testing.assert_allclose(computed, reference, rtol=0, atol=tolerance)


@pytest.mark.parametrize("strips", [False, True])
def test_one_reencoding_gives_the_sel_and_the_ela_map_bit_for_bit(monkeypatch, strips):
    rgb = camera_like(301, 517)
    work = (400, 233)
    sizes = [(64, 64), work]
    whole_sel = sel_module.resized_error_levels(rgb, sizes, 90)
    if strips:  # the large-photo path: re-encoding in strips with margins
        monkeypatch.setattr(sel_module, "STRIP_THRESHOLD_PIXELS", 1000)
        monkeypatch.setattr(sel_module, "STRIP_ROWS", 64)
    levels = sel_module.error_levels_pass(rgb, sizes, 90, ela_size=work)
    expected_ela = resize_map(sel_module.error_level_map(rgb, 90), work)
    np.testing.assert_array_equal(levels.ela, expected_ela)
    assert levels.ela_peak > 0 and levels.quality == 90
    for got, want in zip(levels.resized, whole_sel):
        if strips:  # the strips' row resize sums in another order (as before this change)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)
        else:
            np.testing.assert_array_equal(got, want)
    # The evidence reads the shared map, and it is the map it would compute itself.
    ela = create_evidence("ela")
    image = cv2.resize(rgb, work[::-1], interpolation=cv2.INTER_AREA)
    shared = ela.compute(EvidenceInputs(image=image, full=rgb, error_levels=levels))
    own = ela.compute(EvidenceInputs(image=image, full=rgb))
    np.testing.assert_array_equal(shared.map, own.map)
    assert (shared.reliability, shared.reason) == (own.reliability, own.reason)


def test_ela_of_a_photo_jpeg_leaves_unchanged_is_empty():
    flat = np.full((40, 48, 3), 128, np.uint8)
    levels = sel_module.error_levels_pass(flat, [(20, 24)], 90, ela_size=(20, 24))
    assert levels.ela_peak == 0 and not levels.ela.any()


def test_regions_from_label_maps_match_one_comparison_per_label_with_their_boxes():
    rng = np.random.default_rng(0)
    maps = [rng.integers(0, 9, (37, 53)).astype(np.int32), rng.integers(-2, 5, (37, 53)) * 100]
    regions = Regions.from_label_maps(maps)
    expected = []
    for labels in maps:
        values, counts = np.unique(labels, return_counts=True)
        expected += [labels == v for v in values[values >= 0]]
    np.testing.assert_array_equal(regions.masks, np.stack(expected))
    for mask, (top, bottom, left, right) in zip(regions.masks, regions.boxes):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert (top, bottom, left, right) == (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)
    activation = rng.random((37, 53)).astype(np.float32)
    without_boxes = Regions(regions.masks.copy())
    for score in (region_similarity, soft_dice, distance_weighted_mean):
        np.testing.assert_allclose(score(regions, activation), score(without_boxes, activation), rtol=1e-9)
    assert len(Regions.from_labels(np.full((4, 4), -1))) == 0


def test_regions_from_label_maps_read_one_region_as_the_full_masks_do():
    """Regions made from label maps build no mask array unless asked: each region read alone
    (mask, crop) is that region of the full array."""
    rng = np.random.default_rng(1)
    maps = [rng.integers(0, 6, (21, 30)).astype(np.int32), rng.integers(-1, 3, (21, 30)).astype(np.int32)]
    regions = Regions.from_label_maps(maps, min_area=2)
    assert regions._masks is None  # nothing written yet
    assert len(regions) == sum(len(np.flatnonzero(np.bincount(m[m >= 0]) >= 2)) for m in maps)
    assert regions.shape == (21, 30)
    full = Regions.from_label_maps(maps, min_area=2).masks
    for index in range(len(regions)):
        np.testing.assert_array_equal(regions.mask(index), full[index])
        np.testing.assert_array_equal(regions.crop(index, 3, 17, 4, 25), full[index, 3:17, 4:25])
    with pytest.raises(IndexError):
        regions.mask(len(regions))


def test_stages_run_beside_the_models_give_the_result_run_in_turn(monkeypatch):
    """Copy-move and the segmenter run on background threads while the models run: the result must be
    the one the stages give run one after the other."""
    from wsloc_runtime.evidence.copy_move import CopyMoveEvidence
    from wsloc_runtime.pipeline import Localizer

    photo = camera_like(640, 480)
    photo[100:180, 300:380] = photo[300:380, 100:180]  # a copy, so that copy-move has something to say
    localizer = Localizer()
    beside = localizer.localize(photo)
    assert beside.evidence["copy_move"].strength > 0
    monkeypatch.setattr(CopyMoveEvidence, "runs_beside_models", False)
    in_turn = localizer.localize(photo)
    assert beside.probability == in_turn.probability and beside.verdict == in_turn.verdict
    np.testing.assert_array_equal(beside.enhanced, in_turn.enhanced)
    np.testing.assert_array_equal(beside.regions.masks, in_turn.regions.masks)
    for name, reading in beside.evidence.items():
        np.testing.assert_array_equal(reading.map, in_turn.evidence[name].map)
    assert {"evidence_copy_move", "segmenter"} <= set(beside.timings)


def test_output_pictures_are_the_straightforward_ones(tmp_path):
    """The mask PNG (drawn at the working size, then enlarged) and the indexed heatmap PNG hold the
    pixels of enlarging the mask, and of colouring each enlarged level, at the photo's size."""
    from wsloc_runtime.outputs import mask_picture, write_result_files
    from wsloc_runtime.pipeline import Localizer
    from wsloc_runtime.viz import heatmap_levels, heatmap_palette, mask_image

    photo = camera_like(1300, 700)  # larger than the working size, so both are enlarged
    photo[100:260, 300:460] = photo[400:560, 700:860]
    result = Localizer().localize(photo)
    assert result.original_size != result.working_size
    np.testing.assert_array_equal(mask_picture(result), mask_image(result.full_size(result.reported_mask)))
    write_result_files(result, tmp_path, "p", "photo")
    heat = cv2.imread(str(tmp_path / "p_heatmap.png"))[..., ::-1]
    np.testing.assert_array_equal(heat, heatmap_palette()[result.full_size(heatmap_levels(result.enhanced))])
    mask = cv2.imread(str(tmp_path / "p_mask.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(mask, mask_picture(result))
