"""File evidence (EXIF, the embedded thumbnail, JPEG tables) on photos written here with known
metadata; shown as information, never an input of the verdict."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image
from skimage import data

from wsloc_runtime.file_evidence import IJG_LUMINANCE, ijg_table, read_file_evidence, table_origin

MAKE, MODEL, SOFTWARE, DATE_TIME, EXIF_IFD = 0x010F, 0x0110, 0x0131, 0x0132, 0x8769
DATE_TIME_ORIGINAL = 0x9003


def tiff_exif(ifd0: dict[int, str], exif: dict[int, str], thumbnail: bytes | None) -> bytes:
    """``Exif\\0\\0`` + a little-endian TIFF: IFD0 (ASCII tags and a pointer to the Exif IFD), the Exif
    IFD, and IFD1 pointing at a JPEG thumbnail, as cameras write them."""

    def ifd(entries: list[tuple[int, int, int, bytes | int]], start: int, next_ifd: int) -> tuple[bytes, int]:
        """Entries (tag, type, count, value); returns the IFD and its data area, and the end offset."""
        table_size = 2 + 12 * len(entries) + 4
        data_area, table = b"", struct.pack("<H", len(entries))
        for tag, kind, count, value in sorted(entries):
            if isinstance(value, bytes) and len(value) > 4:
                table += struct.pack("<HHII", tag, kind, count, start + table_size + len(data_area))
                data_area += value + (b"\0" if len(value) % 2 else b"")
            elif isinstance(value, bytes):
                table += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
            else:
                table += struct.pack("<HHII", tag, kind, count, value)
        return table + struct.pack("<I", next_ifd) + data_area, start + table_size + len(data_area)

    def ascii_entries(tags: dict[int, str]):
        return [(tag, 2, len(text) + 1, text.encode() + b"\0") for tag, text in tags.items()]

    # Lay out with placeholder offsets, then again with the real ones.
    offsets = {"exif": 0, "ifd1": 0, "thumb": 0}
    for _ in range(2):
        first, end0 = ifd(ascii_entries(ifd0) + [(EXIF_IFD, 4, 1, offsets["exif"])], 8,
                          offsets["ifd1"] if thumbnail else 0)
        offsets["exif"] = end0
        second, end1 = ifd(ascii_entries(exif), end0, 0)
        offsets["ifd1"] = end1
        body = b"II*\0" + struct.pack("<I", 8) + first + second
        if thumbnail:
            third, end2 = ifd([(0x0201, 4, 1, offsets["thumb"]), (0x0202, 4, 1, len(thumbnail))], end1, 0)
            offsets["thumb"] = end2
            body += third + thumbnail
    return b"Exif\0\0" + body


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.fromarray(data.astronaut()[:, :, :3]).resize((384, 256))


def camera_file(photo: Image.Image, thumbnail_of: Image.Image, **options) -> bytes:
    thumbnail = jpeg_bytes(thumbnail_of.resize((160, 120)) if thumbnail_of.size != (160, 120) else thumbnail_of,
                           quality=80)
    exif = tiff_exif({MAKE: "Canon", MODEL: "Canon EOS 5D Mark IV", SOFTWARE: "Adobe Photoshop 25.0 (Windows)",
                      DATE_TIME: "2024:03:04 12:00:00"}, {DATE_TIME_ORIGINAL: "2024:01:02 10:00:00"}, thumbnail)
    return jpeg_bytes(photo, exif=exif, **options)


def letterboxed(photo: Image.Image) -> Image.Image:
    """A 160x120 camera thumbnail of a 3:2 photo: the photo at 160x107 between black bars."""
    canvas = Image.new("RGB", (160, 120))
    canvas.paste(photo.resize((160, 107)), (0, 6))
    return canvas


def test_exif_camera_software_and_dates_are_read(photo):
    evidence = read_file_evidence(camera_file(photo, letterboxed(photo), quality=90))
    assert evidence["format"] == "JPEG" and evidence["used_in_verdict"] is False
    assert evidence["exif"] == {"camera_make": "Canon", "camera_model": "Canon EOS 5D Mark IV",
                                "software": "Adobe Photoshop 25.0 (Windows)",
                                "date_time_original": "2024:01:02 10:00:00", "date_time": "2024:03:04 12:00:00"}
    notes = " ".join(evidence["notes"])
    assert "Camera (EXIF): Canon Canon EOS 5D Mark IV." in notes and "Adobe Photoshop 25.0" in notes
    assert "taken 2024:01:02 10:00:00" in notes and "never reads these" in notes
    json.dumps(evidence)  # JSON-ready


def test_thumbnail_that_shows_the_photo_matches_and_one_of_another_picture_does_not(photo):
    same = read_file_evidence(camera_file(photo, letterboxed(photo), quality=90))["thumbnail"]
    assert same["present"] and same["size"] == [160, 120] and same["matches_photo"] is True
    # The photo edited after the thumbnail was made: a bright patch pasted over a third of it.
    edited = photo.copy()
    edited.paste((255, 255, 255), (100, 40, 300, 220))
    other = read_file_evidence(camera_file(edited, letterboxed(photo), quality=90))
    assert other["thumbnail"]["matches_photo"] is False and other["thumbnail"]["difference"] > same["difference"]
    assert any("does NOT match the photo" in note for note in other["notes"])


@pytest.mark.parametrize("quality", [50, 75, 90, 95])
def test_standard_tables_give_their_quality(photo, quality):
    jpeg = read_file_evidence(jpeg_bytes(photo, quality=quality))["jpeg"]
    assert jpeg["standard_tables"] is True and jpeg["quality_estimate"] == quality
    assert jpeg["tables_origin"].startswith(f"standard IJG tables, quality {quality}")


def test_non_standard_tables_are_said_to_be_a_cameras_or_an_editors(photo):
    # A flat table, like some cameras and editors write: not IJG's at any quality.
    tables = {0: [3] * 64, 1: [4] * 64}
    evidence = read_file_evidence(jpeg_bytes(photo, qtables=tables))
    assert evidence["jpeg"]["standard_tables"] is False
    assert evidence["jpeg"]["tables_origin"].startswith("non-standard tables (a camera's or an editor's own)")
    assert table_origin({0: list(ijg_table(IJG_LUMINANCE, 83))})["quality_estimate"] == 83


def test_files_without_metadata_or_unreadable_say_so_without_raising(photo):
    png = io.BytesIO()
    photo.save(png, "PNG")
    evidence = read_file_evidence(png.getvalue())
    assert evidence["format"] == "PNG" and evidence["jpeg"] is None and evidence["exif"] == {}
    assert "No camera make or model" in evidence["notes"][0] and not evidence["thumbnail"]["present"]
    broken = read_file_evidence(b"not an image")
    assert broken["format"] is None and "could not be read" in broken["notes"][0]


def test_file_evidence_reaches_the_json_and_never_the_verdict(tmp_path, contract_models, photo):
    from wsloc_runtime.cli import main

    path = tmp_path / "camera.jpg"
    path.write_bytes(camera_file(photo, letterboxed(photo), quality=90))
    stripped = tmp_path / "stripped.jpg"
    stripped.write_bytes(jpeg_bytes(photo, quality=90))  # the same pixels, encoded alike, without EXIF
    out = tmp_path / "out"
    assert main(["-q", "localize", str(path), str(stripped), "--out", str(out), "--models", str(contract_models)]) == 0
    with_exif = json.loads((out / "camera.json").read_text())
    without = json.loads((out / "stripped.json").read_text())
    assert with_exif["file_evidence"]["exif"]["camera_model"] == "Canon EOS 5D Mark IV"
    assert with_exif["file_evidence"]["jpeg"]["quality_estimate"] == 90
    assert without["file_evidence"]["exif"] == {}
    assert with_exif["probability"] == without["probability"]  # the metadata changes nothing
    assert with_exif["verdict"] == without["verdict"]
