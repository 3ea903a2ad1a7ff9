"""File evidence: what a photo's file says about where it comes from, beside the maps.

EXIF (camera make and model, the software that last wrote the file, dates), the embedded EXIF
thumbnail and whether it still matches the photo, and for JPEG files the quality estimate and
the likely origin of the quantization tables, read with Pillow's EXIF and JPEG table readers.

It is **information only, never an input of the verdict**: the JPEG settings are exactly the
shortcut a detector trained on CASIA learns (the classes were saved differently), and metadata
is easy to strip or forge. Pure function of the file's bytes: :func:`read_file_evidence`.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from PIL import ExifTags, Image, JpegImagePlugin

#: IJG (libjpeg) standard tables at quality 50, natural (row-major) order: ITU-T T.81 Annex K.
IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)
IJG_CHROMINANCE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32)], np.int64)
#: EXIF tags read (IFD0 and the Exif sub-IFD).
MAKE, MODEL, SOFTWARE, DATE_TIME = 0x010F, 0x0110, 0x0131, 0x0132
DATE_TIME_ORIGINAL, DATE_TIME_DIGITIZED = 0x9003, 0x9004
THUMBNAIL_OFFSET, THUMBNAIL_LENGTH = 0x0201, 0x0202
#: Mean absolute difference (0-255, grayscale, at the thumbnail's size) below which the thumbnail
#: is said to match the photo. Re-encoding and resampling alone stay far below it (about 2-5).
THUMBNAIL_MATCH_MAX_DIFFERENCE = 12.0
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
NOT_IN_VERDICT = ("Information only: the verdict never reads these (they say how the file was saved, "
                  "not whether its content was edited, and they are easy to strip or forge).")


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """libjpeg's ``jpeg_set_quality`` scaling of a base table (baseline: entries clamped to 1-255)."""
    quality = min(max(int(quality), 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


def table_origin(tables: dict[int, Any]) -> dict:
    """Which tables these are: IJG's standard ones scaled to a quality (libjpeg and the many tools
    built on it), or others (a camera's or an editor's own), with the closest IJG quality."""
    luma = np.asarray(list(tables.get(0, [])), np.int64)
    chroma = np.asarray(list(tables.get(1, [])), np.int64) if 1 in tables else None
    if luma.size != 64:
        return {"standard": None, "quality_estimate": None, "origin": "no usable quantization table"}
    errors = []
    for quality in range(1, 101):
        error = np.abs(ijg_table(IJG_LUMINANCE, quality) - luma).mean()
        if chroma is not None and chroma.size == 64:
            error += np.abs(ijg_table(IJG_CHROMINANCE, quality) - chroma).mean()
        errors.append((error, quality))
    error, quality = min(errors)
    if error == 0:
        return {"standard": True, "quality_estimate": quality,
                "origin": f"standard IJG tables, quality {quality} (libjpeg and the many libraries, "
                          "editors and web services built on it)"}
    return {"standard": False, "quality_estimate": quality,
            "origin": f"non-standard tables (a camera's or an editor's own), closest to IJG quality ~{quality}"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text or None


def _thumbnail(raw_exif: bytes | None, exif: Image.Exif) -> bytes | None:
    """The EXIF thumbnail's JPEG bytes (IFD1's JPEGInterchangeFormat), when the file has one."""
    if not raw_exif:
        return None
    try:
        ifd1 = exif.get_ifd(ExifTags.IFD.IFD1)
    except Exception:
        return None
    offset, length = ifd1.get(THUMBNAIL_OFFSET), ifd1.get(THUMBNAIL_LENGTH)
    if not offset or not length:
        return None
    tiff = raw_exif[6:] if raw_exif.startswith(b"Exif\x00\x00") else raw_exif
    data = tiff[int(offset): int(offset) + int(length)]
    return data if len(data) == int(length) else None


def compare_thumbnail(photo: Image.Image, thumbnail: Image.Image) -> dict:
    """Whether a downscaled copy of the photo looks like its thumbnail: mean absolute gray-level
    difference at the thumbnail's size, after cropping away the bars a camera pads it with."""
    thumb = np.asarray(thumbnail.convert("L"), np.float64)
    photo_aspect = photo.width / photo.height
    height, width = thumb.shape
    # Cameras letterbox a 3:2 photo into a 160x120 thumbnail: keep the band of the photo's aspect.
    if width / height < photo_aspect:
        band = max(1, round(width / photo_aspect))
        top = (height - band) // 2
        thumb = thumb[top: top + band]
    elif width / height > photo_aspect:
        band = max(1, round(height * photo_aspect))
        left = (width - band) // 2
        thumb = thumb[:, left: left + band]
    small = np.asarray(photo.convert("L").resize((thumb.shape[1], thumb.shape[0]), Image.Resampling.BOX),
                       np.float64)
    difference = float(np.abs(small - thumb).mean())
    return {"difference": round(difference, 2), "matches_photo": difference <= THUMBNAIL_MATCH_MAX_DIFFERENCE}


def read_file_evidence(data: bytes) -> dict:
    """The file evidence of one photo file (see the module's docstring). Never raises: a file Pillow
    cannot read gives ``{"format": None, ...}`` with a note.

    Returns a JSON-ready dict: ``format``, ``exif`` (``camera_make``, ``camera_model``, ``software``,
    ``date_time_original``, ``date_time_digitized``, ``date_time``: those present), ``thumbnail``
    (``present``, ``size``, ``matches_photo``, ``difference``), ``jpeg`` (``quality_estimate``,
    ``standard_tables``, ``tables_origin``, ``subsampling``, ``progressive``; ``None`` for other
    formats), ``notes`` (the same in sentences) and ``used_in_verdict`` (always False).
    """
    evidence: dict[str, Any] = {"format": None, "exif": {}, "thumbnail": {"present": False}, "jpeg": None,
                                "notes": [], "used_in_verdict": False}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            photo = Image.open(io.BytesIO(data))
            evidence["format"] = photo.format
            _read_exif(photo, evidence)
            if photo.format == "JPEG":
                origin = table_origin(getattr(photo, "quantization", {}) or {})
                sampling = JpegImagePlugin.get_sampling(photo) if photo.mode != "L" else -1
                evidence["jpeg"] = {"quality_estimate": origin["quality_estimate"],
                                    "standard_tables": origin["standard"], "tables_origin": origin["origin"],
                                    "subsampling": SUBSAMPLING.get(sampling, "gray" if sampling == -1 else "other"),
                                    "progressive": bool(photo.info.get("progressive"))}
            _read_thumbnail(photo, evidence)
    except Exception as error:  # file evidence must never stop an analysis
        evidence["notes"].append(f"The file's metadata could not be read ({type(error).__name__}).")
    evidence["notes"] = _sentences(evidence) + evidence["notes"]
    return evidence


def _read_exif(photo: Image.Image, evidence: dict) -> None:
    exif = photo.getexif()
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        sub = {}
    found = {"camera_make": _text(exif.get(MAKE)), "camera_model": _text(exif.get(MODEL)),
             "software": _text(exif.get(SOFTWARE)), "date_time_original": _text(sub.get(DATE_TIME_ORIGINAL)),
             "date_time_digitized": _text(sub.get(DATE_TIME_DIGITIZED)), "date_time": _text(exif.get(DATE_TIME))}
    evidence["exif"] = {key: value for key, value in found.items() if value}


def _read_thumbnail(photo: Image.Image, evidence: dict) -> None:
    data = _thumbnail(photo.info.get("exif"), photo.getexif())
    if data is None:
        return
    try:
        thumbnail = Image.open(io.BytesIO(data))
        thumbnail.load()
    except Exception:
        evidence["thumbnail"] = {"present": True, "size": None, "matches_photo": None, "difference": None}
        return
    photo.load()
    evidence["thumbnail"] = {"present": True, "size": [thumbnail.width, thumbnail.height],
                             **compare_thumbnail(photo, thumbnail)}


def _sentences(evidence: dict) -> list[str]:
    """The evidence in sentences, for the page and the report."""
    exif, lines = evidence["exif"], []
    if evidence["format"] is None:
        return lines
    camera = " ".join(part for part in (exif.get("camera_make"), exif.get("camera_model")) if part)
    lines.append(f"Camera (EXIF): {camera}." if camera else
                 "No camera make or model in the file (many sites, messengers and editors remove them).")
    if exif.get("software"):
        lines.append(f"Software (EXIF): {exif['software']}: the program that last wrote the file, by its own account.")
    dates = [(label, exif.get(key)) for key, label in (("date_time_original", "taken"),
                                                        ("date_time_digitized", "digitized"),
                                                        ("date_time", "file last changed"))]
    dates = [f"{label} {value}" for label, value in dates if value]
    if dates:
        lines.append("Dates (EXIF, the camera's clock, no time zone): " + "; ".join(dates) + ".")
    thumbnail = evidence["thumbnail"]
    if thumbnail.get("present"):
        if thumbnail.get("matches_photo") is None:
            lines.append("The file has an embedded thumbnail that could not be read.")
        elif thumbnail["matches_photo"]:
            lines.append("The embedded thumbnail matches the photo.")
        else:
            lines.append("The embedded thumbnail does NOT match the photo (difference "
                         f"{thumbnail['difference']:.0f} of 255): the picture may have been changed after the "
                         "thumbnail was made; some editors keep the old thumbnail.")
    else:
        lines.append("No embedded thumbnail.")
    jpeg = evidence["jpeg"]
    if jpeg:
        lines.append(f"JPEG: {jpeg['tables_origin']}; chroma subsampling {jpeg['subsampling']}"
                     f"{', progressive' if jpeg['progressive'] else ''}.")
    lines.append(NOT_IN_VERDICT)
    return lines


def file_evidence_of(source: Any) -> dict | None:
    """:func:`read_file_evidence` of a path or encoded bytes; ``None`` for decoded images (an array or
    a PIL image has no file to read) and for files that cannot be read."""
    import os
    from pathlib import Path

    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_file_evidence(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        try:
            return read_file_evidence(Path(source).read_bytes())
        except OSError:
            return None
    return None
