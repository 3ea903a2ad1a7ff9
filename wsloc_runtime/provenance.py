"""Provenance: what the file says about where it comes from, as claims by whoever saved it.

Two sources, both **information beside the verdict, never an input of it**:

* **Content Credentials (C2PA)**, read and validated by the Content Authenticity Initiative's own
  library (``c2pa-python``): the active manifest, its claim generator, the signer and time stamp,
  the validation in plain words (signature valid or not; signer checked against a trust list or
  not; whether the signed hash still matches the file), the actions with their digital source
  types, and the ingredients. The reader never goes to the network: remote manifests and OCSP
  are switched off in its settings (:data:`READER_SETTINGS`), and a file whose credentials only
  point at a remote manifest is reported as such, its address shown as text, never fetched.
* **The file's own declarations** (unsigned: anyone can write them): the IPTC digital source type
  in XMP, XMP CreatorTool and edit history, EXIF Software, created and modified dates; and the
  full metadata (EXIF, GPS, IPTC, XMP, ICC) for the JSON's ``provenance.metadata`` and the
  collapsible panels of the app and the report. EXIF, GPS, IPTC and ICC are read with Pillow
  (``Image.getexif``/``get_ifd``, ``IptcImagePlugin.getiptcinfo``, ``info["icc_profile"]``); the
  XMP packet is parsed with ``defusedxml``, which refuses any DOCTYPE, so no entity is expanded
  ("billion laughs") and no external entity is read. Keys are exiv2's ("Exif.Image.Software",
  "Iptc.Application2.Caption", "Xmp.xmpMM.History[1]/stEvt:action"), as when wsloc read them with
  pyexiv2, which it no longer uses: pyexiv2 is GPLv3, wsloc is MIT and is embedded in other
  people's pipelines, and Pillow (MIT-CMU) and defusedxml (PSF) are permissive and maintained.

Only the metadata segments are handed to the readers (for JPEG, the bytes before the first
scan; for PNG, every chunk but the image data), and C2PA is read only when the file holds a
JUMBF box, so a photo without credentials costs a segment walk and a few small parses.
Strings are kept as text (:func:`safe_text.clean_text`); every place that shows them escapes them.
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

from .safe_text import clean_text

#: The IPTC NewsCodes "digital source type" vocabulary (https://cv.iptc.org/newscodes/digitalsourcetype/),
#: every term, current and retired, with C2PA's own two terms: term -> (plain words, generative AI?).
#: "generative AI" is said only for the two terms that name trained (generative) models.
DIGITAL_SOURCE_TYPES: dict[str, tuple[str, bool]] = {
    "digitalCapture": ("captured by a camera or scanner from real life", False),
    "computationalCapture": ("captured from real life with computational processing (such as a phone's "
                             "multi-frame or HDR capture)", False),
    "negativeFilm": ("digitised from a film negative", False),
    "positiveFilm": ("digitised from a film positive (slide)", False),
    "print": ("digitised from a print", False),
    "minorHumanEdits": ("captured, with minor edits by a person", False),
    "humanEdits": ("edited by a person", False),
    "compositeCapture": ("a composite of several captures", False),
    "algorithmicallyEnhanced": ("captured, then enhanced by an algorithm", False),
    "dataDrivenMedia": ("made by software from data (not a capture)", False),
    "digitalArt": ("made by a person with digital tools (digital art)", False),
    "virtualRecording": ("a recording of a virtual (computer-generated) scene", False),
    "compositeSynthetic": ("a composite that includes synthetic elements", False),
    "trainedAlgorithmicMedia": ("created with generative AI (a trained model)", True),
    "compositeWithTrainedAlgorithmicMedia": ("edited with generative AI: a composite that includes elements "
                                             "made by a trained model", True),
    "algorithmicMedia": ("made by an algorithm without training data (not generative AI)", False),
    "screenCapture": ("a screen capture", False),
    "composite": ("a composite of several elements", False),
    # Retired IPTC terms that files still carry.
    "softwareImage": ("made by software (retired IPTC term)", False),
    "digitalCreation": ("created digitally (retired IPTC term)", False),
    # C2PA's own namespace (http://c2pa.org/digitalsourcetype/).
    "trainedAlgorithmicData": ("data made by a trained model", True),
    "empty": ("no content (an empty canvas)", False),
}
IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
C2PA_SOURCE_PREFIX = "http://c2pa.org/digitalsourcetype/"
#: The XMP packet size above which XMP is not parsed (parsing tens of megabytes takes seconds;
#: real packets, Photoshop history included, stay well under a megabyte).
MAX_XMP_BYTES = 4 * 1024 * 1024
#: The c2pa reader's settings: never fetch (no remote manifests, no OCSP). Trust anchors are
#: added per call when a trust list is given.
READER_SETTINGS: dict = {"version": 1, "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False,
                                                  "verify_trust": True}}
#: Validation codes that mean the signed content no longer matches the file.
HASH_FAILURES = ("assertion.dataHash.mismatch", "assertion.boxesHash.mismatch", "assertion.bmffHash.mismatch",
                 "assertion.collectionHash.mismatch", "assertion.hashedURI.mismatch", "assertion.dataHash.malformed")
HASH_SUCCESSES = ("assertion.dataHash.match", "assertion.boxesHash.match", "assertion.bmffHash.match",
                  "assertion.collectionHash.match")
UNTRUSTED = "signingCredential.untrusted"
#: Signature findings in words (others are shown by their C2PA code).
SIGNATURE_FAILURES = {
    "signingCredential.expired": "the signing certificate has expired and no time stamp shows it was used while valid",
    "signingCredential.revoked": "the signing certificate was revoked",
    "signingCredential.invalid": "the signing certificate is not fit for signing",
    "claimSignature.mismatch": "the signature does not match the claim",
    "claimSignature.missing": "the claim has no signature",
    "claimSignature.outsideValidity": "signed outside the certificate's validity",
}
AI_ACTION_VERBS = {"c2pa.created": "created", "c2pa.opened": "edited", "c2pa.placed": "edited"}
NOT_IN_VERDICT = ("Information only: the verdict never reads provenance (credentials and metadata are claims "
                  "by whoever saved the file; most platforms strip them, so their absence means nothing).")


# --------------------------------------------------------------------------- the file's layout


def metadata_layout(data: bytes) -> dict:
    """Where a file's metadata is, without decoding it: ``format`` ("JPEG", "PNG" or None for
    others), ``header`` (the bytes to give a metadata reader: a JPEG's segments up to its first
    scan, a PNG's chunks but the image data; the whole file for other formats), ``jumbf``
    (whether a C2PA/JUMBF box may be there) and ``xmp_bytes`` (the size of the XMP, 0 when none).
    Never raises: a file it cannot walk gives the whole file and a full-text search."""
    try:
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg_layout(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_layout(data)
    except (struct.error, IndexError, ValueError):
        pass
    start, end = data.find(b"<x:xmpmeta"), data.rfind(b"</x:xmpmeta>")
    return {"format": None, "header": data, "jumbf": b"jumb" in data,
            "xmp_bytes": end - start if 0 <= start < end else 0}


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """A JPEG's marker segments before its first scan, as ``(marker, body)``, and where they end."""
    position, segments = 2, []
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            position += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan: the metadata is all before it
            break
        length = struct.unpack(">H", data[position + 2: position + 4])[0]
        segments.append((marker, data[position + 4: position + 2 + length]))
        position += 2 + length
    return segments, position


def _jpeg_layout(data: bytes) -> dict:
    segments, position = _jpeg_segments(data)
    jumbf, xmp = False, 0
    for marker, body in segments:
        if marker == 0xEB and b"jumb" in body[:64]:  # APP11: JUMBF (C2PA)
            jumbf = True
        elif marker == 0xE1 and (body.startswith(b"http://ns.adobe.com/xap/1.0/")
                                 or body.startswith(b"http://ns.adobe.com/xmp/extension/")):
            xmp += len(body)
    return {"format": "JPEG", "header": data[:position] + b"\xff\xd9", "jumbf": jumbf, "xmp_bytes": xmp}


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """A PNG's chunks up to IEND, as ``(kind, body, the whole chunk)``."""
    position, chunks = 8, []
    while position + 12 <= len(data):
        length = struct.unpack(">I", data[position: position + 4])[0]
        kind = data[position + 4: position + 8]
        end = position + 12 + length
        chunks.append((kind, data[position + 8: position + 8 + length], data[position:end]))
        position = end
        if kind == b"IEND":
            break
    return chunks


def _png_layout(data: bytes) -> dict:
    kept, jumbf, xmp = [data[:8]], False, 0
    for kind, body, chunk in _png_chunks(data):
        if kind == b"caBX":
            jumbf = True
        elif kind == b"iTXt" and body[:17] == b"XML:com.adobe.xmp":
            xmp += len(body)
        if kind != b"IDAT":
            kept.append(chunk)
    return {"format": "PNG", "header": b"".join(kept), "jumbf": jumbf, "xmp_bytes": xmp}


# --------------------------------------------------------------------------- the file's metadata

#: XMP namespace URI -> the prefix exiv2 gives the schema in its keys ("Xmp.<prefix>.<Name>").
XMP_SCHEMA_PREFIXES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/bj/": "xmpBJ",
    "http://ns.adobe.com/xap/1.0/t/pg/": "xmpTPg",
    "http://ns.adobe.com/xmp/1.0/DynamicMedia/": "xmpDM",
    "http://ns.adobe.com/xmp/note/": "xmpNote",
    "http://ns.adobe.com/xap/1.0/g/": "xmpG",
    "http://ns.adobe.com/xap/1.0/g/img/": "xmpGImg",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/camera-raw-settings/1.0/": "crs",
    "http://ns.adobe.com/lightroom/1.0/": "lr",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "iptc",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "iptcExt",
    "http://ns.useplus.org/ldf/xmp/1.0/": "plus",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://ns.adobe.com/xap/1.0/sType/Version#": "stVer",
    "http://ns.adobe.com/xap/1.0/sType/Job#": "stJob",
    "http://ns.adobe.com/xap/1.0/sType/Dimensions#": "stDim",
    "http://ns.adobe.com/xap/1.0/sType/ManifestItem#": "stMfs",
    "http://ns.adobe.com/xap/1.0/sType/Font#": "stFnt",
    "http://ns.microsoft.com/photo/1.0/": "MicrosoftPhoto",
    "http://ns.google.com/photos/1.0/camera/": "GCamera",
}
#: Where the XMP Toolkit's own prefix (used by exiv2 inside a structure's path,
#: "Xmp.iptc.CreatorContactInfo/Iptc4xmpCore:CiAdrCity") differs from exiv2's schema prefix
#: (Iptc4xmpExt is not the Toolkit's own: exiv2 registers it as "iptcExt", and paths say
#: "Xmp.iptcExt.LocationCreated[1]/iptcExt:City").
XMP_FIELD_PREFIXES = {"http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore"}
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: rdf: attributes that are syntax, not properties.
_RDF_SYNTAX = {_RDF + name for name in ("about", "ID", "nodeID", "parseType", "resource", "datatype")} | {_XML_LANG}
#: EXIF tag names where exiv2's differ from Pillow's ExifTags.TAGS (others are the same).
EXIF_NAMES = {0xA002: "PixelXDimension", 0xA003: "PixelYDimension", 0xA000: "FlashpixVersion",
              0x9214: "SubjectArea", 0x83BB: "IPTCNAA", 0x8773: "InterColorProfile"}
