"""Reading user images into one canonical form, and writing outputs atomically.

Everything downstream of :func:`load_image` may assume an ``HxWx3`` ``uint8`` RGB
array, C-contiguous, with EXIF orientation applied. Anything else a user can hand
us (paths, bytes, PIL images, arrays of other layouts, 16-bit, CMYK, palette,
alpha, grayscale) is converted here or refused with :class:`InvalidImageError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImageError

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]

EXIF_ORIENTATION = 0x0112
#: Smallest side accepted. Below two JPEG blocks per side there is no error-level signal.
MIN_SIDE = 16
#: Largest image accepted by default, in pixels (a 12000x9000 photo is 108 MP).
DEFAULT_MAX_PIXELS = 120_000_000
#: Suffixes a folder scan treats as images (a corrupt file with one of them is a failure, not skipped).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".jp2", ".ppm", ".pgm"}


@dataclass(frozen=True)
class DecodedImage:
    """What :func:`read_image` made of a source: the RGB array and how many frames the file held."""

    rgb: np.ndarray
    frames: int = 1

    @property
    def notes(self) -> list[str]:
        """Things a reader of the result must know about how the input was read, one line each."""
        if self.frames > 1:
            return [f"the file holds {self.frames} frames (animated or multi-page); only the first was analysed"]
        return []


def _check_size(height: int, width: int, max_pixels: int, name: str) -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise InvalidImageError(
            f"{name}: image is {width}x{height} pixels; wsloc needs at least {MIN_SIDE}x{MIN_SIDE}"
        )
    if height * width > max_pixels:
        raise InvalidImageError(
            f"{name}: image is {width}x{height} = {height * width / 1e6:.1f} MP; "
            f"the limit is {max_pixels / 1e6:.0f} MP"
        )


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an integer or float array of any depth to uint8 without wrapping."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        peak = int(array.max()) if array.size else 0
        if peak <= 255 and array.min() >= 0:
            return array.astype(np.uint8)
        # 16-bit data (TIFF, PNG): keep the top 8 bits, as a viewer would show it.
        scale = 65535.0 if peak <= 65535 else float(peak)
        return np.clip(array.astype(np.float64) / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        scale = 1.0 if finite.max(initial=0.0) <= 1.0 else 255.0
        return np.clip(finite / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
    raise InvalidImageError(f"unsupported array dtype {array.dtype}; expected uint8, uint16 or float")


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]  # alpha dropped: error levels live in the colour channels
    elif not (array.ndim == 3 and array.shape[2] == 3):
        raise InvalidImageError(
            f"{name}: array of shape {array.shape}; expected HxW, HxWx1, HxWx3 (RGB) or HxWx4 (RGBA)"
        )
    return np.ascontiguousarray(_to_uint8(array))


def _pil_to_rgb(image: Image.Image, name: str) -> np.ndarray:
    try:
        # exif_transpose copies the image even when there is nothing to do (+400 MB at 108 MP).
        if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        pass
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _array_to_rgb(np.asarray(image), name)
    if image.mode != "RGB":
        # CMYK, palette, LA, RGBA, 1-bit and YCbCr all have a well-defined RGB view.
        image = image.convert("RGBA" if "transparency" in image.info else image.mode).convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


@contextlib.contextmanager
def _size_checked_by_wsloc():
    """Silence Pillow's ``DecompressionBombWarning`` (89 MP, whatever ``max_pixels`` says): the
    header's size goes through :func:`_check_size` before anything is decoded, so the warning
    would only add source lines to a command's output. Pillow's other warnings about a damaged file
    ("Corrupt EXIF data", "Truncated File Read") are silenced too: the file either reads, or
    fails with wsloc's one-line message. (Warning filters are process-wide; in a threaded server
    the worst a race can do is let one warning through to the log.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _header_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the file's header by Pillow's format readers, without the size check
    that ``Image.open`` adds after them (nothing is decoded); ``None`` when no reader knows the file."""
    Image.init()
    prefix = data[:16]
    for format_id in Image.ID:
        factory, accept = Image.OPEN[format_id]
        try:
            accepted = accept(prefix) if accept else True
            if not accepted or isinstance(accepted, str):
                continue
            with _size_checked_by_wsloc():
                width, height = factory(io.BytesIO(data), "").size
                return int(width), int(height)
        except Exception:  # not this format, or a damaged header: try the next reader
            continue
    return None


def _refuse_over_pillow_ceiling(name: str, max_pixels: int, data: bytes = b"") -> InvalidImageError:
    """Pillow refuses to open images over twice ``Image.MAX_IMAGE_PIXELS`` (179 MP) without saying
    their size; wsloc refuses them too, with the size read from the header, without handing them
    to a decoder that would try."""
    ceiling = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
    size = _header_size(data) if data else None
    if size is not None:
        width, height = size
        stated = f"{name}: image is {width}x{height} = {width * height / 1e6:.1f} MP"
        if max_pixels / 1e6 < ceiling:
            return InvalidImageError(f"{stated}; the limit is {max_pixels / 1e6:.0f} MP")
        return InvalidImageError(f"{stated}, over the {ceiling:.0f} MP that Pillow will open")
    if max_pixels / 1e6 < ceiling:
        return InvalidImageError(f"{name}: image is over {ceiling:.0f} MP; the limit is {max_pixels / 1e6:.0f} MP")
    return InvalidImageError(f"{name}: image is over {ceiling:.0f} MP, the most Pillow will open")


def _frame_count(image: Image.Image) -> int:
    try:
        return int(getattr(image, "n_frames", 1))
    except (OSError, EOFError, ValueError):  # a damaged later frame must not hide a readable first one
        return 1


#: Signatures of the formats Pillow reads in full: a file that starts with one and that Pillow cannot
#: read is not handed to OpenCV (WebP's is RIFF....WEBP; RIFF alone is also WAV and AVI, which
#: OpenCV does not read either).
_PILLOW_OWNS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"RIFF")

_opencv_log_lock = threading.Lock()
_opencv_log_users = 0
_opencv_log_saved: int | None = None


@contextlib.contextmanager
def _opencv_log_silenced():
    """OpenCV's own log lines (``[ WARN:0@...]``, ``[ERROR:0@...]``, with libtiff's complaints routed
    through them) off while wsloc's fallback decode runs: a failed decode is reported once, by wsloc.

    Why not redirect file descriptor 2 around ``cv2.imdecode``: the descriptor belongs to the whole
    process, and ``wsloc batch`` and the app decode on several threads while others print (progress
    bars, error lines, Gradio's log); whatever they wrote in that window would be lost, and a lock
    orders only wsloc's own decodes, not their writes. OpenCV's log level is process-wide too, so it
    is counted: the first decode in flight lowers it, the last one out restores what it was, and no
    thread's decode runs with the level restored under it. What that costs: OpenCV log lines of other
    code in the same process are silenced while a fallback decode runs (rare: only files Pillow
    cannot read get here). Codecs that print with C's stdio instead (libpng) never get a file here
    (``_PILLOW_OWNS``)."""
    global _opencv_log_users, _opencv_log_saved
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:  # an OpenCV build without the logging module: nothing to silence
        yield
        return
    with _opencv_log_lock:
        if _opencv_log_users == 0:
            _opencv_log_saved = logging_api.getLogLevel()
            logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
        _opencv_log_users += 1
    try:
        yield
    finally:
        with _opencv_log_lock:
            _opencv_log_users -= 1
            if _opencv_log_users == 0 and _opencv_log_saved is not None:
                logging_api.setLogLevel(_opencv_log_saved)
                _opencv_log_saved = None


def _decode_bytes(data: bytes, name: str, max_pixels: int) -> DecodedImage:
    if len(data) == 0:
        raise InvalidImageError(f"{name}: file is empty")
    pil_error: Exception | None = None
    try:
        with _size_checked_by_wsloc(), Image.open(io.BytesIO(data)) as image:
            _check_size(image.height, image.width, max_pixels, name)
            frames = _frame_count(image)
            image.load()
            return DecodedImage(_pil_to_rgb(image, name), frames)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:
        raise _refuse_over_pillow_ceiling(name, max_pixels, data) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        pil_error = error
    reason = str(pil_error).splitlines()[0] if pil_error else "unknown format"
    if isinstance(pil_error, UnidentifiedImageError):
        reason = "unknown or unsupported image format"
    elif "truncated" in reason.lower():
        reason = "the file is truncated"
    # OpenCV reads some files Pillow cannot (Radiance HDR, PFM, TIFF variants); it never raises, it
    # returns None. It gets no file that Pillow's verdict settles: a truncated file, or one whose
    # signature is a format Pillow reads in full (PNG, JPEG, GIF, BMP, WebP). Its decoders for those
    # would only fail again, and libpng's fails loudly: it prints "libpng error: ..." to the process's
    # stderr with C's fprintf, above wsloc's own one-line message.
    if reason == "the file is truncated" or data.startswith(_PILLOW_OWNS):
        raise InvalidImageError(f"{name}: not a readable image ({reason})")
    buffer = np.frombuffer(data, dtype=np.uint8)
    with _opencv_log_silenced():
        decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if decoded is None:
        raise InvalidImageError(f"{name}: not a readable image ({reason})")
    _check_size(decoded.shape[0], decoded.shape[1], max_pixels, name)
    if decoded.ndim == 3 and decoded.shape[2] >= 3:
        decoded = cv2.cvtColor(decoded[:, :, :3], cv2.COLOR_BGR2RGB)
    return DecodedImage(_array_to_rgb(decoded, name))


def describe_source(source: Any) -> str:
    """A short human name for an image source, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size}>"
    return f"<{type(source).__name__}>"


