"""A report to attach to a fact-check: ONE self-contained HTML file per photo.

The verdict in words, the heatmap, the mask, every evidence panel the result has (each with
what it shows and how to read it), the file evidence, the photo's SHA-256, the tool and model
versions and the date. Pictures are inlined at screen size (base64 JPEG; masks PNG), so the file
reads offline and stays small (about 1 MB for a 12 MP photo); each links to its full-size file
beside the report when the caller names them. A print style sheet lays it out on paper. The only
precision it states is the verdict rule's own (``stated_precision``); none when that is empty. Pure functions over a
:class:`~wsloc_runtime.pipeline.LocalizationResult`; :func:`write_report_atomic` writes it as the
other outputs are written (a temporary file renamed into place).
"""

from __future__ import annotations

import base64
import datetime as _datetime
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from . import __version__
from .imageio import _atomic_write
from .provenance import action_in_words, declaration_facts, ingredient_in_words
from .safe_text import html_text
from .wording import (as_sentence, fusion_in_words, precision_sentences, score_in_words, trace_caption,
                      verdict_sentence)
from .pipeline import MASK_THRESHOLD, LocalizationResult
from .sel import sel_display
from .viz import HEATMAP_COLORMAP, heatmap, heatmap_palette, legend, mask_image, outline_mask, overlay, region_map

#: Longest side of the pictures inlined in the report (the working size is at most 1024): twice
#: the ~350 CSS px a panel takes on screen and on paper, sharp on a high-density screen.
REPORT_MAX_SIDE = 720
#: JPEG quality of the inlined pictures: no visible blocking on maps at this size.
REPORT_JPEG_QUALITY = 82


@dataclass
class Panel:
    """One picture of the report: a title, the picture, what it shows and how to read it."""

    title: str
    image: np.ndarray
    shows: str
    read: str
    kind: str = "method"  # "result", "evidence" or "method"
    photo_like: bool = False  # a photo rather than a map drawn from one colour map alone
    colormap: int | None = None  # the colour map that drew the picture, for its legend
    lossless: bool = False  # a mask: inlined as PNG (two colours compress well, and stay exact)
    full_size: str | None = None  # which full-size output file it links to ("heatmap", "mask", ...)


def map_panel(title: str, values: np.ndarray, shows: str, read: str, kind: str = "method",
              photo: np.ndarray | None = None) -> Panel:
    """A panel of a [0, 1] map drawn with :data:`~wsloc_runtime.viz.HEATMAP_COLORMAP`, over ``photo``
    when given; its legend is read from that same colour map (see :func:`panel_legend`)."""
    values = np.asarray(values, np.float32)
    picture = heatmap(values, HEATMAP_COLORMAP) if photo is None else overlay(photo, values, colormap=HEATMAP_COLORMAP)
    return Panel(title, picture, shows, read, kind, photo_like=photo is not None, colormap=HEATMAP_COLORMAP)


def panel_legend(panel: Panel) -> str | None:
    """What the colours of a map panel mean, from the colour map that drew it; ``None`` for others."""
    return None if panel.colormap is None else f"Colours: {legend(panel.colormap)}."


def _linked(panel: Panel, full_size: str) -> Panel:
    panel.full_size = full_size
    return panel


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shrink(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    factor = min(1.0, REPORT_MAX_SIDE / max(height, width))
    if factor >= 1.0:
        return image
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def data_uri(image: np.ndarray, photo_like: bool = False) -> str:
    """An RGB or gray ``uint8`` picture, reduced to :data:`REPORT_MAX_SIDE`, as a ``data:`` URI:
    JPEG (quality :data:`REPORT_JPEG_QUALITY`) when ``photo_like``, else PNG (masks)."""
    picture = _shrink(np.asarray(image, np.uint8))
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR) if picture.ndim == 3 else picture
    kind, options = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, REPORT_JPEG_QUALITY]) if photo_like else (".png", [])
    ok, encoded = cv2.imencode(kind, bgr, options)
    if not ok:
        raise ValueError("could not encode a report picture")
    mime = "image/jpeg" if photo_like else "image/png"
    return f"data:{mime};base64,{base64.b64encode(encoded.tobytes()).decode('ascii')}"


