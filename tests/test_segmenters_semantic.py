"""DeepLabV3 and PSPNet: export parity (torch vs onnxruntime) and the runtime's regions."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from tests.segmenter_fixtures import DEEPLAB_TEST, PSPNET_TEST, kodak_photo, photo, semantic_exports  # noqa: F401
from wsloc_runtime.errors import InvalidImageError, ModelContractError, ModelNotFoundError
from wsloc_runtime.segmenters import create_segmenter

SPECS = {"deeplab": DEEPLAB_TEST, "pspnet": PSPNET_TEST}


@pytest.mark.parametrize("family", ["deeplab", "pspnet"])
def test_export_parity(semantic_exports, family):
    from export.semantic_export import LOGITS_ATOL

    result = semantic_exports[family]
    print(f"\n{family} export: max |logit diff| {result['max_abs_diff']:.2g}, class agreement {result['class_agreement']:.5f}")
    assert result["max_abs_diff"] < LOGITS_ATOL
    assert result["class_agreement"] == 1.0  # exact: a share of pixels, n / n when every argmax agrees


@pytest.mark.parametrize("family", ["deeplab", "pspnet"])
def test_runtime_regions_on_a_photo(semantic_exports, family):
    segmenter = create_segmenter(family, model_dir=semantic_exports["dir"], providers=["CPUExecutionProvider"])
    assert segmenter.config.input_size == SPECS[family]["input_size"]  # read from the file's metadata
    assert segmenter.config.num_classes == SPECS[family]["num_classes"]  # read from the checkpoint
    images = [photo()] + [p for p in [kodak_photo()] if p is not None]
    for image in images:
        regions = segmenter.segment(image)
        assert regions.masks.shape[1:] == image.shape[:2] and regions.masks.dtype == bool
        assert regions.source == family and len(regions) >= 1
        # A partition (less dropped components): no pixel in two regions.
        assert regions.masks.sum(axis=0).max() <= 1
        # Each region is one connected component of one class.
        class_map = segmenter.last_class_map
        min_area = round(segmenter.min_area_fraction * class_map.size)
        for mask in regions.masks:
            assert len(np.unique(class_map[mask])) == 1
            assert cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] == 2
            assert mask.sum() >= min_area
        print(f"\n{family} on {image.shape}: {len(regions)} regions, timings {segmenter.last_timings}")


def test_runtime_class_map_matches_torch(semantic_exports):
    """The runtime's class map at model size equals the torch model's argmax on the same input."""
    torch = pytest.importorskip("torch")
    from export.semantic_export import SemanticWithPreprocess, build_pspnet

    model = SemanticWithPreprocess(build_pspnet(PSPNET_TEST["backbone"], semantic_exports["dir"] / "pspnet.pth"))
    segmenter = create_segmenter("pspnet", model_dir=semantic_exports["dir"])
    height, width = segmenter.config.input_size
    image = cv2.resize(photo(), (width, height), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        expected = model(torch.from_numpy(image))[1].numpy()
    np.testing.assert_array_equal(segmenter.model.predict(image), expected)


def test_ignore_classes_and_min_area(semantic_exports):
    image = photo()
    everything = create_segmenter("deeplab", model_dir=semantic_exports["dir"], min_area_fraction=0.0)
    everything.segment(image)
    present = np.unique(everything.last_class_map)
    ignored = create_segmenter("deeplab", model_dir=semantic_exports["dir"], ignore_classes=[int(present[0])])
    regions = ignored.segment(image)
    assert not (regions.masks.any(axis=0) & (ignored.last_class_map == present[0])).any()
    with pytest.raises(ValueError):
        create_segmenter("deeplab", model_dir=semantic_exports["dir"], min_area_fraction=1.5)
    with pytest.raises(InvalidImageError):
        everything.segment(image[..., 0])


def test_family_mismatch_and_missing_file(semantic_exports, tmp_path):
    shutil.copy(semantic_exports["dir"] / "deeplab.onnx", tmp_path / "pspnet.onnx")
    with pytest.raises(ModelContractError, match="deeplab"):
        create_segmenter("pspnet", model_dir=tmp_path)
    with pytest.raises(ModelNotFoundError, match="python -m export.segmenters deeplab"):
        create_segmenter("deeplab", model_dir=tmp_path)


def test_cli_exports_random_and_rejects_bad_checkpoints(tmp_path, capsys):
    pytest.importorskip("torch")
    from export.segmenters import main

    assert main(["pspnet", "--random-weights", "--backbone", "resnet18", "--num-classes", "3",
                 "--input-size", "64x80", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "pspnet.onnx").is_file()
    segmenter = create_segmenter("pspnet", model_dir=tmp_path)
    assert segmenter.config.input_size == (64, 80) and segmenter.config.num_classes == 3
    assert main(["deeplab", "--checkpoint", str(tmp_path / "missing.pth"), "--out", str(tmp_path)]) == 2
    bogus = tmp_path / "bogus.pth"
    import torch

    torch.save({"not": torch.zeros(1)}, bogus)
    assert main(["deeplab", "--checkpoint", str(bogus), "--out", str(tmp_path)]) == 2
    assert "classifier.4.weight" in capsys.readouterr().err
