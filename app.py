"""wsloc web app: was this photo spliced or copy-moved, and where?

A thin Gradio front end over ``wsloc_runtime``'s public API: every number and map
comes from :meth:`wsloc_runtime.pipeline.Localizer.localize`; this file only picks
models, shows the evidence in the order the method builds it, and writes downloads.

    python app.py [--host 127.0.0.1] [--port 7860]

Environment (all optional):
    WSLOC_MODELS             directory holding wcbnet{2,3,4}.onnx (and segmenter ONNX files)
    WSLOC_HF_REPO            Hugging Face repo to download missing models from
                             (WSLOC_HF_REVISION pins it; HF_HUB_OFFLINE=1 forbids it)
    GRADIO_SERVER_NAME/PORT  where to listen (default 127.0.0.1:7860, or 0.0.0.0 on a Hugging Face
                             Space, where SPACE_ID is set; --host/--port win)
    WSLOC_APP_CONCURRENCY    images analysed at once (default 2): each holds a decoded photo
    WSLOC_APP_QUEUE_SIZE     requests allowed to wait (default 32)
    WSLOC_APP_MAX_UPLOAD_MB  largest upload, in MB (default 50)
    WSLOC_APP_MAX_MEGAPIXELS largest photo, in megapixels (default 100; a 48 MP photo is fine)
    WSLOC_TRUST_LIST         a PEM file of trust anchors to check Content Credentials' signers against
"""

from __future__ import annotations

import os

# Gradio reads this at import time; the Blocks below also pass analytics_enabled=False.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import argparse  # noqa: E402
import html  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from wsloc_runtime import viz, workbench  # noqa: E402
from wsloc_runtime.imageio import image_files  # noqa: E402
from wsloc_runtime.errors import WslocError  # noqa: E402
from wsloc_runtime.evidence import create_evidence  # noqa: E402
from wsloc_runtime.fusion import DEFAULT_FUSION  # noqa: E402
from wsloc_runtime.wording import (drivers_sentence, precision_sentences, score_in_words,  # noqa: E402
                                   trace_caption)
from wsloc_runtime.evaluate import read_mask  # noqa: E402
from wsloc_runtime.file_evidence import file_evidence_of  # noqa: E402
from wsloc_runtime.provenance import (action_in_words, declaration_facts, ingredient_in_words, provenance_of,  # noqa: E402
                                      read_trust_anchors)
from wsloc_runtime.safe_text import markdown_text  # noqa: E402
from wsloc_runtime.imageio import DEFAULT_MAX_PIXELS, load_image, write_json_atomic, write_png_atomic  # noqa: E402
from wsloc_runtime.metrics import f1_iou_at, roc_auc  # noqa: E402
from wsloc_runtime.outputs import mask_picture, verdict_sentence, write_heatmap_png, write_legend_png  # noqa: E402
from wsloc_runtime.report import data_uri, render_report, write_report_atomic  # noqa: E402
from wsloc_runtime.models import sha256_of  # noqa: E402
from wsloc_runtime.pipeline import MASK_THRESHOLD, LocalizationResult, Localizer  # noqa: E402
from wsloc_runtime.segmenters import create_segmenter, describe_segmenters, segmenter_names  # noqa: E402
from wsloc_runtime.sel import sel_display  # noqa: E402

