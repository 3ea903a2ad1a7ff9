"""copy_move evidence on synthetic forgeries built from scikit-image's CC0 photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from wsloc_runtime.evidence import create_evidence, evidence_names, inputs_for_image
from wsloc_runtime.evidence.copy_move import copy_move_evidence

#: A found copy must overlap the true copy region at least this much (intersection over union).
MIN_IOU = 0.5


def _iou(found: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(found, truth).sum()
    return float(np.logical_and(found, truth).sum() / union) if union else 0.0


def _paste(photo: np.ndarray, box: tuple[int, int, int, int], target_centre: tuple[int, int],
           angle: float = 0.0, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``photo`` with the patch ``box`` = (x, y, w, h) rotated/scaled and pasted centred at
    ``target_centre``; returns the forgery, the copy's mask and the source's mask (bool)."""
    x, y, w, h = box
    height, width = photo.shape[:2]
    source_centre = (x + w / 2.0, y + h / 2.0)
    affine = cv2.getRotationMatrix2D(source_centre, angle, scale)
    affine[:, 2] += np.array(target_centre, float) - np.array(source_centre, float)
    source_mask = np.zeros((height, width), np.uint8)
    source_mask[y:y + h, x:x + w] = 1
    warped = cv2.warpAffine(photo, affine, (width, height), flags=cv2.INTER_LINEAR)
    copy_mask = cv2.warpAffine(source_mask, affine, (width, height), flags=cv2.INTER_NEAREST) > 0
    forged = photo.copy()
    forged[copy_mask] = warped[copy_mask]
    return forged, copy_mask, source_mask > 0


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # 512x512 RGB uint8


def test_registered_with_title():
    assert "copy_move" in evidence_names()
    evidence = create_evidence("copy_move")
    assert evidence.title == "Copy-move"
    assert not evidence.needs_models


def test_translated_copy_is_found(astronaut):
    forged, copy_mask, source_mask = _paste(astronaut, (300, 330, 90, 80), (110, 420))
    reading = copy_move_evidence(forged)
    assert reading.map.shape == forged.shape[:2]
    assert reading.map.dtype == np.float32
    assert 0.0 <= reading.map.min() and reading.map.max() <= 1.0
    found = reading.map > 0.5
    assert _iou(found, copy_mask | source_mask) > MIN_IOU
    assert _iou(found & copy_mask, copy_mask) > MIN_IOU
    assert reading.strength > 0.5
    assert "copies" in reading.reason


def test_rotated_scaled_copy_is_found(astronaut):
    # Resampled by the rotation and scaling, so the exact-block search cannot see it: the
    # keypoint path must.
    forged, copy_mask, source_mask = _paste(astronaut, (170, 20, 150, 140), (400, 400), angle=30, scale=0.8)
    reading = copy_move_evidence(forged)
    found = reading.map > 0.5
    assert _iou(found & ~source_mask, copy_mask) > MIN_IOU, reading.reason
    assert _iou(found & ~copy_mask, source_mask) > MIN_IOU, reading.reason
    assert reading.strength > 0.5
    assert abs(reading.details["rotation_deg"]) == pytest.approx(30, abs=3)
    assert reading.details["scale"] in (pytest.approx(0.8, abs=0.05), pytest.approx(1.25, abs=0.08))


