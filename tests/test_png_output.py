"""The outputs' PNG writers: what a decoder reads back is what was meant."""

import cv2
import numpy as np
import pytest
from PIL import Image

from wsloc_runtime.imageio import write_palette_png_atomic, write_png_atomic
from wsloc_runtime.viz import heatmap, heatmap_levels, heatmap_palette


def test_a_palette_heatmap_decodes_to_the_rgb_heatmap(tmp_path):
    rng = np.random.default_rng(0)
    activation = cv2.GaussianBlur(rng.random((97, 131)).astype(np.float32), (0, 0), 3)
    activation = (activation - activation.min()) / (activation.max() - activation.min())
    activation[:5] = 0.0
    activation[-5:] = 1.0  # the wrap-around of the row differences (255 - 0 and back)
    path = write_palette_png_atomic(tmp_path / "h.png", heatmap_levels(activation), heatmap_palette())
    with Image.open(path) as picture:
        assert picture.mode == "P" and picture.size == (131, 97)
        np.testing.assert_array_equal(np.asarray(picture), heatmap_levels(activation))  # the map, x 255
        decoded = np.asarray(picture.convert("RGB"))
    np.testing.assert_array_equal(decoded, heatmap(activation))
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], heatmap(activation))  # OpenCV too
    assert [p.name for p in tmp_path.iterdir()] == ["h.png"]  # no temporary file left behind


def test_png_writers_refuse_what_they_cannot_write_and_leave_no_file(tmp_path):
    with pytest.raises(ValueError, match="HxW uint8 levels"):
        write_palette_png_atomic(tmp_path / "a.png", np.zeros((4, 4), np.float32), heatmap_palette())
    with pytest.raises(ValueError, match=r"\(256, 3\) uint8 palette"):
        write_palette_png_atomic(tmp_path / "b.png", np.zeros((4, 4), np.uint8), np.zeros((16, 3), np.uint8))
    with pytest.raises(ValueError, match="expects uint8"):
        write_png_atomic(tmp_path / "c.png", np.zeros((4, 4), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_rgb_pngs_keep_their_pixels(tmp_path):
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 256, (33, 45, 3), dtype=np.uint8)
    path = write_png_atomic(tmp_path / "p.png", picture)
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], picture)