#: The interoperability IFD's tag names (exiv2's "Exif.Iop.*").
EXIF_IOP_NAMES = {0x0001: "InteroperabilityIndex", 0x0002: "InteroperabilityVersion",
                  0x1000: "RelatedImageFileFormat", 0x1001: "RelatedImageWidth", 0x1002: "RelatedImageLength"}
#: Pointers to other IFDs and the maker's private blob: never shown as fields.
EXIF_SKIPPED = {0x8769, 0x8825, 0xA005, 0x927C, 0x014A}
#: Windows' XP* tags: UTF-16LE text stored as bytes.
EXIF_UTF16 = {0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F}
#: IPTC IIM dataset names as exiv2 gives them: (record, dataset) -> name.
IPTC_RECORDS = {1: "Envelope", 2: "Application2"}
IPTC_NAMES = {
    (1, 0): "ModelVersion", (1, 5): "Destination", (1, 20): "FileFormat", (1, 22): "FileVersion",
    (1, 30): "ServiceId", (1, 40): "EnvelopeNumber", (1, 50): "ProductId", (1, 60): "EnvelopePriority",
    (1, 70): "DateSent", (1, 80): "TimeSent", (1, 90): "CharacterSet", (1, 100): "UNO", (1, 120): "ARMId",
    (1, 122): "ARMVersion",
    (2, 0): "RecordVersion", (2, 3): "ObjectType", (2, 4): "ObjectAttribute", (2, 5): "ObjectName",
    (2, 7): "EditStatus", (2, 8): "EditorialUpdate", (2, 10): "Urgency", (2, 12): "Subject", (2, 15): "Category",
    (2, 20): "SuppCategory", (2, 22): "FixtureId", (2, 25): "Keywords", (2, 26): "LocationCode",
    (2, 27): "LocationName", (2, 30): "ReleaseDate", (2, 35): "ReleaseTime", (2, 37): "ExpirationDate",
    (2, 38): "ExpirationTime", (2, 40): "SpecialInstructions", (2, 42): "ActionAdvised",
    (2, 45): "ReferenceService", (2, 47): "ReferenceDate", (2, 50): "ReferenceNumber", (2, 55): "DateCreated",
    (2, 60): "TimeCreated", (2, 62): "DigitizationDate", (2, 63): "DigitizationTime", (2, 65): "Program",
    (2, 70): "ProgramVersion", (2, 75): "ObjectCycle", (2, 80): "Byline", (2, 85): "BylineTitle", (2, 90): "City",
    (2, 92): "SubLocation", (2, 95): "ProvinceState", (2, 100): "CountryCode", (2, 101): "CountryName",
    (2, 103): "TransmissionReference", (2, 105): "Headline", (2, 110): "Credit", (2, 115): "Source",
    (2, 116): "Copyright", (2, 118): "Contact", (2, 120): "Caption", (2, 122): "Writer",
    (2, 125): "RasterizedCaption", (2, 130): "ImageType", (2, 131): "ImageOrientation", (2, 135): "Language",
    (2, 150): "AudioType", (2, 151): "AudioRate", (2, 152): "AudioResolution", (2, 153): "AudioDuration",
    (2, 154): "AudioOutcue", (2, 200): "PreviewFormat", (2, 201): "PreviewVersion", (2, 202): "Preview",
}
_IPTC_DATES = {"DateSent", "ReleaseDate", "ExpirationDate", "ReferenceDate", "DateCreated", "DigitizationDate"}
_IPTC_TIMES = {"TimeSent", "ReleaseTime", "ExpirationTime", "TimeCreated", "DigitizationTime"}
_IPTC_NUMBERS = {"ModelVersion", "FileFormat", "FileVersion", "RecordVersion", "PreviewFormat", "PreviewVersion",
                 "ARMId", "ARMVersion"}