def test_copy_found_after_jpeg(astronaut):
    forged, copy_mask, source_mask = _paste(astronaut, (300, 330, 90, 80), (110, 420), angle=10)
    _, encoded = cv2.imencode(".jpg", forged[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    forged = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    found = copy_move_evidence(forged).map > 0.5
    assert _iou(found, copy_mask | source_mask) > MIN_IOU


@pytest.mark.parametrize("photo", [data.astronaut, data.coffee, data.chelsea])
def test_untouched_photo_gives_no_match(photo):
    reading = copy_move_evidence(photo())
    assert reading.map.max() < 0.1
    assert reading.strength < 0.05
    assert reading.reliability > 0.5
    assert reading.reason.startswith("no duplicated area")


def test_flat_photo_cannot_be_judged():
    flat = np.full((300, 400, 3), 128, np.uint8)
    reading = copy_move_evidence(flat)
    assert reading.reliability == 0.0
    assert reading.strength == 0.0
    assert "flat" in reading.reason
    assert reading.map.shape == (300, 400) and reading.map.max() == 0.0


def test_a_copy_found_in_a_flat_photo_is_fully_reliable(astronaut):
    # A flat wall with one textured object: few keypoints, so "no copy" means little here
    # (low reliability), but a copy that is found and verified proves the trace is present.
    rng = np.random.default_rng(3)
    wall = np.full((360, 480, 3), 120, np.uint8) + rng.integers(0, 6, (360, 480, 3)).astype(np.uint8)
    wall = cv2.GaussianBlur(wall, (0, 0), 3)
    wall[40:110, 40:110] = astronaut[100:170, 180:250]
    untouched = copy_move_evidence(wall)
    assert untouched.strength == 0.0 and untouched.reliability < 0.3
    forged = wall.copy()
    forged[220:290, 330:400] = astronaut[100:170, 180:250]
    found = copy_move_evidence(forged)
    assert found.details["keypoints"] < 400  # the keypoint count alone would say "unreliable"
    assert found.reliability == 1.0 and found.strength > 0.5
    assert found.map[220:290, 330:400].mean() > 0.5 and found.map[40:110, 40:110].mean() > 0.5


def test_compute_returns_working_size_and_mark_copy(astronaut):
    forged, copy_mask, source_mask = _paste(astronaut, (300, 330, 90, 80), (110, 420))
    big = cv2.resize(forged, (1536, 1536), interpolation=cv2.INTER_NEAREST)
    inputs = inputs_for_image(big)
    reading = create_evidence("copy_move").compute(inputs)
    assert reading.map.shape == inputs.working_size == (1024, 1024)
    only_copy = create_evidence("copy_move", mark="copy").compute(inputs_for_image(forged)).map > 0.5
    # One of the two ends, not both.
    assert only_copy.any()
    assert min(_iou(only_copy, copy_mask), _iou(only_copy, source_mask)) < 0.2


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        copy_move_evidence(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        copy_move_evidence(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        create_evidence("copy_move", mark="neither")


def test_tiny_photo_cannot_be_judged():
    noise = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    reading = copy_move_evidence(noise)
    assert reading.reliability == 0.0 and reading.strength == 0.0
    assert "too small" in reading.reason
    assert reading.map.shape == (20, 30)


# --------------------------------------------------------------------------- copies told from look-alikes


def _scene(seed: int) -> tuple[np.ndarray, np.random.Generator, np.ndarray]:
    """A blurred coffee-cup background (no texture of its own to match) and a textured object."""
    background = cv2.GaussianBlur(cv2.resize(data.coffee(), (640, 480), interpolation=cv2.INTER_AREA)
                                  .astype(np.float32), (0, 0), 3)
    thing = cv2.resize(data.astronaut()[40:260, 140:360], (150, 150), interpolation=cv2.INTER_AREA).astype(np.float32)
    return background, np.random.default_rng(seed), thing


def _place(canvas: np.ndarray, patch: np.ndarray, x: int, y: int, corner_shifts) -> None:
    """``patch`` drawn on ``canvas`` at (x, y), its corners moved by ``corner_shifts`` (a view from
    another angle: a perspective, not a similarity)."""
    h, w = patch.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    homography = cv2.getPerspectiveTransform(corners, corners + np.float32(corner_shifts) + np.float32([x, y]))
    size = canvas.shape[1::-1]
    drawn = cv2.warpPerspective(patch, homography, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones((h, w), np.float32), homography, size) > 0.5
    canvas[inside] = drawn[inside]


@pytest.mark.parametrize("seed", [0, 1])
def test_two_real_lookalikes_photographed_apart_are_not_a_copy(seed):
    """Two prints of one object, each seen from its own angle and each with its own sensor noise
    (COVERAGE's originals: two bottles of one brand): the matches agree only roughly with one
    similarity transform, so the reading shows them (where to look) but never says "copy", and
    claims at most LOOKALIKE_CLAIM for the verdict."""
    from wsloc_runtime.evidence.copy_move import LOOKALIKE_CLAIM, MAX_COPY_MISFIT

    canvas, rng, thing = _scene(seed)
    _place(canvas, thing, 60, 150, np.zeros((4, 2)))
    _place(canvas, thing, 400, 160, [[3, -4], [-2, 2], [4, 3], [-3, -2]])
    photo = np.clip(canvas + rng.normal(0, 2.0, canvas.shape), 0, 255).astype(np.uint8)
    reading = copy_move_evidence(photo)
    assert reading.details["copies"] == 0 and reading.details["lookalikes"] >= 1, reading.details
    assert reading.details["misfit_px"] > MAX_COPY_MISFIT
    assert reading.map.max() > 0.5 and reading.strength > LOOKALIKE_CLAIM  # still shown, where to look
    assert reading.claim is not None and reading.claim_strength <= LOOKALIKE_CLAIM
    assert "not as only a copy does" in reading.reason and "copies of each other" not in reading.reason


def test_the_verdict_reads_the_claim_and_the_prior_reads_the_strength():
    """fuse(): a near-copy's map still takes the prior over in proportion to its strength, while the
    probability rises only by its claim."""
    from wsloc_runtime.evidence import EvidenceMap
    from wsloc_runtime.fusion import fuse

    area = np.zeros((40, 40), np.float32)
    area[10:20, 10:20] = 1.0
    near = EvidenceMap("copy_move", area, 1.0, "near-copy", strength=0.9, claim=0.15)
    sure = EvidenceMap("copy_move", area, 1.0, "copy", strength=0.9)
    activation = EvidenceMap("activation", np.full((40, 40), 0.3, np.float32), 1.0, "detectors", strength=0.3)
    with_near, with_sure = fuse([activation, near], 0.3), fuse([activation, sure], 0.3)
    np.testing.assert_array_equal(with_near.prior, with_sure.prior)
    assert with_near.probability < 0.5 < with_sure.probability


@pytest.mark.parametrize("angle", [0.0, 10.0, 25.0])
def test_a_clone_with_its_grain_copied_is_a_copy(angle):
    """The same object area cut from the photo (its noise with it), rotated and pasted: one transform
    explains every match to a fraction of a pixel (pixel for pixel when not rotated)."""
    from wsloc_runtime.evidence.copy_move import MAX_COPY_MISFIT

    canvas, rng, thing = _scene(0)
    _place(canvas, thing, 60, 150, np.zeros((4, 2)))
    photo = np.clip(canvas + rng.normal(0, 2.0, canvas.shape), 0, 255).astype(np.float32)
    rotation = cv2.getRotationMatrix2D((75, 75), angle, 1.0)
    patch = cv2.warpAffine(photo[150:300, 60:210].copy(), rotation, (150, 150), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    rows, columns = np.mgrid[:150, :150]
    disk = (rows - 75) ** 2 + (columns - 75) ** 2 < 70 ** 2
    photo[160:310, 400:550][disk] = patch[disk]
    reading = copy_move_evidence(photo.astype(np.uint8))
    assert reading.details["copies"] >= 1 and reading.details["lookalikes"] == 0, reading.details
    assert reading.details["misfit_px"] <= MAX_COPY_MISFIT and reading.strength > 0.5
    assert reading.details["grain_correlation"] > 0.9  # the grain came with the copy
    assert "copies of each other" in reading.reason
    assert ("pixel for pixel" if angle == 0 else "as only a copy does") in reading.reason


@pytest.mark.parametrize("photo, chain", [("train/48055.jpg", (70, 95)), ("val/19021.jpg", (70, 95))])
def test_blocks_that_jpeg_itself_repeats_are_not_a_copy(shared_data, photo, chain):
    """Untouched BSDS500 photos saved twice more (quality 70, then 95), as an app would: JPEG decodes
    quiet blocks quantized alike to identical pixels, whole blocks apart. These once read as
    "copies" at strength 0.95 and made the verdict "likely manipulated"."""
    from studies.resave_chains import resave_chain
    from wsloc_runtime.imageio import load_image

    path = shared_data / "bsds500" / "images" / photo
    if not path.is_file():
        pytest.skip(f"{path} not present")
    resaved = load_image(resave_chain(load_image(path), chain))
    reading = copy_move_evidence(resaved)
    assert reading.details["jpeg_repeats"] >= 1 and reading.details.get("copies", 0) == 0, reading.details
    assert reading.strength == 0.0
