"""Provenance: what the file says about where it comes from, as claims by whoever saved it.

Two sources, both **information beside the verdict, never an input of it**:

* **Content Credentials (C2PA)**, read and validated by the Content Authenticity Initiative's own
  library (``c2pa-python``): the active manifest, its claim generator, the signer and time stamp,
  the validation in plain words (signature valid or not; signer checked against a trust list or
  not; whether the signed hash still matches the file), the actions with their digital source
  types, and the ingredients. The reader never goes to the network: remote manifests and OCSP
  are switched off in its settings (:data:`READER_SETTINGS`), and a file whose credentials only
  point at a remote manifest is reported as such, its address shown as text, never fetched.
* **The file's own declarations** (unsigned: anyone can write them), read with ``pyexiv2``
  (libexiv2): the IPTC digital source type in XMP, XMP CreatorTool and edit history, EXIF
  Software, created and modified dates; and the full metadata (EXIF, GPS, IPTC, XMP, ICC) for the
  JSON's ``provenance.metadata`` and the collapsible panels of the app and the report.

Only the metadata segments are handed to the libraries (for JPEG, the bytes before the first
scan; for PNG, every chunk but the image data), and C2PA is read only when the file holds a
JUMBF box, so a photo without credentials costs a segment walk and one small exiv2 read.
Strings are kept as text (:func:`safe_text.clean_text`); every place that shows them escapes them.
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import warnings
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
#: The XMP packet size above which XMP is not parsed (exiv2 takes seconds on tens of megabytes;
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
#: exiv2 is one library state per process: one read at a time.
_EXIV2_LOCK = threading.Lock()


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


def _jpeg_layout(data: bytes) -> dict:
    position, jumbf, xmp = 2, False, 0
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
        body = data[position + 4: position + 2 + length]
        if marker == 0xEB and b"jumb" in body[:64]:  # APP11: JUMBF (C2PA)
            jumbf = True
        elif marker == 0xE1 and (body.startswith(b"http://ns.adobe.com/xap/1.0/")
                                 or body.startswith(b"http://ns.adobe.com/xmp/extension/")):
            xmp += len(body)
        position += 2 + length
    return {"format": "JPEG", "header": data[:position] + b"\xff\xd9", "jumbf": jumbf, "xmp_bytes": xmp}


def _png_layout(data: bytes) -> dict:
    position, chunks, jumbf, xmp = 8, [data[:8]], False, 0
    while position + 12 <= len(data):
        length = struct.unpack(">I", data[position: position + 4])[0]
        kind = data[position + 4: position + 8]
        end = position + 12 + length
        if kind == b"caBX":
            jumbf = True
        elif kind == b"iTXt" and data[position + 8: position + 8 + 17] == b"XML:com.adobe.xmp":
            xmp += length
        if kind != b"IDAT":
            chunks.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    return {"format": "PNG", "header": b"".join(chunks), "jumbf": jumbf, "xmp_bytes": xmp}


# --------------------------------------------------------------------------- the file's metadata


def read_metadata(header: bytes, read_xmp: bool = True) -> dict:
    """EXIF, GPS, IPTC, XMP and ICC of a file's metadata bytes, read with pyexiv2 (libexiv2).

    Returns ``{"exif": {key: text}, "gps": {...}, "iptc": {...}, "xmp": {...}, "icc": {...}}``,
    each a flat dict of exiv2 key -> cleaned text (lists joined by "; "), and ``error`` (None, or
    what could not be read). ``read_xmp=False`` skips XMP (a packet over :data:`MAX_XMP_BYTES`).
    """
    import pyexiv2

    metadata: dict[str, Any] = {"exif": {}, "gps": {}, "iptc": {}, "xmp": {}, "icc": {}, "error": None}
    with _EXIV2_LOCK:
        pyexiv2.set_log_level(4)  # exiv2's own warnings about odd files go nowhere: the note says it
        try:
            with pyexiv2.ImageData(header) as image:
                exif = _flat(image.read_exif())
                metadata["gps"] = {k: v for k, v in exif.items() if k.startswith("Exif.GPSInfo.")}
                metadata["exif"] = {k: v for k, v in exif.items() if not k.startswith("Exif.GPSInfo.")
                                    and not k.startswith("Exif.Thumbnail.")}
                metadata["iptc"] = _flat(image.read_iptc())
                if read_xmp:
                    metadata["xmp"] = _flat(image.read_xmp())
                icc = image.read_icc()
        except Exception as error:  # a metadata reader must never stop an analysis
            metadata["error"] = f"{type(error).__name__}: {clean_text(error, 200)}"
            return metadata
    if icc:
        metadata["icc"] = describe_icc(icc)
    return metadata


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
