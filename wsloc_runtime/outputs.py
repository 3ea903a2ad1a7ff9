"""One photo's result as files and as a results row, shared by ``wsloc localize`` and ``wsloc batch``.

``<stem>_heatmap.png``, ``<stem>_mask.png``, ``<stem>_overlay.png``, ``<stem>_legend.png`` (the
colours of the heatmap and overlay) and ``<stem>.json`` are written atomically (a temporary file renamed into place), the JSON last, so a present JSON
means a complete result.
"""

from __future__ import annotations

import json
import logging
import textwrap
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .errors import WslocError
from .file_evidence import file_evidence_of
from .provenance import csv_columns, provenance_of
from .safe_text import csv_text, terminal_text
from .imageio import describe_source, write_json_atomic, write_palette_png_atomic, write_png_atomic
from .pipeline import Localizer, LocalizationResult, start_stage
from .readability import Readability
from .wording import LINE_WIDTH, band_in_words, verdict_sentence, verdict_short_line  # noqa: F401  (for importers)
from .viz import heatmap_levels, heatmap_palette, legend_picture, mask_image, overlay

log = logging.getLogger("wsloc")

#: The columns of a results row, in the order ``results.csv`` has them.
ROW_FIELDS = ("file", "stem", "probability", "is_manipulated", "verdict", "mask_fraction", "seconds", "timings",
              "notes", "error", "credentials_present", "credentials_valid", "ai_declared")


def output_stems(paths: Sequence[str]) -> list[str]:
    """File stems for outputs, made unique when two inputs share a name."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = Path(path).stem or "image"
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems.append(stem if count == 0 else f"{stem}_{count + 1}")
    return stems


def write_heatmap_png(path: Path, result: LocalizationResult) -> Path:
    """The enhanced map at the photo's own size as a colour-mapped PNG, atomically: the map is
    enlarged as levels and each pixel takes its level's colour, so every colour in the file is one
    of the legend's (an indexed PNG, a third of the data of RGB)."""
    return write_palette_png_atomic(path, result.full_size(heatmap_levels(result.enhanced)), heatmap_palette())


def write_legend_png(path: Path) -> Path:
    """The colour legend of the heatmap and overlay PNGs (:func:`~wsloc_runtime.viz.legend_picture`),
    written beside them so that both stay pixel for pixel over the photo; atomically."""
    return write_png_atomic(path, legend_picture())


def mask_picture(result: LocalizationResult) -> np.ndarray:
    """The reported mask at the photo's own size as a white-on-black ``uint8`` picture (255 =
    manipulated): drawn at the working size, then enlarged by nearest neighbour (the same pixels as
    enlarging the mask first, in one full-size pass instead of three)."""
    picture = mask_image(result.mask)
    height, width = result.original_size
    if picture.shape == (height, width):
        return picture
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_NEAREST)