def read_metadata(header: bytes, read_xmp: bool = True) -> dict:
    """EXIF, GPS, IPTC, XMP and ICC of a file's metadata bytes: EXIF, IPTC and ICC read with Pillow,
    the XMP packet parsed with defusedxml (no DTD, so no entity expansion and no external entity).

    Returns ``{"exif": {key: text}, "gps": {...}, "iptc": {...}, "xmp": {...}, "icc": {...}}``,
    each a flat dict of exiv2-style key ("Exif.Image.Software", "Exif.Photo.DateTimeOriginal",
    "Exif.GPSInfo.GPSLatitude", "Iptc.Application2.Caption", "Xmp.xmp.CreatorTool",
    "Xmp.xmpMM.History[1]/stEvt:action") -> cleaned text (lists joined by "; "), and ``error``
    (None, or what could not be read: each part is read on its own, so one bad part keeps the
    others). ``read_xmp=False`` skips XMP (a packet over :data:`MAX_XMP_BYTES`). Never raises."""
    metadata: dict[str, Any] = {"exif": {}, "gps": {}, "iptc": {}, "xmp": {}, "icc": {}, "error": None}
    problems: list[str] = []

    def failed(part: str, error: Exception) -> None:  # a metadata reader must never stop an analysis
        problems.append(f"{part}: {type(error).__name__}: {clean_text(error, 200)}")

    image = None
    try:
        image = _open_header(header)
    except Exception as error:
        if type(error).__name__ == "UnidentifiedImageError":  # its message names a memory address
            problems.append("EXIF, IPTC and ICC: not a file format Pillow reads")
        else:
            failed("EXIF, IPTC and ICC", error)
    if image is not None:
        with image, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's warnings about odd EXIF: the error line says what failed
            info = image.info
            try:
                exif = _read_exif(image)
                metadata["gps"] = {k: v for k, v in exif.items() if k.startswith("Exif.GPSInfo.")}
                metadata["exif"] = {k: v for k, v in exif.items() if not k.startswith("Exif.GPSInfo.")}
            except Exception as error:
                failed("EXIF", error)
            try:
                metadata["iptc"] = _read_iptc(image)
            except Exception as error:
                failed("IPTC", error)
            icc = info.get("icc_profile")
            if icc:
                metadata["icc"] = describe_icc(icc)
    if read_xmp:
        try:
            packet = xmp_packet_of(header)
            if packet is not None:
                if len(packet) > MAX_XMP_BYTES:
                    raise ValueError(f"the XMP packet is {len(packet) / 1e6:.0f} MB, over the "
                                     f"{MAX_XMP_BYTES // (1024 * 1024)} MB wsloc reads")
                metadata["xmp"] = _flat(parse_xmp(packet))
        except Exception as error:
            failed("XMP", error)
    if problems:
        metadata["error"] = "; ".join(problems)
    return metadata