log = logging.getLogger("wsloc.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "assets" / "examples"
DEFAULT_SEGMENTER = "graph"
DEFAULT_OPACITY = viz.DEFAULT_OPACITY
#: The longest side of the preview shown as soon as a photo is uploaded.
PREVIEW_MAX_SIDE = 1024


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {value!r}") from None


CONCURRENCY = _env_int("WSLOC_APP_CONCURRENCY", 2)
QUEUE_SIZE = _env_int("WSLOC_APP_QUEUE_SIZE", 32)
MAX_UPLOAD_MB = _env_int("WSLOC_APP_MAX_UPLOAD_MB", 50)
MAX_PIXELS = _env_int("WSLOC_APP_MAX_MEGAPIXELS", 100) * 1_000_000
try:  # read once: a trust list that cannot be read stops the app at start, with the reason
    TRUST_ANCHORS = read_trust_anchors(os.environ.get("WSLOC_TRUST_LIST") or None)
except (OSError, ValueError) as _error:
    raise SystemExit(f"WSLOC_TRUST_LIST: {_error}") from None
ENVIRONMENT_HELP = f"""limits and settings (environment variables, current value):
  WSLOC_APP_MAX_MEGAPIXELS  {MAX_PIXELS // 1_000_000:>4}  larger photos are refused (the command line's default: {DEFAULT_MAX_PIXELS // 1_000_000})
  WSLOC_APP_MAX_UPLOAD_MB   {MAX_UPLOAD_MB:>4}  larger uploads are refused
  WSLOC_APP_CONCURRENCY     {CONCURRENCY:>4}  photos analysed at once
  WSLOC_APP_QUEUE_SIZE      {QUEUE_SIZE:>4}  requests allowed to wait
  WSLOC_MODELS, WSLOC_HF_REPO, WSLOC_HF_REVISION: where the models are (docs/app.md)"""
#: Closes the toasts an earlier analysis left: Gradio stacks toasts of one kind, so a new failure's
#: warning would otherwise sit under an earlier file's message. Runs in the browser, before each run.
CLOSE_TOASTS_JS = "() => { document.querySelectorAll('[data-testid=\"toast-close\"]').forEach(b => b.click()); }"
#: Downloads older than this are removed (Gradio keeps its own copy for the page).
DOWNLOAD_TTL_S = 3600


# --------------------------------------------------------------------------- models


def _short_reason(message: str) -> str:
    """The missing files and the export command of a ModelNotFoundError, without the server's paths.

    The full message (every place looked in) goes to the server log; the page only
    needs what to make and how.
    """
    missing = re.findall(r"model '([^']+)' not found", message)
    if not missing:
        return message
    reason = "needs " + ", ".join(f"`{name}`" for name in missing)
    hint = re.split(r"Make (?:them|it) with:", message, maxsplit=1)[1:]
    return f"{reason}; make them with `{hint[0].strip()}`" if hint else reason


def segmenter_availability(available: list[str], unavailable: dict[str, str]) -> str:
    """The start-up log's one line about segmenters, e.g. ``graph; without model files: sam, deeplab``."""
    line = ", ".join(available) or "none"
    if unavailable:
        line += f"; without model files: {', '.join(sorted(unavailable))} (see 'About the segmenters')"
    return line


class Localizers:
    """One :class:`Localizer` per segmenter: built once, then reused by every request.

    Segmenters are probed at start-up (which also downloads models from
    ``$WSLOC_HF_REPO`` when configured), so the page can list the usable ones and
    say how to add the others; a Localizer is then built on a segmenter's first use.
    """

    def __init__(self, max_pixels: int = MAX_PIXELS) -> None:
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._segmenters = {}
        self._localizers: dict[str, Localizer] = {}
        #: segmenter name -> why it cannot be used (a one-line message for people).
        self.unavailable: dict[str, str] = {}
        #: set when the WCBnet models themselves are missing: nothing can run.
        self.models_error: str | None = None
        for name in segmenter_names():
            try:
                self._segmenters[name] = create_segmenter(name)
            except WslocError as error:  # ModelNotFoundError / ModelContractError: say what is missing
                # Optional segmenters nobody asked for: the places looked in are for debugging only.
                log.debug("segmenter %s unavailable: %s", name, error)
                self.unavailable[name] = _short_reason(str(error))
            except Exception as error:  # a broken optional segmenter must not take the app down
                log.exception("segmenter %s failed to load", name)
                self.unavailable[name] = f"failed to load ({type(error).__name__}); see the server log"
        log.info("segmenters: %s", segmenter_availability(self.available, self.unavailable))
        default = self.default_segmenter
        if default is not None:
            try:
                self.get(default)  # load the WCBnet models now, not on the first visitor's click
            except WslocError as error:
                self.models_error = str(error)

    @property
    def available(self) -> list[str]:
        return sorted(self._segmenters, key=lambda name: (name != DEFAULT_SEGMENTER, name))

    @property
    def default_segmenter(self) -> str | None:
        return self.available[0] if self.available else None

    def get(self, name: str) -> Localizer:
        if name in self.unavailable:
            raise WslocError(f"segmenter {name!r} is not available here: {self.unavailable[name]}")
        if name not in self._segmenters:
            raise WslocError(f"unknown segmenter {name!r}; choose one of: {', '.join(self.available)}")
        with self._lock:
            if name not in self._localizers:
                if self._localizers:  # share the WCBnet sessions: only the segmenter differs
                    first = next(iter(self._localizers.values()))
                    self._localizers[name] = first.with_segmenter(self._segmenters[name])
                else:
                    self._localizers[name] = Localizer(segmenter=self._segmenters[name], max_pixels=self.max_pixels)
            return self._localizers[name]


# --------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class Example:
    image: Path
    mask: Path | None
    caption: str


def find_examples(directory: Path = EXAMPLES_DIR) -> list[Example]:
    """Example photos (``<name>.jpg|png``) with their reference masks (``<name>_mask.png``) when present."""
    examples = []
    for path in map(Path, image_files(directory)):
        mask = path.with_name(f"{path.stem}_mask.png")
        caption = path.stem.replace("_", " ")
        examples.append(Example(path, mask if mask.is_file() else None, caption))
    # Forgeries first, authentic photos last, as the page's caption says.
    return sorted(examples, key=lambda e: (e.mask is None, e.image.name))


class ReferenceMasks:
    """Finds the reference mask of an uploaded file that *is* one of the examples.

    Matched by content, not by name: Gradio copies the file to its own cache, a user
    may rename it, and a different photo that happens to share a name must not be
    scored against the wrong mask. Only files of an example's exact size are hashed.
    """

    def __init__(self, examples: list[Example]) -> None:
        self._by_hash = {sha256_of(e.image): e.mask for e in examples if e.mask is not None}
        self._sizes = {e.image.stat().st_size for e in examples if e.mask is not None}

    def lookup(self, path: str | Path) -> Path | None:
        path = Path(path)
        if path.stat().st_size not in self._sizes:
            return None
        return self._by_hash.get(sha256_of(path))


def reference_scores(result: LocalizationResult, mask_path: Path) -> dict[str, float] | None:
    """Pixel F1 (of the final mask) and AUC (of the enhanced map) against a reference mask."""
    truth = read_mask(mask_path)
    if truth.shape != tuple(result.original_size):
        log.warning("reference %s does not match the image size; not scored", mask_path)
        return None
    scores = result.full_size(result.enhanced)
    f1, iou = f1_iou_at(scores, truth, MASK_THRESHOLD)
    return {"pixel_f1": round(f1, 4), "pixel_iou": round(iou, 4), "pixel_auc": round(roc_auc(scores, truth), 4)}


# --------------------------------------------------------------------------- one analysis


@dataclass
class Analysis:
    result: LocalizationResult
    summary: dict
    reference: dict[str, float] | None
    heatmap_png: Path
    mask_png: Path
    json_path: Path
    report_html: Path | None = None
    legend_png: Path | None = None
    #: What the verdict rule measured for this fusion mode: ``{verdict: (right, said, set)}``;
    #: empty when nothing was measured, and then no precision is claimed.
    stated_precision: dict = None  # type: ignore[assignment]


def _download_root() -> Path:
    root = Path(tempfile.gettempdir()) / "wsloc-app"
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - DOWNLOAD_TTL_S
    for old in root.iterdir():  # a long-running Space must not fill its disk
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            pass
    return root


def _safe_stem(path: str | Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:60] or "image"


#: The app's fusion menu: label -> ``Localizer(fusion=...)``.
FUSION_CHOICES = {"All the evidence (recommended)": "evidence", "The paper's method only (detectors' attention)": "paper"}


def analyse(
    localizers: Localizers, references: ReferenceMasks, path: str | None, segmenter: str | None, progress=None,
    fusion: str = DEFAULT_FUSION,
) -> Analysis:
    """Localize one uploaded file and write its downloads. Raises WslocError for anything a user can fix."""
    if not path:
        raise WslocError("Upload a photo (JPEG, PNG, TIFF, WebP, ...) or pick an example first.")
    if localizers.models_error:
        raise WslocError(localizers.models_error)
    localizer = localizers.get(segmenter or localizers.default_segmenter or DEFAULT_SEGMENTER)
    localizer = localizer.with_fusion(FUSION_CHOICES.get(fusion, fusion))  # sessions shared, nothing reloaded
    report = (lambda fraction, stage: progress(fraction, desc=stage)) if progress else None
    start = time.perf_counter()
    try:
        result = localizer.localize(path, progress=report)
    except WslocError as error:
        # Messages start with the file's path; show the name the user knows, not Gradio's cache path.
        raise WslocError(str(error).replace(str(path), Path(path).name)) from error

    mask_path = references.lookup(path)
    reference = reference_scores(result, mask_path) if mask_path else None
    summary = result.summary()
    summary["file"] = Path(path).name
    evidence = file_evidence_of(path)  # information only: never read by the verdict
    if evidence is not None:
        summary["file_evidence"] = evidence
    provenance = provenance_of(path, TRUST_ANCHORS)  # claims in the file: beside the verdict, never in it
    if provenance is not None:
        summary["provenance"] = provenance
    if reference:
        summary["reference"] = {"mask": mask_path.name, **reference}

    out = _download_root() / uuid.uuid4().hex
    stem = _safe_stem(path)
    # Downloads are at the photo's own size, so they overlay the original exactly.
    heatmap_png = write_heatmap_png(out / f"{stem}_heatmap.png", result)
    legend_png = write_legend_png(out / f"{stem}_legend.png")
    # Empty for a photo judged authentic (LocalizationResult.mask): no download says "edited" about it.
    mask_png = write_png_atomic(out / f"{stem}_mask.png", mask_picture(result))
    json_path = write_json_atomic(out / f"{stem}_result.json", summary)
    stated = dict(localizer.fusion_settings.stated_precision.get(result.fusion) or {})
    # The fact-check report: one self-contained HTML file (wsloc_runtime.report), its pictures
    # linked to the full-size downloads written beside it.
    document = render_report(result, Path(path).name, sha256_of(Path(path)), summary.get("file_evidence"),
                             sel_quality=localizer.sel_quality, provenance=summary.get("provenance"),
                             stated_precision=stated,
                             full_size={"heatmap": heatmap_png.name, "mask": mask_png.name,
                                        "legend": legend_png.name})
    report_html = write_report_atomic(out / f"{stem}_report.html", document)
    # One line per analysis: the browser tests count them (a redraw must not analyse again).
    log.info("analysis finished: %s in %.2f s", stem, time.perf_counter() - start)
    return Analysis(result, summary, reference, heatmap_png, mask_png, json_path, report_html, legend_png, stated)


# --------------------------------------------------------------------------- presentation


def verdict_markdown(analysis: Analysis) -> str:
    result = analysis.result
    lines = [
        f"## Verdict: {result.verdict}",
        verdict_sentence(result.verdict, result.probability, result.verdict_band, float(result.mask.mean()),
                         result.readability_sentence),
    ]
    # A precision only where the verdict rule measured one (FusionSettings.stated_precision).
    lines += precision_sentences(result.verdict, analysis.stated_precision or {})
    statement = (analysis.summary.get("provenance") or {}).get("statement")
    if statement:  # its own line beside the pixel verdict (docs/verdict.md, "Provenance")
        lines.append(f"**Provenance:** {markdown_text(statement)}")
    if result.verdict != "likely manipulated":
        lines.append("The maps below still show where the evidence is strongest; read them with the verdict.")
    lines += [f"**Note:** {note}." for note in result.notes]
    if analysis.reference:
        ref = analysis.reference
        lines.append(
            f"**Against this example's reference mask:** pixel F1 {ref['pixel_f1']:.3f}, "
            f"pixel AUC {ref['pixel_auc']:.3f}, IoU {ref['pixel_iou']:.3f}"
        )
    return "\n\n".join(lines)


def specialists_markdown(analysis: Analysis) -> str:
    """The score as the method names it, and each detector's, for the "How it works" panel."""
    result = analysis.result
    return (f"For specialists: {score_in_words(result.probability, result.verdict_band, result.verdict)}; "
            "per variant: " + ", ".join(f"{name} {p:.3f}" for name, p in result.variant_probabilities.items())
            + f"; photo {result.original_size[1]}×{result.original_size[0]} px.")


def evidence_gallery(analysis: Analysis, sel_quality: int, opacity: float) -> list[tuple[np.ndarray, str]]:
    """The maps in the order the method builds them (shared/design/method.md, steps 1-6)."""
    result = analysis.result
    image = result.image
    items: list[tuple[np.ndarray, str]] = [
        (sel_display(result.error_levels),
         f"1 · What re-saving as a JPEG (quality {sel_quality}) changes; gray = no change"),
    ]
    for name, cam in result.variant_maps.items():
        items.append((viz.with_colour_bar(viz.heatmap(cam)), f"2 · Where detector {name} looked (its score "
                                        f"{result.variant_probabilities[name]:.2f})"))
    items.append((viz.with_colour_bar(viz.heatmap(result.activation)), "3 · Where the detectors agree"))
    if result.evidence:
        items.append((viz.with_colour_bar(viz.heatmap(result.prior)),
                      "3b · The detectors' map combined with every other trace"))
    items.append((viz.region_map(image, result.regions),
                  f"4 · The photo cut into {len(result.regions)} regions"))
    if result.region_index >= 0:
        chosen = viz.outline_mask(image, result.region_mask, colour=(40, 200, 255))
        matched = "the combined evidence" if result.evidence else "where the detectors looked"
        items.append((chosen, f"5 · The region that best matches {matched}"))
    else:
        items.append((image, "5 · No region found, so the map is left as it is"))
    items.append((viz.with_colour_bar(viz.overlay(image, result.enhanced, opacity)), "6 · Final heatmap over the photo"))
    if result.is_manipulated is False:  # the method's mask, named for what it is: not a finding
        items.append((viz.mask_image(result.posterior_mask), "7 · The map cut at one half; no mask is given, as the photo "
                                                   "was judged likely authentic"))
    else:
        items.append((viz.mask_image(result.posterior_mask), "7 · Final mask: white where editing is more likely than not"))
    return items


def evidence_titles(result: LocalizationResult) -> dict[str, str]:
    return {name: create_evidence(name).title for name in result.evidence}


def traces_gallery(analysis: Analysis, opacity: float) -> list[tuple[np.ndarray, str]]:
    """One panel per evidence (its map over the photo, whether it can speak here, what it says, its
    share in the result), then the combined evidence: empty for the paper's method."""
    result = analysis.result
    if not result.evidence:
        return []
    titles = evidence_titles(result)
    items = [
        (viz.with_colour_bar(viz.overlay(result.image, reading.map, opacity)),
         trace_caption(reading, result.evidence_shares.get(name, 0.0), titles[name]))
        for name, reading in result.evidence.items()
    ]
    if result.prior is not None:
        items.append((viz.with_colour_bar(viz.overlay(result.image, result.prior, opacity)),
                      "All the traces combined, each weighted by how readable it is on this photo: "
                      "the map the region step and the final map start from."))
    return items


def traces_html(analysis: Analysis, opacity: float) -> str:
    """The traces as figures with their captions in full beneath each picture (a gallery cuts a
    caption to one line): empty for the paper's method."""
    items = traces_gallery(analysis, opacity)
    if not items:
        return ""
    figures = "".join(f'<figure class="trace"><img alt="" src="{data_uri(image, photo_like=True)}">'
                      f"<figcaption>{html.escape(caption)}</figcaption></figure>" for image, caption in items)
    return ('<h3 class="traces-title">The traces, one by one: what each says and whether it can speak about '
            f'this photo</h3><div class="trace-grid">{figures}</div>')


def drivers_markdown(analysis: Analysis) -> str:
    result = analysis.result
    if not result.evidence:
        return ("The paper's method: the map rests on the detectors' attention alone. "
                "Choose \"All the evidence\" to read every trace.")
    return drivers_sentence(evidence_titles(result), result.evidence_shares)


def file_evidence_markdown(analysis: Analysis) -> str:
    """The file's own evidence (EXIF, thumbnail, JPEG tables) in sentences, or why there is none."""
    evidence = analysis.summary.get("file_evidence")
    if not evidence:
        return "No file evidence: the photo did not come as a file."
    # The notes quote the file's EXIF: escaped, so that a field holding HTML or Markdown stays text.
    return "\n".join(f"- {markdown_text(note)}" for note in evidence["notes"])


def provenance_markdown(analysis: Analysis) -> str:
    """Content Credentials and the file's own declarations, every file string escaped."""
    provenance = analysis.summary.get("provenance")
    if not provenance:
        return "No provenance: the photo did not come as a file."
    lines = [markdown_text(provenance.get("statement") or (
        "The file carries no Content Credentials and no declaration of how it was made. Most platforms strip "
        "them, so their absence means nothing."))]
    credentials = provenance.get("credentials") or {}
    if credentials.get("readable"):
        signer = credentials["signer"]
        lines.append("**Content Credentials**")
        lines.append("\n".join(f"- {label}: {markdown_text(value)}" for label, value in (
            ("Validation", credentials["validation_in_words"]),
            ("Claim generator", credentials.get("claim_generator") or "-"),
            ("Signer", signer.get("name") or "-"), ("Certificate issuer", signer.get("issuer") or "-"),
            ("Time stamp", signer.get("time") or "none"))))
        if credentials["actions"]:
            lines.append("**Actions**\n\n" + "\n".join(f"- {markdown_text(action_in_words(a))}"
                                                        for a in credentials["actions"]))
        if credentials["ingredients"]:
            lines.append("**Ingredients**\n\n" + "\n".join(f"- {markdown_text(ingredient_in_words(i))}"
                                                            for i in credentials["ingredients"]))
    facts = declaration_facts(provenance.get("declarations") or {})
    if facts:
        lines.append("**The file's own declarations (unsigned: anyone can write them)**\n\n"
                     + "\n".join(f"- {label}: {markdown_text(value)}" for label, value in facts))
    lines.append("Information only: the verdict never reads provenance.")
    return "\n\n".join(lines)


def metadata_markdown(analysis: Analysis) -> str:
    """Every metadata field (EXIF, GPS, IPTC, XMP, ICC) as a table of escaped text."""
    metadata = (analysis.summary.get("provenance") or {}).get("metadata") or {}
    rows = [(group.upper(), key, value) for group in ("exif", "gps", "iptc", "xmp", "icc")
            for key, value in (metadata.get(group) or {}).items()]
    if not rows:
        return "No metadata in the file."
    return "| group | field | value |\n|---|---|---|\n" + "\n".join(
        f"| {group} | {markdown_text(key)} | {markdown_text(value)} |" for group, key, value in rows)


def details_markdown(analysis: Analysis) -> str:
    result = analysis.result
    total = sum(result.timings.values())
    # One row per stage: a row of a dozen stage columns breaks its headers mid-word on a laptop screen.
    stages = "\n".join(f"| {stage} | {seconds * 1000:.0f} |" for stage, seconds in result.timings.items())
    providers = "\n".join(f"- **{name}**: {', '.join(p)}" for name, p in result.providers.items())
    models = "\n".join(f"- {name}: {description}" for name, description in result.models.items())
    return (
        f"**Time: {total:.2f} s** at working size {result.working_size[1]}×{result.working_size[0]} "
        f"(photo {result.original_size[1]}×{result.original_size[0]})\n\n"
        f"**Method:** {len(result.regions)} regions from the `{result.segmenter}` segmenter; "
        + (f"chosen region #{result.region_index}, S = {result.region_score:.3g}; "
           if result.region_index >= 0 else "no region chosen; ")
        + f"mask = A* ≥ {MASK_THRESHOLD}\n\n"
        f"| stage | ms |\n|---|---:|\n{stages}\n\n"
        f"**Execution providers**\n\n{providers}\n\n**Models**\n\n{models}"
    )


def segmenter_menu_note(available: list[str], unavailable: dict[str, str]) -> str | None:
    """The line under the segmenter menu, in words: which it offers and why not the others."""
    if not unavailable:
        return None
    missing = sorted(unavailable)
    others = ", ".join(missing[:-1]) + f" and {missing[-1]}" if len(missing) > 1 else missing[0]
    offered = (f"Only {available[0]} is installed on this server." if len(available) == 1
               else f"{', '.join(available)} are installed on this server.")
    return (f"{offered} {others} need model files that this server does not have "
            "(see 'About the segmenters'). The choice changes how the photo is cut into regions.")


def segmenter_notes(localizers: Localizers) -> str:
    descriptions = describe_segmenters()
    lines = [f"- **{name}**: {descriptions.get(name, '')}" for name in localizers.available]
    if localizers.unavailable:
        lines.append("\nNot available on this server (export their ONNX files as docs/segmenters.md describes, "
                     "put them in `assets/models/` or `$WSLOC_MODELS`, and restart):")
        lines += [f"- **{name}**: {why}" for name, why in sorted(localizers.unavailable.items())]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the page


CSS = """
#verdict h2 { margin-top: 0; }
#examples .thumbnail-item { aspect-ratio: 3 / 2; }
/* The traces' captions are whole sentences: each sits in full under its picture. */
#traces .trace-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
#traces figure.trace { margin: 0; }
#traces figure.trace img { width: 100%; height: auto; display: block; border-radius: 4px; }
#traces figcaption { font-size: 14px; line-height: 1.4; margin-top: 6px; white-space: normal; }
#traces .traces-title { font-size: 16px; margin: 8px 0; }
/* Gradio cuts captions to one line with an ellipsis; the evidence captions carry numbers. */
#evidence .caption-label { white-space: normal; overflow: visible; text-overflow: clip; max-width: calc(100% - 8px); }
"""


#: The method in its own words, for the "How it works" panel (the first screen stays in plain words).
HOW_IT_WORKS = (
    "Three WCBnet classifiers read the photo's **signed error levels** (what JPEG re-compression changes; the "
    "bundled models also read where 8x8 JPEG blocks look compressed once amid blocks compressed twice), and "
    "Grad-CAM shows where each one looked. With \"All the evidence\", that map is combined with the other traces "
    "(JPEG history, JPEG grid, copy-move, noise, error levels), each weighted by how readable it is on the photo. "
    "A segmenter cuts the photo into object-shaped regions, and a Bayesian update with the region that best "
    "matches the map gives the final map (the posterior); the mask is that map cut at one half. The verdict "
    "comes from P(manipulated), the detectors' score combined with the traces, against edges chosen on "
    "development sets (docs/verdict.md)."
)


def preview_picture(path: str | None, max_pixels: int) -> np.ndarray | None:
    """The uploaded photo reduced to :data:`PREVIEW_MAX_SIDE`, or None when it cannot be read (the
    analysis that follows says why)."""
    if not path:
        return None
    try:
        photo = load_image(path, max_pixels)
    except WslocError:
        return None
    return viz.fit_within(photo, PREVIEW_MAX_SIDE)


def build_app(localizers: Localizers | None = None, examples: list[Example] | None = None) -> gr.Blocks:
    localizers = localizers or Localizers()
    examples = find_examples() if examples is None else examples
    references = ReferenceMasks(examples)

    def run(path, segmenter, progress=gr.Progress(), fusion=DEFAULT_FUSION):
        """Shared by the page and the API: user errors become gr.Error, anything else is logged."""
        try:
            return analyse(localizers, references, path, segmenter, progress, fusion)
        except WslocError as error:
            raise gr.Error(html.escape(str(error)), print_exception=False) from None  # the modal renders HTML
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("analysis failed (ref %s)", ref)
            raise gr.Error(f"Something went wrong while analysing this image (reference {ref}); "
                           "it has been logged. Try another image.", print_exception=False) from None

    def run_page(path, segmenter, opacity, fusion, threshold, progress=gr.Progress()):
        try:
            analysis = run(path, segmenter, progress, fusion)
        except gr.Error as error:
            # Keep the message on the page too (a toast disappears), and clear stale results.
            gr.Warning(error.message)
            return (f"## Could not analyse this file\n\n{markdown_text(html.unescape(error.message))}", None, None,
                    None, [], None, gr.update(value=None, visible=False), "", "", None, "", "", "", "", "")
        result = analysis.result
        quality = localizers.get(result.segmenter).sel_quality
        try:  # the photo at full resolution, for the before/after comparison
            photo = load_image(path, localizers.max_pixels)
        except WslocError:
            photo = None
        if photo is None or photo.shape[:2] != tuple(result.original_size):
            photo = result.full_size(result.image)
        bench = workbench.workbench_of(result, photo, opacity)
        return (
            verdict_markdown(analysis),
            (bench.photo, workbench.after_picture(bench, threshold)),
            viz.with_colour_bar(viz.overlay(result.image, result.enhanced, opacity)),
            workbench.mask_panel(bench, threshold),
            evidence_gallery(analysis, quality, opacity),
            [str(analysis.heatmap_png), str(analysis.mask_png), str(analysis.legend_png), str(analysis.json_path)],
            gr.update(value=str(analysis.report_html), visible=True),
            details_markdown(analysis),
            file_evidence_markdown(analysis),
            bench,  # all the sliders need: they redraw from it without analysing again
            traces_html(analysis, opacity),
            drivers_markdown(analysis),
            provenance_markdown(analysis),
            metadata_markdown(analysis),
            specialists_markdown(analysis),
        )

    def run_api(image, segmenter, fusion=DEFAULT_FUSION, progress=gr.Progress()):
        """Localize an image: returns (summary JSON, heatmap PNG, mask PNG), both PNGs at the photo's size.
        ``fusion``: "evidence" (every trace, default) or "paper" (the paper's method)."""
        analysis = run(image, segmenter, progress, fusion)
        return analysis.summary, str(analysis.heatmap_png), str(analysis.mask_png)

    def repaint(bench, opacity, threshold):
        """The opacity slider: the heatmaps redrawn from the stored map, nothing analysed again."""
        if bench is None:
            return gr.skip(), gr.skip(), gr.skip()
        workbench.set_opacity(bench, opacity)
        return (viz.with_colour_bar(viz.overlay(bench.image, bench.enhanced, opacity)),
                (bench.photo, workbench.after_picture(bench, threshold)), bench)

    def recut(bench, threshold):
        """The threshold slider: the mask redrawn from the stored map, nothing analysed again."""
        if bench is None:
            return gr.skip(), gr.skip()
        return workbench.mask_panel(bench, threshold), (bench.photo, workbench.after_picture(bench, threshold))

    def pick_example(event: gr.SelectData):
        return str(examples[event.index].image)

    def preview(path):
        return preview_picture(path, localizers.max_pixels)

    with gr.Blocks(title="wsloc: was this photo edited, and where?", analytics_enabled=False,
                   delete_cache=(1800, DOWNLOAD_TTL_S)) as demo:
        gr.Markdown(
            "# Was this photo edited, and where?\n"
            "Upload a photo or pick an example: the analysis starts at once. You get a verdict in words, "
            "a before/after view to compare the photo with where the signs of editing are, and the traces "
            "each check found. The maps show where to look closely; they are not proof on their own."
        )
        if localizers.models_error:
            gr.Markdown(f"> **The detector's models are missing, so nothing can be analysed.** "
                        f"{localizers.models_error}")
        if examples:
            gallery_examples = gr.Gallery(
                [(str(e.image), e.caption) for e in examples], label=(
                    "Examples: click one to analyse it (edited photos come with the true edited area, "
                    "so the verdict also says how well the map matches it; the last ones are authentic)"),
                columns=len(examples), height=150, allow_preview=False, object_fit="cover",
                interactive=False, elem_id="examples",
            )
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                upload = gr.File(label="Photo", file_types=["image"], type="filepath", elem_id="upload")
                shown = gr.Image(label="Your photo", elem_id="preview", interactive=False, format="jpeg",
                                 height=220, show_label=True)
                threshold = gr.Slider(0.05, 0.95, value=MASK_THRESHOLD, step=0.05, elem_id="threshold",
                                      label="Mask threshold: how strong the signs must be to be outlined",
                                      info=f"Redraws the outline only; the verdict and the downloads use "
                                           f"{MASK_THRESHOLD}.")
                opacity = gr.Slider(0.0, 1.0, value=DEFAULT_OPACITY, step=0.05, elem_id="opacity",
                                    label="Heatmap opacity where the signs are strongest (0 = photo only)")
                fusion = gr.Radio(list(FUSION_CHOICES), value=next(iter(FUSION_CHOICES)), elem_id="fusion",
                                  label="What the map rests on",
                                  info="All the evidence: the detectors plus JPEG history, JPEG grid, copy-move and "
                                       "noise traces, each weighted by how readable it is on the photo. The paper's "
                                       "method: the detectors' attention alone.")
                segmenter = gr.Radio(
                    localizers.available, value=localizers.default_segmenter, label="How the photo is cut into regions",
                    elem_id="segmenter",
                    info=segmenter_menu_note(localizers.available, localizers.unavailable),
                )
                with gr.Accordion("About the segmenters", open=False):
                    gr.Markdown(segmenter_notes(localizers))
                button = gr.Button("Analyse again", variant="secondary", elem_id="analyse")
            with gr.Column(scale=5):
                verdict = gr.Markdown("Results appear here.", elem_id="verdict")
                compare = gr.ImageSlider(
                    label="Before and after, at the photo's full resolution: drag the handle; scroll or pinch to zoom",
                    elem_id="compare", interactive=False, format="jpeg", max_height=640)
                with gr.Row():
                    overlay = gr.Image(label="Where: the signs of editing over the photo (colour bar: strength)",
                                       elem_id="heatmap", interactive=False, format="jpeg", height=360)
                    mask = gr.Image(label="The mask outlined on the photo (green lines: copied areas)",
                                    elem_id="mask", interactive=False, format="jpeg", height=360)
        drivers = gr.Markdown(elem_id="drivers")
        traces = gr.HTML(elem_id="traces")
        downloads = gr.File(label="Downloads: heatmap and mask PNG at the photo's size, their colour legend, "
                                  "result JSON", file_count="multiple", interactive=False, elem_id="downloads")
        with gr.Row(equal_height=True):
            report_button = gr.DownloadButton("Download report (one HTML file to attach to a fact-check)",
                                              visible=False, elem_id="report")
            gr.Markdown("The command line writes the same report: `wsloc localize PHOTO --out DIR --report`.",
                        elem_id="report-cli")
        with gr.Accordion("How it works: the method, step by step", open=False, elem_id="how-it-works"):
            gr.Markdown(HOW_IT_WORKS, elem_id="method-words")
            specialists = gr.Markdown(elem_id="specialists")
            evidence = gr.Gallery(label="The method, step by step", columns=5, height="auto",
                                  object_fit="contain", elem_id="evidence", interactive=False)
        with gr.Accordion("Details: timings, execution providers, models", open=False, elem_id="details-panel"):
            details = gr.Markdown(elem_id="details")
        with gr.Accordion("File evidence: camera, software, dates, thumbnail, JPEG settings (information only, "
                          "never used in the verdict)", open=False, elem_id="file-evidence-panel"):
            file_evidence = gr.Markdown(elem_id="file-evidence")
        with gr.Accordion("Provenance: Content Credentials and the file's own declarations (information only, "
                          "never used in the verdict)", open=False, elem_id="provenance-panel"):
            provenance = gr.Markdown(elem_id="provenance")
        with gr.Accordion("All metadata: EXIF, GPS, IPTC, XMP, ICC", open=False, elem_id="metadata-panel"):
            metadata = gr.Markdown(elem_id="metadata")
        state = gr.State(None)

        page_inputs = [upload, segmenter, opacity, fusion, threshold]
        page_outputs = [verdict, compare, overlay, mask, evidence, downloads, report_button, details, file_evidence,
                        state, traces, drivers, provenance, metadata, specialists]
        button.click(None, None, None, js=CLOSE_TOASTS_JS, queue=False, api_visibility="private")
        button.click(run_page, page_inputs, page_outputs, api_visibility="private", concurrency_id="localize")
        # An upload is shown at once and analysed without a click.
        upload.upload(None, None, None, js=CLOSE_TOASTS_JS, queue=False, api_visibility="private")
        upload.upload(preview, upload, shown, api_visibility="private", queue=False).then(
            run_page, page_inputs, page_outputs, api_visibility="private", concurrency_id="localize")
        upload.clear(lambda: None, None, shown, api_visibility="private", queue=False)
        if examples:
            gallery_examples.select(None, None, None, js=CLOSE_TOASTS_JS, queue=False, api_visibility="private")
            gallery_examples.select(pick_example, None, upload, api_visibility="private", queue=False).then(
                preview, upload, shown, api_visibility="private", queue=False).then(
                run_page, page_inputs, page_outputs, api_visibility="private", concurrency_id="localize")
        opacity.change(repaint, [state, opacity, threshold], [overlay, compare, state], api_visibility="private",
                       queue=False, show_progress="hidden")
        threshold.change(recut, [state, threshold], [mask, compare], api_visibility="private", queue=False,
                         show_progress="hidden")

        # The programmatic endpoint: gradio_client's predict(file, segmenter, api_name="/localize").
        api_summary = gr.JSON(visible=False, label="summary")
        api_heatmap = gr.File(visible=False, label="heatmap_png")
        api_mask = gr.File(visible=False, label="mask_png")
        api_trigger = gr.Button(visible=False)
        api_fusion = gr.Radio(["evidence", "paper"], value=DEFAULT_FUSION, visible=False, label="fusion")
        api_trigger.click(run_api, [upload, segmenter, api_fusion], [api_summary, api_heatmap, api_mask],
                          api_name="localize", concurrency_id="localize")
    # Each analysis holds a decoded photo and the models' activations: bound how many run at once.
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def default_host(environ=os.environ) -> str:
    """Where ``python app.py`` listens unless ``--host`` says otherwise: ``$GRADIO_SERVER_NAME`` when
    set; every interface (0.0.0.0) on a Hugging Face Space (``$SPACE_ID`` set), which routes to it;
    else 127.0.0.1, this machine only (a photo under investigation is not for the whole network)."""
    if environ.get("GRADIO_SERVER_NAME"):
        return environ["GRADIO_SERVER_NAME"]
    return "0.0.0.0" if environ.get("SPACE_ID") else "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve the wsloc web app (on this machine only, 127.0.0.1, unless --host says otherwise "
                    "or it runs on a Hugging Face Space).",
        epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=default_host(),
                        help="address to listen on (default $GRADIO_SERVER_NAME, else 0.0.0.0 on a Hugging Face "
                             "Space ($SPACE_ID set), else 127.0.0.1: this machine only; 0.0.0.0 serves every "
                             "interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="default $GRADIO_SERVER_PORT or 7860")
    args = parser.parse_args(argv)
    # Warnings from everyone, information from wsloc only: httpx would log every request Gradio makes.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for ours in ("wsloc", "wsloc_runtime"):
        logging.getLogger(ours).setLevel(logging.INFO)
    demo = build_app()
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        allowed_paths=[str(EXAMPLES_DIR)],  # example thumbnails and files are served from the repo
        show_error=False,  # only gr.Error messages (written for people) reach the page
        ssr_mode=False,  # no Node.js server needed, on a Space or locally
        css=CSS,
    )


if __name__ == "__main__":
    main()