def write_result_files(result: LocalizationResult, out_dir: Path, stem: str, source: str,
                       file_evidence: dict | None = None, report: bool = False, beside: bool = True,
                       provenance: dict | None = None, trust_anchors: str | None = None,
                       stated_precision: dict | None = None) -> dict:
    """Write ``<stem>_heatmap.png`` and ``<stem>_mask.png`` (photo size), ``<stem>_overlay.png``
    (working size) and ``<stem>.json``, each atomically. Returns the JSON payload, whose
    ``file_evidence`` is read from ``source`` when it is a file (:mod:`wsloc_runtime.file_evidence`).
    ``report=True`` also writes ``<stem>_report.html`` (:mod:`wsloc_runtime.report`), before the JSON.
    ``beside=True`` encodes the two photo-size PNGs on the background threads while this one
    writes the overlay (OpenCV's encoder releases the GIL; the same bytes either way); pass the
    Localizer's ``stages_beside`` so that a batch worker given one thread writes them in turn.
    ``provenance`` (read from ``source`` when None, :mod:`wsloc_runtime.provenance`, checked against
    ``trust_anchors`` when given) goes into the JSON and the report, beside the verdict, never into it.
    ``<stem>_legend.png`` holds the colour bar of the heatmap and the overlay. ``stated_precision``: the
    verdict rule's table for the result's fusion mode (``{verdict: (right, said, set)}``), the only
    source of a precision the report states (none when empty)."""
    outputs = {
        "heatmap": out_dir / f"{stem}_heatmap.png",
        "mask": out_dir / f"{stem}_mask.png",
        "overlay": out_dir / f"{stem}_overlay.png",
        "legend": out_dir / f"{stem}_legend.png",
    }
    writing = [
        start_stage(beside, write_heatmap_png, outputs["heatmap"], result),
        # Empty for a photo judged authentic: no file says "edited" about it (see LocalizationResult.mask).
        start_stage(beside, lambda: write_png_atomic(outputs["mask"], mask_picture(result))),
    ]
    try:
        write_png_atomic(outputs["overlay"], overlay(result.image, result.enhanced))
        write_legend_png(outputs["legend"])
    finally:  # every write has ended (and cleaned up after itself) before an error leaves here
        for stage in writing:
            stage.exception()
    for stage in writing:
        stage.result()  # raises a write's error here, where the caller expects it
    payload = {"input": source, **result.summary(), "outputs": {k: str(v) for k, v in outputs.items()}}
    if file_evidence is None:
        file_evidence = file_evidence_of(source)
    if file_evidence is not None:  # information only: read from the file, never by the verdict
        payload["file_evidence"] = file_evidence
    if provenance is None:
        start = time.perf_counter()
        provenance = provenance_of(source, trust_anchors)
        if provenance is not None:
            provenance["seconds"] = round(time.perf_counter() - start, 4)
    if provenance is not None:  # information only: claims in the file, never read by the verdict
        payload["provenance"] = provenance
    if report:
        from .report import render_report, sha256_hex, write_report_atomic

        try:
            digest = sha256_hex(Path(source).read_bytes())
        except (OSError, TypeError):
            digest = None
        outputs["report"] = out_dir / f"{stem}_report.html"
        # The report links its screen-size pictures to the full-size files beside it.
        full_size = {name: outputs[name].name for name in ("heatmap", "mask", "overlay", "legend")}
        write_report_atomic(outputs["report"], render_report(result, Path(str(source)).name, digest, file_evidence,
                                                                  provenance=provenance, stated_precision=stated_precision,
                                                                  full_size=full_size))
        payload["outputs"]["report"] = str(outputs["report"])
    # The JSON goes last: its presence means every other output of this image is complete.
    write_json_atomic(out_dir / f"{stem}.json", payload)
    return payload


def csv_cells(row: dict) -> dict:
    """A results row as ``results.csv`` writes it: booleans spelt as in the JSON (``true``/``false``,
    empty for ``None``), timings as JSON, notes joined by "; ", and no text cell that a spreadsheet
    would run as a formula (:func:`safe_text.csv_text`: file names come from whoever named the file)."""
    cells = {**{key: ("true" if value else "false") if isinstance(value, bool) else value for key, value in row.items()},
             "timings": json.dumps(row["timings"]) if row.get("timings") else "",
             "notes": "; ".join(row.get("notes") or [])}
    return {key: csv_text(value) for key, value in cells.items()}


def empty_row(source: str, stem: str) -> dict:
    return {name: None for name in ROW_FIELDS} | {"file": source, "stem": stem, "notes": []}


def row_from_payload(payload: dict, source: str, stem: str) -> dict:
    """A results row from an image's JSON payload (``seconds`` is left to the caller)."""
    row = empty_row(source, stem)
    row.update(probability=payload.get("probability"), is_manipulated=payload.get("is_manipulated"),
               verdict=payload.get("verdict"), mask_fraction=payload.get("mask_fraction"),
               timings=payload.get("timings"), notes=list(payload.get("notes") or []))
    if payload.get("verdict_band"):  # for the printed line; not a results.csv column
        row["verdict_band"] = list(payload["verdict_band"])
    if payload.get("readability"):  # likewise
        readability = payload["readability"]
        row["readability"] = readability["sentence"]
        row["could_show"] = Readability(readability["kinds"], readability["readable_from"]).could_show()
    if "provenance" in payload:
        row.update(csv_columns(payload["provenance"]))
        if payload["provenance"].get("statement"):  # for the printed line; not a results.csv column
            row["provenance"] = payload["provenance"]["statement"]
    return row