def colour_bar_html(colormap: int = HEATMAP_COLORMAP, stops: int = 11) -> str:
    """A colour bar as a CSS gradient of ``colormap`` (no picture to fetch or inline), labelled
    with what each end means."""
    palette = heatmap_palette(colormap)
    colours = ", ".join(f"rgb({r},{g},{b}) {100 * i / (stops - 1):.0f}%"
                        for i, (r, g, b) in enumerate(palette[np.linspace(0, 255, stops).round().astype(int)]))
    return (f'<div class="colour-bar"><span>none</span><i style="background: linear-gradient(to right, {colours})">'
            "</i><span>strong</span></div>")


def _evidence_title(name: str) -> str:
    try:
        from .evidence import create_evidence

        return str(create_evidence(name).title)
    except Exception:  # an evidence without a registry entry here still gets a panel
        return name


def report_panels(result: LocalizationResult, sel_quality: int | None = None) -> list[Panel]:
    """Every picture of the report, in reading order: the result, each evidence, then the method."""
    image = result.image
    mask = result.mask  # empty for a photo judged authentic
    if result.is_manipulated is False:
        mask_shows = "Empty: the photo was judged likely authentic, so no area is marked as edited."
        mask_read = ("The heatmap still shows where the signs, too weak to call an edit, are strongest; "
                     "read it with the verdict.")
    else:
        mask_shows = f"White where editing is more likely than not (final map at or above {MASK_THRESHOLD})."
        mask_read = ("The mask is the heatmap cut at one level; a white area is a place to look at closely, "
                     "not a finding by itself.")
    panels = [
        Panel("The photo", image, "The photo as analysed (reduced to the working size).",
              "Compare the other pictures with it.", "result", photo_like=True),
        _linked(map_panel("Heatmap over the photo", result.enhanced,
                  "Where the analysis finds the strongest signs of editing.",
                  "A heatmap says where the detector looked, not a proof. Read it with the verdict: on a photo "
                  "not judged likely manipulated it still shows the strongest signs it found.", "result", image),
                "heatmap"),
        Panel("Mask", mask_image(mask), mask_shows, mask_read, "result", lossless=True, full_size="mask"),
        Panel("Mask outlined on the photo", outline_mask(image, mask),
              "The mask's outline drawn on the photo." if mask.any() else "The photo: the mask marks no area.",
              "Check whether the outline follows an object that could have been pasted or cloned.", "result",
              photo_like=True),
    ]
    shares = getattr(result, "evidence_shares", {}) or {}
    for name, reading in (getattr(result, "evidence", {}) or {}).items():
        panels.append(map_panel(
            f"Evidence: {_evidence_title(name)}", reading.map, "This trace's own map of the photo.",
            trace_caption(reading, float(shares.get(name, 0.0)))
            + " A trace that cannot speak about a photo says nothing either way.", "evidence"))
    quality = f" (quality {sel_quality})" if sel_quality else ""
    panels.append(Panel("What re-saving as a JPEG changes", sel_display(result.error_levels),
                        f"The signed error levels: the photo minus its re-saved JPEG copy{quality}; gray means "
                        "no change.", "A pasted region compressed differently from the rest can stand out as "
                        "brighter or darker texture; edges and fine detail always do a little.", "method"))
    for name, cam in result.variant_maps.items():
        probability = result.variant_probabilities.get(name)
        score = f" (its score {probability:.2f})" if probability is not None else ""
        panels.append(map_panel(f"Where detector {name} looked{score}", cam,
                                "Grad-CAM of one of the three classifiers: the parts of the photo its score rests on.",
                                "The three detectors look at blocks of different sizes; agreement between them "
                                "counts more than any one.", "method"))
    panels.append(map_panel("Where the detectors agree", result.activation,
                            "The detectors' maps combined (geometric mean).",
                            "High only where every detector looked.", "method"))
    panels.append(Panel(f"The photo cut into {len(result.regions)} regions", region_map(image, result.regions),
                        f"Candidate regions from the {result.segmenter} segmenter.",
                        "The analysis picks the region that best matches where the detectors looked.", "method"))
    if result.region_index >= 0:
        panels.append(Panel("The region chosen", outline_mask(image, result.region_mask, colour=(40, 200, 255)),
                            "The region that best matches where the detectors looked.",
                            "The final heatmap is this map updated with that region: edges of the "
                            "mask follow it.", "method", photo_like=True))
    return panels


