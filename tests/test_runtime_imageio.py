"""Every kind of input a user can hand over: read correctly, or refused with one clear line."""

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from wsloc_runtime import InvalidImageError, load_image
from wsloc_runtime.imageio import read_image, write_json_atomic, write_png_atomic


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.chelsea()  # 300x451 RGB


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_path_bytes_pil_and_array_agree(photo, tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(photo).save(path)
    for source in (path, str(path), path.read_bytes(), Image.open(path), photo):
        rgb = load_image(source)
        assert rgb.dtype == np.uint8 and rgb.shape == photo.shape
        np.testing.assert_array_equal(rgb, photo)


def test_grayscale_is_expanded(photo):
    gray = Image.fromarray(photo).convert("L")
    rgb = load_image(encode(gray, "PNG"))
    assert rgb.shape == (*photo.shape[:2], 3)
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_rgba_alpha_is_dropped(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(load_image(encode(Image.fromarray(rgba), "PNG")), photo)
    np.testing.assert_array_equal(load_image(rgba), photo)


def test_16_bit_png_keeps_the_top_byte(photo):
    gray16 = (photo[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    ok, data = cv2.imencode(".png", gray16)
    rgb = load_image(data.tobytes())
    np.testing.assert_array_equal(rgb[..., 0], photo[..., 0])


def test_16_bit_rgb_tiff(photo):
    bgr16 = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    ok, data = cv2.imencode(".tiff", bgr16)
    np.testing.assert_array_equal(load_image(data.tobytes()), photo)


def test_cmyk_jpeg_is_converted(photo):
    cmyk = Image.fromarray(photo).convert("CMYK")
    rgb = load_image(encode(cmyk, "JPEG", quality=95))
    assert rgb.shape == photo.shape
    assert np.abs(rgb.astype(int) - photo.astype(int)).mean() < 12


def test_exif_orientation_is_applied(photo):
    image = Image.fromarray(photo)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb = load_image(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    assert rgb.shape == (photo.shape[1], photo.shape[0], 3)


def test_palette_png(photo):
    palette = Image.fromarray(photo).convert("P")
    assert load_image(encode(palette, "PNG")).shape == photo.shape


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "unknown or unsupported image format"),
    ],
)
def test_garbage_is_refused_with_a_reason(payload, message):
    with pytest.raises(InvalidImageError, match=message):
        load_image(payload)


def test_truncated_jpeg_is_refused(photo):
    data = encode(Image.fromarray(photo), "JPEG", quality=90)
    with pytest.raises(InvalidImageError, match="not a readable image"):
        load_image(data[: len(data) // 2])


def test_tiny_image_is_refused():
    with pytest.raises(InvalidImageError, match="1x1 pixels"):
        load_image(encode(Image.new("RGB", (1, 1)), "PNG"))


def test_too_many_pixels_is_refused_before_decoding():
    big = encode(Image.new("RGB", (400, 300)), "PNG")
    with pytest.raises(InvalidImageError, match="limit"):
        load_image(big, max_pixels=100_000)


def test_missing_file_folder_and_wrong_types(tmp_path):
    with pytest.raises(InvalidImageError, match="no such file"):
        load_image(tmp_path / "absent.jpg")
    with pytest.raises(InvalidImageError, match=r"is a folder; expected an image file"):
        load_image(tmp_path)
    with pytest.raises(InvalidImageError, match="unsupported input type"):
        load_image(12345)
    with pytest.raises(InvalidImageError, match="expected HxW"):
        load_image(np.zeros((20, 20, 5), np.uint8))


def test_float_array_in_unit_range(photo):
    rgb = load_image(photo.astype(np.float32) / 255.0)
    assert np.abs(rgb.astype(int) - photo.astype(int)).max() <= 1


def test_atomic_writes_leave_no_partial_file(tmp_path):
    target = tmp_path / "out" / "a.png"
    write_png_atomic(target, np.zeros((4, 4), np.uint8))
    assert cv2.imread(str(target), cv2.IMREAD_UNCHANGED).shape == (4, 4)
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "out" / "b.json", {"bad": object()})
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png"]


def test_animated_gif_is_read_on_its_first_frame_and_says_so(photo):
    frames = [Image.fromarray(np.roll(photo, 40 * index, axis=1)) for index in range(3)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    decoded = read_image(gif)
    first = np.asarray(Image.open(io.BytesIO(gif)).convert("RGB"))
    np.testing.assert_array_equal(decoded.rgb, first)
    assert decoded.frames == 3
    assert decoded.notes == ["the file holds 3 frames (animated or multi-page); only the first was analysed"]
    assert read_image(encode(frames[0], "GIF")).notes == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)], ids=["umask022", "umask027"])
def test_atomic_writes_honour_the_umask_as_open_does(tmp_path, umask, mode):
    """mkstemp's 0600 would hide every output from a web server or a colleague."""
    previous = os.umask(umask)
    try:
        png = write_png_atomic(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
        document = write_json_atomic(tmp_path / "a.json", {"a": 1})
        with open(tmp_path / "plain.txt", "w"):
            pass
    finally:
        os.umask(previous)
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == mode
    assert png.stat().st_mode & 0o777 == mode and document.stat().st_mode & 0o777 == mode
