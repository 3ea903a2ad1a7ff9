"""SAM: numpy ports vs segment_anything, ONNX export parity, and mask-generator parity.

The parity tests run segment_anything's SamAutomaticMaskGenerator (torch) and our
SamSegmenter (onnxruntime + numpy) on the same random-weight SAM and the same photo.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.segmenter_fixtures import TINY_SAM_IMG_SIZE, mask_iou_matrix, photo, tiny_sam, tiny_sam_dir, tiny_sam_export  # noqa: F401
from wsloc_runtime.errors import InvalidImageError, ModelNotFoundError
from wsloc_runtime.segmenters import create_segmenter
from wsloc_runtime.segmenters import sam as samrt

# Random weights give predicted IoUs around 0.0-0.2 and stability scores around 0.5-0.95
# (SAM's defaults 0.88 / 0.95 would keep nothing), so the parity tests lower both
# filters, the same for torch and for us, to keep a meaningful number (>= 5) of masks.
TEST_THRESHOLDS = {"pred_iou_thresh": 0.1, "stability_score_thresh": 0.85}
# torch vs onnxruntime stability scores: a ratio of pixel counts, so not a float rounding bound but
# a stated claim: logits within the decoder's parity of a threshold flip at most 1 % of a mask's pixels.
STABILITY_TOL = 1e-2


# ---------------------------------------------------------------------------------------
# numpy ports, checked against segment_anything's own functions


def test_point_grids_and_crop_boxes_match_segment_anything():
    amg = pytest.importorskip("segment_anything.utils.amg")
    for n, layers, scale in ((32, 0, 1), (16, 2, 2), (7, 1, 1)):
        ours = samrt.build_all_layer_point_grids(n, layers, scale)
        theirs = amg.build_all_layer_point_grids(n, layers, scale)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)
    for size, layers in (((300, 451), 1), ((512, 768), 2), ((1000, 333), 1)):
        assert samrt.generate_crop_boxes(size, layers, 512 / 1500) == amg.generate_crop_boxes(size, layers, 512 / 1500)


def test_box_nms_matches_torchvision():
    torch = pytest.importorskip("torch")
    from torchvision.ops import nms

    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(1, 80))
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 120, (n, 2))], axis=1).astype(np.float32)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        threshold = float(rng.uniform(0.2, 0.9))
        expected = nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        np.testing.assert_array_equal(samrt.box_nms(boxes, scores, threshold), expected)


def test_mask_boxes_stability_and_small_regions_match_segment_anything():
    torch = pytest.importorskip("torch")
    amg = pytest.importorskip("segment_anything.utils.amg")
    rng = np.random.default_rng(1)
    import cv2

    logits = cv2.GaussianBlur(rng.normal(0, 3, (6, 40, 50)).transpose(1, 2, 0).astype(np.float32), (0, 0), 3)
    logits = np.ascontiguousarray(logits.transpose(2, 0, 1) * 8)
    logits[0] = -5.0  # an empty mask
    masks = logits > 0
    np.testing.assert_array_equal(samrt.masks_to_boxes(masks), amg.batched_mask_to_box(torch.from_numpy(masks)).numpy())
    expected = amg.calculate_stability_score(torch.from_numpy(logits), 0.0, 1.0).numpy()
    ours = samrt.stability_score(logits, 0.0, 1.0)
    # exact: both divide the same integer pixel counts (< 2^24, exact in float32) in float32, one
    # correctly rounded IEEE division each
    np.testing.assert_array_equal(ours[1:], expected[1:])
    assert ours[0] == 0.0 and np.isnan(expected[0])  # empty: both fail every filter
    for mask in masks[1:]:
        for mode in ("holes", "islands"):
            got, changed = samrt.remove_small_regions(mask, 60, mode)
            want, want_changed = amg.remove_small_regions(mask, 60, mode)
            assert changed == want_changed
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        samrt.remove_small_regions(masks[1], 60, "bogus")


def test_resize_is_bit_exact_with_pil():
    Image = pytest.importorskip("PIL.Image")
    image = photo()
    for size in ((171, 256), (683, 1024), (100, 150), (300, 451)):
        expected = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR))
        np.testing.assert_array_equal(samrt.resize_bilinear_like_pil(image, size), expected)


# ---------------------------------------------------------------------------------------
# export


def test_sam_export_parity_and_metadata(tiny_sam_export):
    onnx = pytest.importorskip("onnx")
    from export.sam_export import DECODER_ATOL, ENCODER_ATOL

    # export_sam raises ParityError beyond atol + rtol*|torch value| (the test model's mask
    # logits reach ~100, so the decoder's absolute difference may exceed atol alone).
    print(f"\nSAM export max |onnxruntime - torch|: encoder {tiny_sam_export['encoder_max_abs_diff']:.2g}, "
          f"decoder {tiny_sam_export['decoder_max_abs_diff']:.2g}")
    assert tiny_sam_export["encoder_max_abs_diff"] < ENCODER_ATOL
    assert tiny_sam_export["decoder_max_abs_diff"] < 10 * DECODER_ATOL
    for part in ("encoder", "decoder"):
        meta = {p.key: p.value for p in onnx.load(str(tiny_sam_export[part]), load_external_data=False).metadata_props}
        config = json.loads(meta["wsloc.segmenter"])
        assert config["part"] == part and config["img_size"] == TINY_SAM_IMG_SIZE
        assert config["embedding_shape"] == [32, TINY_SAM_IMG_SIZE // 16, TINY_SAM_IMG_SIZE // 16]
        assert config["pixel_mean"] == [123.675, 116.28, 103.53]


def test_decoder_takes_a_batch_of_prompts_and_gives_three_masks(tiny_sam_dir):
    segmenter = create_segmenter("sam", model_dir=tiny_sam_dir, providers=["CPUExecutionProvider"])
    image = photo()
    embedding = segmenter.encoder.embed(image)
    points = np.asarray([[10.0, 20.0], [200.0, 150.0], [440.0, 290.0], [5.0, 5.0], [300.0, 100.0]])
    masks, iou = segmenter.decoder.predict(embedding, points, image.shape[:2])
    assert masks.shape == (5, 3, *image.shape[:2]) and iou.shape == (5, 3)
    one, _ = segmenter.decoder.predict(embedding, points[1:2], image.shape[:2])
    # batching does not change a prompt's masks: a batch changes only the kernels' blocking, i.e. the
    # float32 summation order, held to the decoder's stated parity tolerance (export/sam_export.py
    # DECODER_ATOL, what two float32 evaluations of the decoder may differ by)
    from export.sam_export import DECODER_ATOL

    np.testing.assert_allclose(one[0], masks[1], rtol=0, atol=DECODER_ATOL)


def test_external_data_encoder_runs(tiny_sam, tiny_sam_dir, tmp_path, monkeypatch):
    import export.sam_export as sam_export

    # "auto" switches to external data over the protobuf limit (ViT-H); lower the limit
    # so the tiny model takes that branch.
    monkeypatch.setattr(sam_export, "PROTOBUF_LIMIT", 1000)
    path, _ = sam_export.export_encoder(tiny_sam, tmp_path / "sam_encoder.onnx", "tiny", external_data="auto")
    assert (tmp_path / "sam_encoder.onnx.data").is_file()
    image = photo()
    split = samrt.SamEncoder(path, ["CPUExecutionProvider"]).embed(image)
    single = samrt.SamEncoder(tiny_sam_dir / "sam_encoder.onnx", ["CPUExecutionProvider"]).embed(image)
    # exact: the same graph and the same float32 weights (only stored apart), the same kernels
    np.testing.assert_array_equal(split, single)


# ---------------------------------------------------------------------------------------
# the mask generator: torch SamAutomaticMaskGenerator vs ours


def _assert_same_masks(reference: list[dict], ours: list[dict]) -> np.ndarray:
    """Counts within 5%, and a one-to-one matching with IoU >= 0.95; returns matched IoUs."""
    assert len(reference) >= 5, f"test thresholds left only {len(reference)} masks; the comparison would be empty"
    assert abs(len(ours) - len(reference)) <= 0.05 * len(reference), (len(ours), len(reference))
    a = np.stack([r["segmentation"] for r in reference])
    b = np.stack([r["segmentation"] for r in ours])
    iou = mask_iou_matrix(a, b)
    best = iou.argmax(axis=1)
    matched = iou[np.arange(len(a)), best]
    assert len(set(best.tolist())) == len(best), "two reference masks matched the same mask"
    assert matched.min() >= 0.95, matched
    return matched


def _parity(tiny_sam, tiny_sam_dir, **params):
    torch = pytest.importorskip("torch")
    from segment_anything import SamAutomaticMaskGenerator

    image = photo()
    with torch.no_grad():
        reference = SamAutomaticMaskGenerator(tiny_sam, **params).generate(image)
    segmenter = create_segmenter("sam", model_dir=tiny_sam_dir, providers=["CPUExecutionProvider"], **params)
    ours = segmenter.generate(image)
    matched = _assert_same_masks(reference, ours)
    from export.sam_export import DECODER_ATOL, DECODER_RTOL

    for r, o in zip(reference, ours):  # same order: both sort by the same scores
        # the predicted IoU is a decoder output: the export's parity (atol + rtol * |torch value|)
        assert abs(r["predicted_iou"] - o["predicted_iou"]) <= DECODER_ATOL + DECODER_RTOL * abs(r["predicted_iou"])
        # the stability score is a ratio of pixel counts at logit thresholds +-1: the pixels whose
        # logits lie within that parity of a threshold may fall either side; STABILITY_TOL claims
        # they are at most 1 % of a mask
        assert abs(r["stability_score"] - o["stability_score"]) < STABILITY_TOL
    print(f"\nSAM parity {params}: {len(reference)} torch / {len(ours)} onnx masks, "
          f"matched IoU min {matched.min():.4f}, timings {segmenter.last_timings}")
    return segmenter, ours


def test_mask_generator_parity_with_segment_anything(tiny_sam, tiny_sam_dir):
    # 16x16 points instead of 32x32 keeps the torch reference to seconds on 2 cores.
    _parity(tiny_sam, tiny_sam_dir, points_per_side=16, **TEST_THRESHOLDS)


def test_mask_generator_parity_with_crops_and_small_region_cleanup(tiny_sam, tiny_sam_dir):
    _parity(tiny_sam, tiny_sam_dir, points_per_side=8, crop_n_layers=1, min_mask_region_area=100, **TEST_THRESHOLDS)


# ---------------------------------------------------------------------------------------
# the runtime interface


def test_create_segmenter_sam_on_a_photo(tiny_sam_dir):
    segmenter = create_segmenter("sam", model_dir=tiny_sam_dir, points_per_side=8, **TEST_THRESHOLDS)
    image = photo()
    regions = segmenter.segment(image)
    assert regions.masks.dtype == bool and regions.masks.shape[1:] == image.shape[:2]
    assert regions.source == "sam" and len(regions) >= 1
    assert set(segmenter.last_timings) == {"encoder", "decoder", "postprocess", "total"}
    assert segmenter.providers


def test_sam_default_parameters_are_segment_anythings():
    import inspect

    amg = pytest.importorskip("segment_anything.automatic_mask_generator")
    theirs = inspect.signature(amg.SamAutomaticMaskGenerator.__init__).parameters
    ours = inspect.signature(samrt.SamSegmenter.__init__).parameters
    for name in ("points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
                 "stability_score_offset", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh",
                 "crop_overlap_ratio", "crop_n_points_downscale_factor", "point_grids", "min_mask_region_area"):
        assert ours[name].default == theirs[name].default, name


def test_sam_rejects_bad_input_and_parameters(tiny_sam_dir):
    segmenter = create_segmenter("sam", model_dir=tiny_sam_dir, points_per_side=4)
    with pytest.raises(InvalidImageError):
        segmenter.segment(np.zeros((32, 32), np.uint8))
    with pytest.raises(InvalidImageError):
        segmenter.segment(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError):
        create_segmenter("sam", model_dir=tiny_sam_dir, points_per_side=None)
    with pytest.raises(ValueError):
        create_segmenter("sam", model_dir=tiny_sam_dir, points_per_batch=0)


def test_missing_sam_files_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("WSLOC_HF_REPO", "example-org/wsloc-models-that-do-not-exist")
    monkeypatch.setenv("WSLOC_MODELS", str(tmp_path))
    try:  # huggingface_hub reads HF_HUB_OFFLINE once, at import
        import huggingface_hub.constants as hf_constants

        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True, raising=False)
    except ImportError:
        pass
    from wsloc_runtime.models import BUNDLED_MODELS

    if (BUNDLED_MODELS / "sam_encoder.onnx").exists():
        pytest.skip("bundled SAM files exist")
    with pytest.raises(ModelNotFoundError) as caught:
        create_segmenter("sam")
    message = str(caught.value)
    for needed in ("sam_encoder.onnx", "sam_decoder.onnx", str(tmp_path), "example-org/wsloc-models-that-do-not-exist",
                   "python -m export.segmenters sam"):
        assert needed in message, needed
    # An explicit directory without the files is reported as such, again as one error.
    with pytest.raises(ModelNotFoundError) as caught:
        create_segmenter("sam", model_dir=tmp_path / "empty")
    assert str(tmp_path / "empty") in str(caught.value) and "python -m export.segmenters sam" in str(caught.value)


def test_encoder_and_decoder_from_different_models_are_refused(tiny_sam_dir, tmp_path):
    pytest.importorskip("segment_anything")
    import shutil

    from export.sam_export import build_tiny_sam, export_decoder
    from wsloc_runtime.errors import ModelContractError

    shutil.copy(tiny_sam_dir / "sam_encoder.onnx", tmp_path / "sam_encoder.onnx")
    export_decoder(build_tiny_sam(seed=1, img_size=128), tmp_path / "sam_decoder.onnx", "tiny")
    with pytest.raises(ModelContractError, match="different models"):
        create_segmenter("sam", model_dir=tmp_path)
    # A decoder file in the encoder's place is refused too.
    shutil.copy(tmp_path / "sam_decoder.onnx", tmp_path / "sam_encoder.onnx")
    with pytest.raises(ModelContractError, match="expected the encoder"):
        create_segmenter("sam", model_dir=tmp_path)


def test_hub_download_also_fetches_the_external_data_file(tmp_path, monkeypatch):
    """A graph that came from the Hub cache gets its .data companion from the Hub as well."""
    from wsloc_runtime.segmenters import model_files

    snapshot = tmp_path / "hub-snapshot"
    snapshot.mkdir()
    requested = []

    def fake_resolve(filename, explicit=None, hub_repo=None, revision=None, **_):
        requested.append(filename)
        (snapshot / filename).write_bytes(b"")
        return snapshot / filename

    monkeypatch.setattr(model_files, "resolve_model", fake_resolve)
    found = model_files.resolve_segmenter_files("sam")
    assert found["encoder"] == snapshot / "sam_encoder.onnx"
    assert requested == ["sam_encoder.onnx", "sam_encoder.onnx.data", "sam_decoder.onnx"]