CSS = """
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b1b1b; margin: 0 auto;
       max-width: 1100px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #ccc; }
.verdict { font-size: 18px; padding: 12px 16px; border-left: 6px solid #555; background: #f4f4f4; }
.verdict strong { text-transform: uppercase; letter-spacing: .02em; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 18px; }
.panel { border: 1px solid #ddd; border-radius: 6px; padding: 10px; background: #fff; }
.panel h3 { font-size: 15px; margin: 0 0 6px; } .panel img { width: 100%; height: auto; display: block; }
.panel p { margin: 6px 0 0; font-size: 13px; } .panel .read { color: #444; }
table.facts { border-collapse: collapse; } table.facts td, table.facts th { text-align: left; vertical-align: top;
  padding: 3px 12px 3px 0; border-bottom: 1px solid #eee; font-size: 13px; }
code { font-size: 12px; word-break: break-all; } .small { font-size: 12px; color: #555; }
.colour-bar { display: flex; align-items: center; gap: 6px; margin: 4px 0 0; font-size: 12px; color: #444; }
.colour-bar i { flex: 1; height: 10px; border: 1px solid #999; display: block; }
.full-size { font-size: 12px; }
.precision { font-size: 14px; margin: 6px 0; }
@page { margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 14pt; }
  .panels { grid-template-columns: repeat(2, 1fr); gap: 10pt; }
  .panel { padding: 6pt; border-color: #bbb; }
  .panel img { max-height: 90mm; object-fit: contain; }
  .panel, .verdict, table.facts tr, .colour-bar { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  /* Colour bars and the verdict's box are backgrounds: print them as on screen. */
  .colour-bar i, .verdict { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
  .full-size, details { display: none; }  /* links to files and a folded table mean nothing on paper */
}
"""


def _panel_html(panel: Panel, full_size: Mapping[str, str] | None = None) -> str:
    """One panel: its picture at screen size (JPEG; PNG for a mask), a colour bar under a map, and a
    link to the full-size file beside the report when ``full_size`` names one for it."""
    key = panel_legend(panel)
    target = (full_size or {}).get(panel.full_size or "")
    link = (f'<p class="full-size"><a href="{html.escape(target)}">Full-size picture: {html.escape(target)}</a> '
            "(beside this report)</p>") if target else ""
    return (f'<figure class="panel {panel.kind}" data-panel="{html.escape(panel.title)}">'
            f"<h3>{html.escape(panel.title)}</h3>"
            f'<img alt="{html.escape(panel.title)}" src="{data_uri(panel.image, not panel.lossless)}">'
            + (colour_bar_html(panel.colormap) if panel.colormap is not None else "")
            + f'<p class="shows"><b>What it shows:</b> {html.escape(panel.shows)}</p>'
            + (f'<p class="legend">{html.escape(key)}</p>' if key else "")
            + f'<p class="read"><b>How to read it:</b> {html.escape(panel.read)}</p>{link}</figure>')