def image_files(folder: str | os.PathLike) -> list[str]:
    """A folder's image files, sorted, not recursive, without the reference masks that sit beside
    their photos (``boat_mask.png`` next to ``boat.jpg``, as in ``assets/examples``): those are
    the answers to score against, not photos to analyse."""
    files = [p for p in sorted(Path(folder).iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    stems = {p.stem for p in files}
    return [str(p) for p in files if not (p.stem.endswith("_mask") and p.stem[: -len("_mask")] in stems)]


def load_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image into RGB ``uint8``.

    Args:
        source: a file path, the encoded file's bytes, a ``PIL.Image.Image`` or a numpy
            array (HxW gray, HxWx3 RGB or HxWx4 RGBA; uint8, uint16 or float in [0, 1]).
        max_pixels: refuse images with more pixels than this, from the file's header,
            before decoding them.

    Returns:
        ``HxWx3`` ``uint8`` RGB array with EXIF orientation applied and alpha dropped; the
        first frame of an animated or multi-page file (:func:`read_image` says how many there were).

    Raises:
        InvalidImageError: unreadable, empty, truncated, too small or too large input, or a folder.
    """
    return read_image(source, max_pixels).rgb


def read_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """:func:`load_image`, keeping what the caller should be told about the input (its frame count)."""
    name = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise InvalidImageError(f"{name}: is a folder; expected an image file")
        if not path.is_file():
            raise InvalidImageError(f"{name}: no such file")
        return _decode_bytes(path.read_bytes(), name, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(source), name, max_pixels)
    if isinstance(source, Image.Image):
        _check_size(source.height, source.width, max_pixels, name)
        try:
            with _size_checked_by_wsloc():
                source.load()
        except (OSError, ValueError) as error:
            raise InvalidImageError(f"{name}: not a readable image ({error})") from error
        return DecodedImage(_pil_to_rgb(source, name))  # its current frame: the caller chose it
    if isinstance(source, np.ndarray):
        if source.ndim < 2:
            raise InvalidImageError(f"{name}: expected an HxW or HxWxC array")
        _check_size(source.shape[0], source.shape[1], max_pixels, name)
        return DecodedImage(_array_to_rgb(source, name))
    raise InvalidImageError(
        f"{name}: unsupported input type; expected a path, bytes, PIL image or numpy array"
    )


def _create_temp_beside(path: Path) -> tuple[int, str]:
    """Create ``.<name>.<random>.part`` beside ``path``, with the permissions a plain ``open()``
    would give it (0666 less the umask): ``tempfile.mkstemp`` makes every file 0600, which would
    hide the outputs from a web server or a colleague."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp_name = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(temp_name, flags, 0o666), temp_name
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = _create_temp_beside(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    return path


#: zlib level of the PNGs written (see :func:`write_png_atomic`).
PNG_COMPRESSION = 1


def png_parameters() -> list[int]:
    """OpenCV's PNG settings for the outputs: zlib level 1, each row predicted from the row above
    ("up" filter) and run-length matching. Maps and masks are smooth or constant down the columns,
    so one fixed filter compresses them as well as libpng's per-row choice among all five, which
    is what most of the encoding time went to: a 12 MP heatmap in 194 ms instead of 346, files a
    little smaller, the same pixels (``bench/results/png_encode.json``)."""
    parameters = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10; older ones keep libpng's choice
        parameters += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
                       cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    return parameters


def write_png_atomic(path: Path | str, image: np.ndarray) -> Path:
    """Write an RGB (HxWx3) or gray (HxW) uint8 array as PNG; the file appears whole or not at all."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"write_png_atomic expects uint8, got {array.dtype}")
    bgr = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    # Fast settings, not OpenCV's defaults: writing the outputs is most of the time from 12 MP up.
    ok, encoded = cv2.imencode(".png", bgr, png_parameters())
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    return _atomic_write(Path(path), lambda stream: stream.write(encoded.tobytes()))


def write_palette_png_atomic(path: Path | str, levels: np.ndarray, palette: np.ndarray) -> Path:
    """Write an ``HxW`` ``uint8`` array of palette indices with its ``(256, 3)`` ``uint8`` RGB
    palette as an indexed-colour PNG (colour type 3); the file appears whole or not at all.

    Every viewer and decoder shows the palette's colours, as if the RGB picture were written, for
    a third of the data: a heatmap is one colour map's levels, so this is the same picture, and a
    photo-size heatmap is most of the time spent writing outputs (bench/results/png_encode.json).
    """
    levels = np.ascontiguousarray(levels)
    palette = np.ascontiguousarray(palette)
    if levels.dtype != np.uint8 or levels.ndim != 2 or 0 in levels.shape:
        raise ValueError(f"write_palette_png_atomic expects HxW uint8 levels, got {levels.dtype} {levels.shape}")
    if palette.dtype != np.uint8 or palette.shape != (256, 3):
        raise ValueError(f"write_palette_png_atomic expects a (256, 3) uint8 palette, got {palette.dtype} {palette.shape}")
    height, width = levels.shape
    # Each row predicted from the one above ("up", filter type 2; above the first row is zeros), the
    # differences wrapping modulo 256 as the PNG specification's filter arithmetic does.
    rows = np.empty((height, width + 1), np.uint8)
    rows[:, 0] = 2
    rows[0, 1:] = levels[0]
    np.subtract(levels[1:], levels[:-1], out=rows[1:, 1:])
    compressor = zlib.compressobj(PNG_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    image_data = compressor.compress(rows) + compressor.flush()
    del rows

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8-bit indices, deflate, no interlace
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"PLTE", palette.tobytes()),
             chunk(b"IDAT", image_data), chunk(b"IEND", b"")]
    return _atomic_write(Path(path), lambda stream: stream.writelines(parts))


def write_json_atomic(path: Path | str, payload: Any) -> Path:
    """Write JSON (UTF-8, indented); the file appears whole or not at all."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default)
    return _atomic_write(Path(path), lambda stream: stream.write(text.encode("utf-8") + b"\n"))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