def localize_to_files(localizer: Localizer, source: str, out_dir: Path, stem: str, report: bool = False,
                      trust_anchors: str | None = None) -> dict:
    """Localize one image and write its files (see ``write_result_files``); never raises for a bad image.

    Returns a results row: ``file``, ``stem``, ``probability``, ``is_manipulated``, ``verdict``,
    ``mask_fraction``, ``seconds``, ``timings`` (the pipeline's stage timings plus ``encode``, the
    time spent writing files), ``notes`` (see ``LocalizationResult.notes``) and ``error`` (``None``
    on success, else a one-line message that names the input), ``credentials_present``,
    ``credentials_valid`` and ``ai_declared`` (:func:`provenance.csv_columns`; ``trust_anchors``:
    the PEM trust list the credentials' signer is checked against). Shared by ``localize`` and
    ``batch`` so both report failures alike.
    """
    start = time.perf_counter()
    row = empty_row(source, stem)
    try:
        result = localizer.localize(source)
        encode_start = time.perf_counter()
        payload = write_result_files(result, Path(out_dir), stem, source, report=report,
                                     beside=localizer.stages_beside, trust_anchors=trust_anchors,
                                     stated_precision=localizer.fusion_settings.stated_precision.get(result.fusion))
        row = row_from_payload(payload, source, stem)
        row["timings"] = dict(payload["timings"], encode=round(time.perf_counter() - encode_start, 4))
        if (payload.get("provenance") or {}).get("seconds") is not None:
            row["timings"]["provenance"] = payload["provenance"]["seconds"]
    except WslocError as error:
        row["error"] = str(error)
    except Exception as error:  # one broken image must not stop a run over many
        log.debug("unexpected failure on %s", source, exc_info=True)
        row["error"] = f"{describe_source(source)}: unexpected {type(error).__name__}: {error}"
    row["seconds"] = round(time.perf_counter() - start, 4)
    return row


def verdict_counts(rows: Sequence[dict]) -> str:
    """``"5 likely manipulated, 2 uncertain"``: how many finished rows got each verdict."""
    counts: dict[str, int] = {}
    for row in rows:
        if not row.get("error") and row.get("verdict"):
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return ", ".join(f"{count} {verdict}" for verdict, count in counts.items())


def verdict_line(row: dict) -> str:
    """One image's result for people, in one line of at most :data:`~wsloc_runtime.wording.LINE_WIDTH`
    characters: the file, the verdict and its score, what the photo could show, the mask's share
    (:func:`~wsloc_runtime.wording.verdict_short_line`; the scale and edges are said once after all
    lines, :func:`~wsloc_runtime.wording.legend_lines`). The file name is shown as text: a name can
    hold terminal escape sequences."""
    return verdict_short_line(terminal_text(row["file"]), row["verdict"], row["probability"], row.get("could_show"),
                              row["mask_fraction"])


def provenance_line(row: dict) -> str | None:
    """The provenance lines printed under an image's verdict line (each at most
    :data:`~wsloc_runtime.wording.LINE_WIDTH` characters), or None when the file carries neither
    credentials nor a declaration (nothing is printed then: nothing to say)."""
    if not row.get("provenance"):
        return None
    statement = terminal_text(row["provenance"])
    # A statement about a problem already starts with "Provenance:"; the label is not said twice.
    labelled = statement if statement.lower().startswith("provenance:") else f"provenance: {statement}"
    lines = textwrap.wrap(labelled, LINE_WIDTH - 2, subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join(f"  {line}" for line in lines)