def _open_header(header: bytes):
    """A Pillow image of the metadata bytes, opened without decoding pixels. JPEG and PNG are opened
    with their plugins directly (the header has no image data, and no pixel-count limit applies to
    reading metadata); other formats with ``Image.open``. Pillow reads a JPEG's segments up to its
    start of scan, so the segments are given one, empty; a PNG's XMP chunk is left out (it is
    parsed on its own, and may be megabytes)."""
    from PIL import Image, JpegImagePlugin, PngImagePlugin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if header[:3] == b"\xff\xd8\xff":
            end = _jpeg_segments(header)[1]
            return JpegImagePlugin.JpegImageFile(io.BytesIO(header[:end] + b"\xff\xda\x00\x02\xff\xd9"))
        if header[:8] == b"\x89PNG\r\n\x1a\n":  # the XMP chunk is read on its own (xmp_packet_of)
            chunks = [chunk for kind, body, chunk in _png_chunks(header)
                      if not (kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\x00"))]
            return PngImagePlugin.PngImageFile(io.BytesIO(header[:8] + b"".join(chunks)))
        return Image.open(io.BytesIO(header))


def _read_exif(image) -> dict[str, str]:
    """IFD0 as "Exif.Image.*", the Exif IFD as "Exif.Photo.*", GPS as "Exif.GPSInfo.*" and the
    interoperability IFD as "Exif.Iop.*" (exiv2's names); the thumbnail's IFD1 and MakerNote are
    left out."""
    from PIL import ExifTags, Image

    raw = image.info.get("exif")
    if raw is None and "Raw profile type exif" in image.info:  # ImageMagick's PNG text chunk
        raw = bytes.fromhex("".join(str(image.info["Raw profile type exif"]).split("\n")[3:]))
    if raw is not None:
        exif = Image.Exif()
        exif.load(raw)
    elif image.format == "PNG":  # PngImageFile.getexif would load the (absent) image data
        return {}
    else:
        exif = image.getexif()
    found: dict[str, str] = {}
    groups = [("Image", dict(exif), ExifTags.TAGS)]
    for ifd, group in ((ExifTags.IFD.Exif, "Photo"), (ExifTags.IFD.GPSInfo, "GPSInfo"),
                       (ExifTags.IFD.Interop, "Iop")):
        try:
            groups.append((group, exif.get_ifd(ifd), ExifTags.GPSTAGS if group == "GPSInfo" else ExifTags.TAGS))
        except Exception:  # a broken pointer loses that IFD only
            continue
    for group, values, names in groups:
        for tag, value in values.items():
            if not isinstance(tag, int) or tag in EXIF_SKIPPED or isinstance(value, dict):
                continue
            own = EXIF_IOP_NAMES if group == "Iop" else {} if group == "GPSInfo" else EXIF_NAMES
            name = own.get(tag) or names.get(tag) or f"0x{tag:04x}"
            text = _exif_text(tag, value)
            if text:
                found[f"Exif.{group}.{name}"] = text
    return found


def _exif_text(tag: int, value: Any) -> str:
    """An EXIF value as exiv2 writes it: rationals as "n/d", several numbers space-separated,
    text as text; bytes as text when they are printable, as numbers when short, else their size."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value)
        if tag in EXIF_UTF16:
            return clean_text(value.decode("utf-16-le", "replace").rstrip("\x00"))
        if tag == 0x9286 and value[:8] in (b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8):  # UserComment
            body = value[8:]
            text = body.decode("utf-16", "replace") if value.startswith(b"UNICODE") else body.decode("utf-8", "replace")
            return clean_text(text.rstrip("\x00"))
        stripped = value.rstrip(b"\x00")
        if stripped and all(32 <= byte < 127 for byte in stripped):
            return clean_text(stripped.decode("ascii"))
        if len(value) <= 16:
            return " ".join(str(byte) for byte in value)
        return f"({len(value)} bytes)"
    if isinstance(value, tuple):
        return clean_text(" ".join(_exif_text(tag, item) for item in value))
    if hasattr(value, "numerator") and hasattr(value, "denominator") and not isinstance(value, int):
        return f"{value.numerator}/{value.denominator}"
    return clean_text(value)


def _read_iptc(image) -> dict[str, str]:
    """IPTC IIM datasets (Pillow's ``getiptcinfo`` for JPEG and TIFF; a PNG's "Raw profile type iptc"
    text chunk, as ImageMagick and exiv2 write it) as "Iptc.Application2.<Name>"."""
    from PIL import IptcImagePlugin

    if image.format == "PNG":
        profile = image.info.get("Raw profile type iptc") or image.info.get("Raw profile type 8bim")
        datasets = _iptc_datasets(_raw_profile(str(profile))) if profile else {}
    else:
        datasets = IptcImagePlugin.getiptcinfo(image) or {}
    found = {}
    for (record, number), values in datasets.items():
        name = IPTC_NAMES.get((record, number), f"0x{number:04x}")
        key = f"Iptc.{IPTC_RECORDS.get(record, f'0x{record:04x}')}.{name}"
        texts = [_iptc_text(name, value) for value in (values if isinstance(values, list) else [values])]
        text = "; ".join(clean_text(text) for text in texts if text)
        if text:
            found[key] = clean_text(text)
    return found


def _raw_profile(text: str) -> bytes:
    """An ImageMagick "Raw profile type" text chunk (a name line, a length line, hex digits) as
    bytes; a Photoshop 8BIM block gives its IPTC resource (0x0404)."""
    data = bytes.fromhex("".join(text.split("\n")[3:]))
    position = 0
    while data.startswith(b"8BIM", position):  # Photoshop image resources
        resource = struct.unpack(">H", data[position + 4: position + 6])[0]
        name_length = data[position + 6]
        position += 6 + name_length + 1 + (name_length + 1) % 2
        size = struct.unpack(">I", data[position: position + 4])[0]
        if resource == 0x0404:
            return data[position + 4: position + 4 + size]
        position += 4 + size + size % 2
    return data


def _iptc_datasets(data: bytes) -> dict[tuple[int, int], bytes | list[bytes]]:
    """IPTC IIM datasets (0x1C, record, dataset, a 2-byte length) as Pillow's getiptcinfo gives them."""
    found: dict[tuple[int, int], Any] = {}
    position = 0
    while position + 5 <= len(data) and data[position] == 0x1C:
        record, number = data[position + 1], data[position + 2]
        size = struct.unpack(">H", data[position + 3: position + 5])[0]
        position += 5
        if size & 0x8000:  # an extended dataset: the length's own length, then the length
            count = size & 0x7FFF
            size = int.from_bytes(data[position: position + count], "big")
            position += count
        value = data[position: position + size]
        position += size
        if (record, number) in found:
            previous = found[(record, number)]
            found[(record, number)] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            found[(record, number)] = value
    return found


def _iptc_text(name: str, value: bytes) -> str:
    """An IPTC value as exiv2 writes it: dates as YYYY-MM-DD, times as HH:MM:SS+HH:MM, the binary
    version numbers as numbers, text as UTF-8 (Latin-1 when it is not)."""
    if name in _IPTC_NUMBERS and 0 < len(value) <= 4:
        return str(int.from_bytes(value, "big"))
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    if name in _IPTC_DATES and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if name in _IPTC_TIMES and len(text) == 11 and text[:6].isdigit() and text[6] in "+-":
        return f"{text[:2]}:{text[2:4]}:{text[4:6]}{text[6:9]}:{text[9:]}"
    return text


def xmp_packet_of(header: bytes) -> bytes | None:
    """The XMP packet of a file's metadata bytes: a JPEG's APP1 "http://ns.adobe.com/xap/1.0/"
    segment, a PNG's iTXt "XML:com.adobe.xmp" chunk, or for other formats the text from
    ``<x:xmpmeta`` to ``</x:xmpmeta>``; None when there is none. An extended-XMP continuation
    (JPEG APP1 "http://ns.adobe.com/xmp/extension/") is not joined to it."""
    if header[:3] == b"\xff\xd8\xff":
        signature = b"http://ns.adobe.com/xap/1.0/\x00"
        return next((body[len(signature):] for marker, body in _jpeg_segments(header)[0]
                     if marker == 0xE1 and body.startswith(signature)), None)
    if header[:8] == b"\x89PNG\r\n\x1a\n":
        for kind, body, _ in _png_chunks(header):
            if kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\x00"):
                compressed, rest = body[18], body[20:]
                text = rest.split(b"\x00", 2)[2]  # after the language tag and the translated keyword
                if compressed:
                    inflate = zlib.decompressobj()
                    text = inflate.decompress(text, MAX_XMP_BYTES + 1)
                return text
        return None
    for opening, closing in ((b"<x:xmpmeta", b"</x:xmpmeta>"), (b"<x:xapmeta", b"</x:xapmeta>")):
        start, end = header.find(opening), header.rfind(closing)
        if 0 <= start < end:
            return header[start: end + len(closing)]
    return None


def parse_xmp(packet: bytes) -> dict[str, Any]:
    """An XMP packet as exiv2's keys -> text, a list (rdf:Seq, rdf:Bag) or a {language: text} dict
    (rdf:Alt). Parsed with ``defusedxml``: a DOCTYPE (and so any entity, internal or external) is
    refused, raising ``defusedxml.DTDForbidden``. Raises on XML that does not parse."""
    from defusedxml import ElementTree

    declared: dict[str, str] = {}  # namespace URI -> the prefix the packet declares (the fallback)
    events = ElementTree.iterparse(io.BytesIO(packet.strip(b"\x00 \t\r\n")), events=("start-ns",),
                                   forbid_dtd=True, forbid_entities=True, forbid_external=True)
    for _, (prefix, uri) in events:
        declared.setdefault(uri, clean_text(prefix, 50) or "ns")
    root = events.root
    names = _XmpNames(declared)
    found: dict[str, Any] = {}
    rdf = root if root.tag == _RDF + "RDF" else root.find(f".//{_RDF}RDF")
    for description in (rdf.findall(_RDF + "Description") if rdf is not None else []):
        for name, value in description.attrib.items():
            if name not in _RDF_SYNTAX and name.startswith("{"):
                found[names.key(name)] = value
        for element in description:
            _xmp_property(element, names.key(element.tag), found, names)
    return found


class _XmpNames:
    """exiv2's names for XMP properties, with the packet's own prefixes for namespaces exiv2 does not know."""

    def __init__(self, declared: dict[str, str]):
        self.declared = declared

    @staticmethod
    def split(name: str) -> tuple[str, str]:
        uri, _, local = name[1:].partition("}") if name.startswith("{") else ("", "", name)
        return uri, local

    def key(self, name: str) -> str:
        """``{http://ns.adobe.com/xap/1.0/}CreatorTool`` -> ``Xmp.xmp.CreatorTool``."""
        uri, local = self.split(name)
        return f"Xmp.{XMP_SCHEMA_PREFIXES.get(uri) or self.declared.get(uri, 'ns')}.{local}"

    def field(self, name: str) -> str:
        """A structure's field as exiv2 names it in a path: ``stEvt:action``, ``Iptc4xmpCore:CiAdrCity``."""
        uri, local = self.split(name)
        prefix = XMP_FIELD_PREFIXES.get(uri) or XMP_SCHEMA_PREFIXES.get(uri) or self.declared.get(uri, "ns")
        return f"{prefix}:{local}"


def _xmp_property(element, key: str, found: dict[str, Any], names: _XmpNames) -> None:
    """One property element (or structure field) into ``found``: simple text, a resource URI, an
    array (rdf:Seq/Bag/Alt; items that are structures as "key[i]/prefix:field", 1-based), or a
    structure (parseType="Resource", a nested rdf:Description, or fields as attributes)."""
    resource = element.get(_RDF + "resource")
    if resource is not None:
        found[key] = resource
        return
    children = list(element)
    container = children[0] if children and children[0].tag in (_RDF + "Seq", _RDF + "Bag", _RDF + "Alt") else None
    if container is not None:
        items = container.findall(_RDF + "li")
        kind = container.tag[len(_RDF):]
        if any(_is_structure(item) for item in items):
            found[key] = f'type="{kind}"'
            for index, item in enumerate(items, 1):
                found[f"{key}[{index}]"] = 'type="Struct"'
                _xmp_structure(item, f"{key}[{index}]", found, names)
        elif kind == "Alt" and any(item.get(_XML_LANG) for item in items):
            found[key] = {f'lang="{item.get(_XML_LANG) or "x-default"}"': _item_text(item) for item in items}
        else:
            found[key] = [_item_text(item) for item in items]
        return
    if _is_structure(element):
        found[key] = 'type="Struct"'
        _xmp_structure(element, key, found, names)
        return
    value = element.find(_RDF + "value")
    found[key] = value.text or "" if value is not None else element.text or ""


def _is_structure(element) -> bool:
    if element.get(_RDF + "parseType") == "Resource":
        return True
    if any(name not in _RDF_SYNTAX for name in element.attrib):
        return True
    return any(child.tag == _RDF + "Description" or not child.tag.startswith(_RDF) for child in element)


def _xmp_structure(element, key: str, found: dict[str, Any], names: _XmpNames) -> None:
    """A structure's fields (as attributes or elements, directly or in an rdf:Description)."""
    nodes = [element] + [child for child in element if child.tag == _RDF + "Description"]
    for node in nodes:
        for name, value in node.attrib.items():
            if name not in _RDF_SYNTAX and name.startswith("{"):
                found[f"{key}/{names.field(name)}"] = value
        for child in node:
            if child.tag != _RDF + "Description":
                _xmp_property(child, f"{key}/{names.field(child.tag)}", found, names)


def _item_text(item) -> str:
    resource = item.get(_RDF + "resource")
    return resource if resource is not None else item.text or ""


def _flat(values: dict) -> dict[str, str]:
    flat = {}
    for key, value in (values or {}).items():
        if isinstance(value, (list, tuple)):
            value = "; ".join(clean_text(item) for item in value)
        elif isinstance(value, dict):  # language alternatives: {'lang="x-default"': text}
            value = "; ".join(clean_text(item) for item in value.values())
        text = clean_text(value)
        if text:
            flat[clean_text(key, 200)] = text
    return flat


def describe_icc(profile: bytes) -> dict[str, str]:
    """An ICC profile's description, colour space, device class and size (Pillow's ImageCms)."""
    described = {"size_bytes": str(len(profile))}
    try:
        from PIL import ImageCms

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            core = ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile
        for key, value in (("description", core.profile_description), ("copyright", core.copyright),
                           ("color_space", core.xcolor_space), ("device_class", core.device_class)):
            if value:
                described[key] = clean_text(value, 300)
    except Exception:  # a profile Pillow cannot parse is still a profile of that size
        described["description"] = "unreadable profile"
    return described


def source_type_in_words(uri: str) -> dict:
    """A digital source type URI (IPTC or C2PA) as ``{"uri", "term", "words", "generative_ai"}``;
    an unknown term is kept and said as unknown, never guessed."""
    uri = clean_text(uri, 300)
    term = uri.rsplit("/", 1)[-1] if uri.startswith((IPTC_PREFIX, C2PA_SOURCE_PREFIX)) else uri
    words, ai = DIGITAL_SOURCE_TYPES.get(term, (f"an unknown digital source type ({uri})", False))
    return {"uri": uri, "term": term, "words": words, "generative_ai": ai}


def declarations(metadata: dict) -> dict:
    """The file's own, unsigned statements about how it was made, from its metadata.

    Returns ``digital_source_type`` (see :func:`source_type_in_words`, or None), ``creator_tool``
    (XMP), ``software`` (EXIF), ``history`` (XMP Media Management and Photoshop history, as
    "action by agent at when" lines), ``created`` and ``modified`` (the dates the file gives, with
    where each comes from), ``remote_manifest`` (the XMP ``dcterms:provenance`` address of remote
    Content Credentials, or None) and ``generative_ai`` (whether the source type says so)."""
    xmp, exif, iptc = metadata.get("xmp", {}), metadata.get("exif", {}), metadata.get("iptc", {})
    source = next((value for key, value in xmp.items() if key.lower().endswith(".digitalsourcetype")), None)
    history = []
    events: dict[str, dict[str, str]] = {}
    for key, value in xmp.items():
        if key.startswith("Xmp.xmpMM.History[") and "/stEvt:" in key:
            index, field = key[len("Xmp.xmpMM.History["):].split("]/stEvt:", 1)
            events.setdefault(index, {})[field] = value
    for index in sorted(events, key=lambda i: int(i) if i.isdigit() else 0):
        event = events[index]
        line = event.get("action", "event")
        if event.get("softwareAgent"):
            line += f" by {event['softwareAgent']}"
        if event.get("when"):
            line += f" at {event['when']}"
        if event.get("changed"):
            line += f" (changed {event['changed']})"
        history.append(line)
    if xmp.get("Xmp.photoshop.History"):
        history.append(f"Photoshop history: {xmp['Xmp.photoshop.History']}")
    created = [(where, value) for where, value in (
        ("EXIF DateTimeOriginal", exif.get("Exif.Photo.DateTimeOriginal")),
        ("XMP CreateDate", xmp.get("Xmp.xmp.CreateDate")),
        ("XMP photoshop:DateCreated", xmp.get("Xmp.photoshop.DateCreated")),
        ("IPTC DateCreated", iptc.get("Iptc.Application2.DateCreated"))) if value]
    modified = [(where, value) for where, value in (
        ("EXIF DateTime", exif.get("Exif.Image.DateTime")),
        ("XMP ModifyDate", xmp.get("Xmp.xmp.ModifyDate")),
        ("XMP MetadataDate", xmp.get("Xmp.xmp.MetadataDate"))) if value]
    found = {
        "digital_source_type": source_type_in_words(source) if source else None,
        "creator_tool": xmp.get("Xmp.xmp.CreatorTool"),
        "software": exif.get("Exif.Image.Software"),
        "history": history,
        "created": [{"source": where, "value": value} for where, value in created],
        "modified": [{"source": where, "value": value} for where, value in modified],
        "remote_manifest": xmp.get("Xmp.dcterms.provenance"),
    }
    found["generative_ai"] = bool(found["digital_source_type"] and found["digital_source_type"]["generative_ai"])
    return found


# --------------------------------------------------------------------------- Content Credentials


def read_credentials(data: bytes, trust_anchors: str | None = None) -> dict:
    """Read and validate the Content Credentials embedded in a file with c2pa-python.

    ``trust_anchors``: PEM text of the trust list's root certificates, or None (the signer is then
    not checked against any list). Returns a JSON-ready dict (see :func:`summarise_store`), or
    ``{"present": True, "readable": False, "problem": ...}`` for credentials that cannot be read.
    Never raises, never goes to the network."""
    import c2pa

    settings = json.loads(json.dumps(READER_SETTINGS))
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors}
    try:
        context = c2pa.Context.from_dict(settings)
        reader = c2pa.Reader.try_create(None, io.BytesIO(data), None, context)
        if reader is None:
            return {"present": False}
        with reader:
            store = json.loads(reader.json())
            embedded = reader.is_embedded()
    except Exception as error:
        return {"present": True, "readable": False, "problem": credential_problem(error)}
    summary = summarise_store(store, trust_list=bool(trust_anchors))
    summary["embedded"] = embedded
    return summary


def credential_problem(error: Exception) -> str:
    """One line for people about credentials that could not be read (the library's own reason kept,
    as text, in parentheses)."""
    kind = type(error).__name__.lstrip("_").replace("C2pa", "")
    reason = clean_text(str(error), 200)
    lower = reason.lower()
    if "remote" in kind.lower() or "remote manifest" in lower:
        return ("the file's Content Credentials are kept on a remote server; wsloc does not fetch them "
                f"(no network access) ({reason})")
    if kind in ("NotSupported",) or "unsupported" in lower or "not supported" in lower:
        return f"the file has Content Credentials in a form the C2PA library cannot read ({reason})"
    return f"the file's Content Credentials are damaged or incomplete and could not be read ({reason})"


def _name_of(agent: Any) -> str | None:
    if isinstance(agent, dict):
        agent = agent.get("name")
    return clean_text(agent, 300) if agent else None


def summarise_store(store: dict, trust_list: bool) -> dict:
    """The active manifest of a c2pa-python ``Reader.json()`` store, in the fields wsloc shows.

    Returns ``present``, ``readable``, ``active_manifest`` (its label), ``title``, ``claim_generator``,
    ``signer`` (``name``, ``issuer``, ``algorithm``, ``time``: the time stamp, None without one),
    ``validation_state`` (the library's: Trusted, Valid or Invalid), ``signature_valid``,
    ``trusted`` (None when no trust list was given), ``hash_matches`` (False: changed after
    signing; None when the library reported neither), ``failures`` (codes and explanations),
    ``actions`` (``action``, ``digital_source_type`` in words, ``software_agent``, ``when``),
    ``ingredients`` (``title``, ``relationship``, ``format``, ``has_credentials``),
    ``generative_ai`` ("created", "edited" or None) and ``validation_in_words``."""
    label = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(label) if label else None
    if not manifest:
        return {"present": True, "readable": False,
                "problem": "the file's Content Credentials have no active manifest"}
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = results.get("failure") or store.get("validation_status") or []
    successes = results.get("success") or []
    codes = [str(item.get("code", "")) for item in failures]
    success_codes = {str(item.get("code", "")) for item in successes}
    signature_failed = [code for code in codes if code.startswith(("claimSignature.", "signingCredential."))
                        and code != UNTRUSTED]
    hash_failed = any(code in HASH_FAILURES or code.endswith("Hash.mismatch") for code in codes)
    state = store.get("validation_state")
    info = manifest.get("signature_info") or {}
    generator_info = manifest.get("claim_generator_info") or []
    if generator_info and isinstance(generator_info, list):
        first = generator_info[0] if isinstance(generator_info[0], dict) else {}
        generator = " ".join(clean_text(part, 200) for part in (first.get("name"), first.get("version")) if part)
    else:
        generator = clean_text(manifest.get("claim_generator") or "", 300)
    actions = []
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions") or []:
                source = action.get("digitalSourceType")
                actions.append({
                    "action": clean_text(action.get("action", ""), 200),
                    "digital_source_type": source_type_in_words(source) if source else None,
                    "software_agent": _name_of(action.get("softwareAgent")),
                    "when": clean_text(action["when"], 100) if action.get("when") else None,
                })
    ingredients = [{
        "title": clean_text(ingredient.get("title") or "", 300) or None,
        "relationship": clean_text(ingredient.get("relationship") or "", 50) or None,
        "format": clean_text(ingredient.get("format") or "", 100) or None,
        "has_credentials": bool(ingredient.get("active_manifest") or ingredient.get("manifest_data")),
    } for ingredient in manifest.get("ingredients") or []]
    generative = None
    for action in actions:
        source = action["digital_source_type"]
        if source and source["generative_ai"]:
            verb = "created" if action["action"] == "c2pa.created" and source["term"] == "trainedAlgorithmicMedia" \
                else "edited"
            generative = "created" if generative == "created" else verb
    summary = {
        "present": True, "readable": True, "active_manifest": clean_text(label, 300),
        "title": clean_text(manifest.get("title") or "", 300) or None,
        "claim_generator": generator or None,
        "signer": {"name": clean_text(info.get("common_name") or "", 300) or None,
                   "issuer": clean_text(info.get("issuer") or "", 300) or None,
                   "algorithm": clean_text(info.get("alg") or "", 50) or None,
                   "time": clean_text(info.get("time") or "", 100) or None},
        "validation_state": clean_text(state or "", 50) or None,
        "signature_valid": not signature_failed and bool(info),
        "trusted": (state == "Trusted" and UNTRUSTED not in codes) if trust_list else None,
        "hash_matches": False if hash_failed else (True if success_codes & set(HASH_SUCCESSES) else None),
        "failures": [{"code": clean_text(item.get("code", ""), 200),
                      "explanation": clean_text(item.get("explanation", ""), 300)} for item in failures],
        "actions": actions,
        "ingredients": ingredients,
        "generative_ai": generative,
    }
    summary["validation_in_words"] = validation_in_words(summary)
    return summary


def validation_in_words(credentials: dict) -> str:
    """"signed by X; signature valid; signer not checked against a trust list; no time stamp":
    never "verified" unless a trust list was given and the signer is on it."""
    signer = credentials["signer"]
    who = signer["name"] or "an unnamed signer"
    if signer["issuer"] and signer["issuer"] != signer["name"]:
        who += f" (certificate issued by {signer['issuer']})"
    parts = [f"signed by {who}"]
    if credentials["signature_valid"]:
        parts.append("signature valid")
    else:
        bad = [f["code"] for f in credentials["failures"]
               if f["code"].startswith(("claimSignature.", "signingCredential.")) and f["code"] != UNTRUSTED]
        parts.append("signature NOT valid" + (f" ({'; '.join(SIGNATURE_FAILURES.get(code, code) for code in bad)})"
                                              if bad else ""))
    if credentials["trusted"] is None:
        parts.append("signer not checked against a trust list")
    elif credentials["trusted"]:
        parts.append("signer on the trust list given")
    else:
        parts.append("signer NOT on the trust list given")
    if credentials["hash_matches"] is False:
        parts.append("changed after it was signed (the file no longer matches the signed hash: the credentials "
                     "describe an earlier version)")
    elif credentials["hash_matches"]:
        parts.append("content unchanged since signing")
    parts.append(f"time stamp {signer['time']}" if signer["time"] else "no time stamp (signing time unknown)")
    return "; ".join(parts)


def action_in_words(action: dict) -> str:
    """``c2pa.created: created with generative AI (a trained model), by Firefly, at 2024-...``."""
    line = action.get("action") or "an action"
    if action.get("digital_source_type"):
        line += f": {action['digital_source_type']['words']}"
    if action.get("software_agent"):
        line += f", by {action['software_agent']}"
    if action.get("when"):
        line += f", at {action['when']}"
    return line


def ingredient_in_words(ingredient: dict) -> str:
    """``beach.jpg (parentOf, image/jpeg, with its own Content Credentials)``."""
    details = [part for part in (ingredient.get("relationship"), ingredient.get("format")) if part]
    if ingredient.get("has_credentials"):
        details.append("with its own Content Credentials")
    return (ingredient.get("title") or "an untitled ingredient") + (f" ({', '.join(details)})" if details else "")


# --------------------------------------------------------------------------- the answer


def provenance_statement(provenance: dict) -> str | None:
    """The provenance line said beside the pixel verdict (docs/verdict.md, "Provenance"), or None
    when the file carries neither credentials nor a declared digital source type: nothing to say,
    and missing credentials are never a sign of anything."""
    credentials = provenance.get("credentials") or {}
    declared = provenance.get("declarations") or {}
    source = declared.get("digital_source_type")
    if credentials.get("present") and not credentials.get("readable"):
        return f"Content Credentials: {credentials['problem']}."
    if credentials.get("present"):
        generator = credentials.get("claim_generator") or "an unnamed program"
        validity = credentials["validation_in_words"]
        if credentials.get("generative_ai"):
            made = "made" if credentials["generative_ai"] == "created" else "edited"
            line = f"Its Content Credentials say it was {made} with generative AI ({generator}), {validity}."
        else:
            line = f"It carries Content Credentials written by {generator}, {validity}."
        return line
    if credentials.get("remote_url"):
        return (f"Content Credentials: the file points at a remote manifest ({credentials['remote_url']}); "
                "wsloc does not fetch it (no network access), so nothing was checked.")
    if source:
        tool = declared.get("creator_tool") or declared.get("software")
        by = f" (by {tool}, as the file says)" if tool else ""
        return f"Its metadata (unsigned, anyone can write it) says it was {source['words']}{by}."
    if provenance.get("problem"):
        return f"Provenance: {provenance['problem']}."
    return None


def declaration_facts(declared: dict, with_uri: bool = False) -> list[tuple[str, str]]:
    """The file's own declarations (:func:`declarations`) as ``(label, value)`` lines for a panel:
    the digital source type in words (and its URI with ``with_uri``), XMP CreatorTool, EXIF
    Software, the dates and the edit history. Values are the file's text: escape them where shown."""
    facts = []
    source = declared.get("digital_source_type")
    if source:
        facts.append(("Digital source type", f"{source['words']} ({source['uri']})" if with_uri else source["words"]))
    facts += [(label, declared[key]) for key, label in (("creator_tool", "XMP CreatorTool"),
                                                          ("software", "EXIF Software")) if declared.get(key)]
    facts += [(f"Created ({item['source']})", item["value"]) for item in declared.get("created", [])]
    facts += [(f"Modified ({item['source']})", item["value"]) for item in declared.get("modified", [])]
    facts += [("History", line) for line in declared.get("history", [])]
    return facts


def read_provenance(data: bytes, trust_anchors: str | None = None) -> dict:
    """The provenance of one photo file (see the module's docstring). Never raises, never goes to
    the network.

    Returns a JSON-ready dict: ``credentials`` (:func:`read_credentials`, or ``{"present": False}``;
    ``remote_url`` when the file only points at a remote manifest), ``declarations``
    (:func:`declarations`), ``metadata`` (:func:`read_metadata`), ``problem`` (a line, or None),
    ``statement`` (:func:`provenance_statement`), ``generative_ai_declared`` (credentials or the
    file's metadata say generative AI made or edited it), ``trust_list`` (whether one was given)
    and ``used_in_verdict`` (always False)."""
    provenance: dict[str, Any] = {"credentials": {"present": False}, "declarations": {}, "metadata": {},
                                  "problem": None, "trust_list": bool(trust_anchors), "used_in_verdict": False}
    try:
        layout = metadata_layout(data)
        xmp_ok = layout["xmp_bytes"] <= MAX_XMP_BYTES
        if not xmp_ok:
            provenance["problem"] = (f"the file's XMP metadata is {layout['xmp_bytes'] / 1e6:.0f} MB, over the "
                                     f"{MAX_XMP_BYTES // (1024 * 1024)} MB wsloc reads; it was not read")
        metadata = read_metadata(layout["header"], read_xmp=xmp_ok)
        if metadata.get("error") and not provenance["problem"]:
            provenance["problem"] = f"the file's metadata could not be read ({metadata['error']})"
        provenance["metadata"] = metadata
        provenance["declarations"] = declarations(metadata)
        if layout["jumbf"]:
            provenance["credentials"] = read_credentials(data, trust_anchors)
        remote = provenance["declarations"].get("remote_manifest")
        if remote and not provenance["credentials"].get("present"):
            provenance["credentials"] = {"present": False, "remote_url": remote}
    except Exception as error:  # provenance must never stop an analysis
        provenance["problem"] = f"provenance could not be read ({type(error).__name__})"
    credentials = provenance["credentials"]
    provenance["generative_ai_declared"] = bool(credentials.get("generative_ai")
                                                or provenance["declarations"].get("generative_ai"))
    provenance["statement"] = provenance_statement(provenance)
    return provenance


def provenance_of(source: Any, trust_anchors: str | None = None) -> dict | None:
    """:func:`read_provenance` of a path or encoded bytes; None for decoded images (no file) and
    files that cannot be read."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_provenance(bytes(source), trust_anchors)
    if isinstance(source, (str, os.PathLike)):
        try:
            return read_provenance(Path(source).read_bytes(), trust_anchors)
        except OSError:
            return None
    return None


def read_trust_anchors(path: str | os.PathLike | None) -> str | None:
    """The PEM text of a trust-list file (one or more ``-----BEGIN CERTIFICATE-----`` blocks), or
    None without a path. Raises ValueError naming the file when it holds no certificate."""
    if not path:
        return None
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"{path}: expected a trust list of PEM certificates (-----BEGIN CERTIFICATE-----), "
                         "found none")
    return text


def csv_columns(provenance: dict | None) -> dict:
    """``results.csv``'s provenance columns: ``credentials_present``, ``credentials_valid`` (signature
    valid and hash matching; empty without credentials), ``ai_declared``."""
    if not provenance:
        return {"credentials_present": None, "credentials_valid": None, "ai_declared": None}
    credentials = provenance.get("credentials") or {}
    present = bool(credentials.get("present"))
    valid = (bool(credentials.get("readable") and credentials.get("signature_valid")
                  and credentials.get("hash_matches") is not False) if present else None)
    return {"credentials_present": present, "credentials_valid": valid,
            "ai_declared": bool(provenance.get("generative_ai_declared"))}