def render_report(
    result: LocalizationResult,
    source_name: str,
    photo_sha256: str | None = None,
    file_evidence: dict | None = None,
    created: _datetime.datetime | None = None,
    sel_quality: int | None = None,
    provenance: dict | None = None,
    stated_precision: Mapping[str, Sequence] | None = None,
    full_size: Mapping[str, str] | None = None,
) -> str:
    """The report as one HTML document (UTF-8 text, every picture inlined). ``provenance``
    (:mod:`wsloc_runtime.provenance`) adds its line beside the verdict and its own section with
    the full metadata in a collapsed ``<details>``; every string from the file is escaped.
    ``stated_precision``: the verdict rule's table for the result's fusion mode
    (``FusionSettings.stated_precision[mode]``, ``{verdict: (right, said, set)}``), the only source
    of a precision the report states; None or empty: no precision is stated. ``full_size``: the
    file names, beside the report, of the full-size outputs (``{"heatmap": "x_heatmap.png",
    "mask": ..., "legend": ...}``) its pictures link to."""
    created = created or _datetime.datetime.now(_datetime.timezone.utc)
    band = result.verdict_band
    marked = float(result.mask.mean())
    sentence = verdict_sentence(result.verdict, result.probability, band, marked, result.readability_sentence)
    panels = report_panels(result, sel_quality)
    sections = []
    for kind, heading, intro in (
        ("result", "Result", ""),
        ("evidence", "Evidence, one trace at a time", "Each forensic trace read on its own; the result "
         "combines those that can speak about this photo."),
        ("method", "How the result was reached", "The steps of the method, in order."),
    ):
        chosen = [panel for panel in panels if panel.kind == kind]
        if chosen:
            sections.append(f'<section class="{kind}"><h2>{heading}</h2>'
                            + (f"<p>{html.escape(intro)}</p>" if intro else "")
                            + '<div class="panels">' + "".join(_panel_html(panel, full_size) for panel in chosen)
                            + "</div></section>")
    facts = [
        ("Photo", html.escape(source_name)),
        ("SHA-256 of the file", f"<code>{html.escape(photo_sha256)}</code>" if photo_sha256 else "not available "
                                "(the photo did not come as a file)"),
        ("Size", f"{result.original_size[1]}×{result.original_size[0]} pixels"),
        ("Score", html.escape(score_in_words(result.probability, band, result.verdict))),
        ("Marked area", f"{100 * marked:.1f}% of the photo" if result.is_manipulated is not False
         else "none: the photo was judged likely authentic"),
        ("Tool", f"wsloc {html.escape(__version__)}"),
        ("Models", "<br>".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in result.models.items()) or "-"),
        ("Segmenter", html.escape(result.segmenter)),
        ("What the map rests on", html.escape(as_sentence(fusion_in_words(str(getattr(result, "fusion", "paper")))))),
        ("Report made", created.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
    ]
    notes = "".join(f"<li>{html.escape(as_sentence(note))}</li>" for note in result.notes)
    precision = "".join(f'<p class="precision">{html.escape(line)}</p>'
                        for line in precision_sentences(result.verdict, stated_precision))
    # How often each confident verdict was right, only as the verdict rule measured it.
    measured = " ".join(line for verdict in ("likely manipulated", "likely authentic")
                        for line in precision_sentences(verdict, stated_precision))
    legend_file = (full_size or {}).get("legend")
    legend_link = (f' <a href="{html.escape(legend_file)}">The colour legend of the full-size heatmap</a> is '
                   "beside this report." if legend_file else "")
    file_section = ""
    if file_evidence:
        items = "".join(f"<li>{html.escape(as_sentence(note))}</li>" for note in file_evidence.get("notes", []))
        file_section = ('<section class="file-evidence"><h2>File evidence (information only)</h2>'
                        f"<ul>{items}</ul></section>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsloc report: {html.escape(source_name)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>Was this photo edited? wsloc report on {html.escape(source_name)}</h1>
<p class="small">Made by wsloc {html.escape(__version__)} on {created.strftime('%Y-%m-%d')}. This file holds every
picture it shows; it reads offline and prints.</p></header>
<p class="verdict" id="verdict"><strong>{html.escape(result.verdict)}</strong>. {html.escape(sentence.split('. ', 1)[-1])}</p>
{precision}
{provenance_line_html(provenance)}
{f'<ul class="notes">{notes}</ul>' if notes else ''}
<table class="facts">{''.join(f'<tr><th>{k}</th><td>{v}</td></tr>' for k, v in facts)}</table>
{''.join(sections)}
{file_section}
{provenance_section_html(provenance)}
<section class="reading"><h2>How to read this report</h2>
<p>The verdict combines detectors trained to tell edited photos from originals with the forensic traces above.
{html.escape(measured) + " " if measured else ""}"Uncertain" means the traces were readable but the score was not clear enough to say more; "cannot tell" means
the traces that would have shown an edit are erased on this photo (it was never a JPEG, was saved once only, or
was resized and re-saved, as platforms do), so finding no sign of editing says nothing. The heatmap and the mask say where
the signs of editing are strongest, not that the photo was edited there. The file evidence describes how the
file was saved; the verdict never reads it. Attach the photo's SHA-256 above so anyone can check that this
report is about the same file.{legend_link}</p></section>
</body></html>
"""


def provenance_line_html(provenance: dict | None) -> str:
    """The provenance line under the verdict (empty when the file says nothing about its origin)."""
    if not provenance or not provenance.get("statement"):
        return ""
    return f'<p class="provenance" id="provenance"><b>Provenance:</b> {html_text(provenance["statement"])}</p>'


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html_text(key)}</th><td>{html_text(value)}</td></tr>" for key, value in pairs)


def provenance_section_html(provenance: dict | None) -> str:
    """The report's provenance section: credentials (validation, actions, ingredients), the file's
    declarations, and every metadata field in a collapsed table. All file strings escaped."""
    if not provenance:
        return ""
    parts = ['<section class="provenance-details" id="provenance-details"><h2>Provenance (information only)</h2>']
    statement = provenance.get("statement") or ("The file carries no Content Credentials and no declaration of how "
                                                "it was made (most platforms strip them; that means nothing).")
    parts.append(f"<p>{html_text(statement)}</p>")
    credentials = provenance.get("credentials") or {}
    if credentials.get("readable"):
        signer = credentials["signer"]
        parts.append("<h3>Content Credentials</h3><table class=\"facts\">" + _rows([
            ("Validation", credentials["validation_in_words"]),
            ("Claim generator", credentials.get("claim_generator") or "-"),
            ("Signer", signer.get("name") or "-"), ("Certificate issuer", signer.get("issuer") or "-"),
            ("Time stamp", signer.get("time") or "none"), ("Title", credentials.get("title") or "-"),
            ("Active manifest", credentials.get("active_manifest") or "-"),
        ]) + "</table>")
        if credentials["actions"]:
            parts.append("<h3>Actions</h3><ul>" + "".join(
                f"<li>{html_text(action_in_words(action))}</li>" for action in credentials["actions"]) + "</ul>")
        if credentials["ingredients"]:
            parts.append("<h3>Ingredients</h3><ul>" + "".join(
                f"<li>{html_text(ingredient_in_words(item))}</li>" for item in credentials["ingredients"]) + "</ul>")
        if credentials["failures"]:
            parts.append("<h3>Validation findings</h3><ul>" + "".join(
                f"<li>{html_text(item['code'])}: {html_text(item['explanation'])}</li>"
                for item in credentials["failures"]) + "</ul>")
    facts = declaration_facts(provenance.get("declarations") or {}, with_uri=True)
    if facts:
        parts.append("<h3>The file's own declarations (unsigned)</h3><table class=\"facts\">" + _rows(facts) + "</table>")
    metadata = provenance.get("metadata") or {}
    fields = [(f"{group.upper()} {key}", value) for group in ("exif", "gps", "iptc", "xmp", "icc")
              for key, value in (metadata.get(group) or {}).items()]
    parts.append(f"<details><summary>All metadata ({len(fields)} fields: EXIF, GPS, IPTC, XMP, ICC)</summary>"
                 + (f'<table class="facts metadata">{_rows(fields)}</table>' if fields else "<p>None.</p>")
                 + "</details>")
    parts.append("</section>")
    return "".join(parts)


def write_report_atomic(path: Path | str, document: str) -> Path:
    """Write the report; the file appears whole or not at all."""
    return _atomic_write(Path(path), lambda stream: stream.write(document.encode("utf-8")))


def report_panel_titles(panels: Sequence[Panel]) -> list[str]:
    return [panel.title for panel in panels]
