"""Scoring maps against reference masks over a pairs file (``image,mask`` CSV).

Pixel scores (AUC, F1 at 0.5, best-threshold F1, IoU at 0.5) are computed on each
tampered image at the mask's own size and averaged over images, as IMDL-BenCo does.
Image scores (AUC, accuracy) use every image, authentic ones included.
"""

from __future__ import annotations

import csv
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .errors import InvalidImageError, UnknownNameError, WslocError
from .imageio import load_image, write_png_atomic
from .metrics import accuracy, best_f1, f1_iou_at, nanmean, roc_auc
from .jpeg_traces import single_compression_map
from .sel import error_level_map

log = logging.getLogger(__name__)

#: Map kinds: what ``evaluate --map`` scores.
MAP_KINDS = {
    "enhanced": "the method's output A* (needs models)",
    "activation": "the fused Grad-CAM A before enhancement (needs models)",
    "ela": "free baseline: plain error-level map |image - JPEG90(image)|, blurred, max-normalised",
    "jpeg_dq": "free baseline: single-compression evidence of the JPEG double-quantization map, smoothed, "
               "min-max normalised (a model input; ADQ-style)",
    "ones": "free baseline: every pixel tampered",
}
#: Evidence maps that need no model are scored as ``--map evidence:NAME`` (see ``wsloc_runtime.evidence``).
EVIDENCE_PREFIX = "evidence:"
MASK_THRESHOLD = 127


@dataclass
class Pair:
    image: Path
    mask: Path | None


def read_pairs(csv_path: str | Path) -> list[Pair]:
    """Read an ``image,mask`` CSV; paths are relative to the CSV; an empty mask marks an authentic image."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise WslocError(f"{csv_path}: pairs file not found")
    with open(csv_path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        if reader.fieldnames is None or not {"image", "mask"} <= set(reader.fieldnames):
            raise WslocError(f"{csv_path}: expected a CSV with columns 'image,mask', got {reader.fieldnames}")
        pairs = []
        for row in reader:
            image = (row.get("image") or "").strip()
            if not image:
                continue
            mask = (row.get("mask") or "").strip()
            pairs.append(Pair(csv_path.parent / image, csv_path.parent / mask if mask else None))
    return pairs


def read_mask(path: Path) -> np.ndarray:
    """A reference mask as ``bool`` (H, W): grayscale > 127 is tampered (L, RGB or RGBA files)."""
    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
    except (OSError, ValueError) as error:
        raise InvalidImageError(f"{path}: unreadable mask ({error})") from error
    return gray > MASK_THRESHOLD


#: ``rgb -> (map at the image's size, image-level score or None)``, optionally followed by a dict of
#: what the method said about the photo (verdict, each evidence's reading), copied into its row.
MapFunction = Callable[[np.ndarray], tuple]


def map_kinds() -> list[str]:
    """Every name ``--map`` accepts: :data:`MAP_KINDS` and ``evidence:NAME`` for each model-free evidence."""
    from .evidence import create_evidence, evidence_names

    return list(MAP_KINDS) + [
        EVIDENCE_PREFIX + name for name in evidence_names() if not create_evidence(name).needs_models
    ]


def evidence_map_function(name: str) -> MapFunction:
    """``rgb -> (evidence map at the image's size, its strength)`` for a model-free evidence."""
    from .evidence import create_evidence, inputs_for_image, resize_map

    evidence = create_evidence(name)
    if evidence.needs_models:
        raise WslocError(f"evidence {name!r} reads the models' outputs; score it with --map enhanced")

    def run(rgb: np.ndarray) -> tuple[np.ndarray, float]:
        reading = evidence.compute(inputs_for_image(rgb))
        return resize_map(reading.map, rgb.shape[:2]), reading.strength

    return run


def map_function(kind: str, localizer=None) -> MapFunction:
    """``rgb -> (map at the image's size, image-level score or None)`` for a map kind."""
    if kind.startswith(EVIDENCE_PREFIX):
        return evidence_map_function(kind[len(EVIDENCE_PREFIX):])
    if kind not in MAP_KINDS:
        raise UnknownNameError(f"unknown map {kind!r}; choose one of: {', '.join(map_kinds())}")
    if kind == "ones":
        return lambda rgb: (np.ones(rgb.shape[:2], np.float32), 1.0)
    if kind == "ela":
        # No calibrated image-level score exists for the plain error-level map.
        return lambda rgb: (error_level_map(rgb), None)
    if kind == "jpeg_dq":
        return lambda rgb: (single_compression_map(rgb), None)
    if localizer is None:
        raise WslocError(f"--map {kind} needs the WCBnet models")

    def run(rgb: np.ndarray) -> tuple[np.ndarray, float, dict]:
        result = localizer.localize(rgb)
        chosen = result.enhanced if kind == "enhanced" else result.activation
        return result.full_size(chosen), result.probability, verdict_fields(result)

    return run


def verdict_fields(result) -> dict:
    """What a per-image row keeps of a result: the verdict in words, what the photo could show, and
    each evidence's reliability, strength and numbers (what the verdict band's study re-reads
    without running the pipeline again)."""
    summary = result.summary()
    fields = {"verdict": summary["verdict"], "probability": summary["probability"],
              "model_probability": summary["model_probability"], "original_size": summary["original_size"]}
    if "readability" in summary:
        fields["readability"] = summary["readability"]
    if summary["evidence"]:
        fields["evidence"] = {
            name: {key: value for key, value in reading.items() if key != "reason"}
            for name, reading in summary["evidence"].items()
        }
    return fields


#: Verdicts that claim something, and the truth that makes each right.
CONFIDENT_VERDICTS = {"likely manipulated": True, "likely authentic": False}


def count_verdicts(said: Sequence[tuple[str, bool]]) -> dict:
    """``{verdict: {"said": n, "right": k}}`` over ``(verdict, tampered)`` pairs ("right" only for the
    confident verdicts), with ``forgeries_caught``: the share of tampered photos called "likely
    manipulated" (None without tampered photos)."""
    counts: dict = {verdict: {"said": 0, "right": 0} for verdict in CONFIDENT_VERDICTS}
    for verdict, tampered in said:
        entry = counts.setdefault(verdict, {"said": 0})
        entry["said"] += 1
        if verdict in CONFIDENT_VERDICTS:
            entry["right"] += int(CONFIDENT_VERDICTS[verdict] == tampered)
    forgeries = sum(1 for _, tampered in said if tampered)
    counts["forgeries_caught"] = (round(counts["likely manipulated"]["right"] / forgeries, 4)
                                  if forgeries else None)
    return counts


def evaluate_pairs(
    pairs: Sequence[Pair],
    compute_map: MapFunction,
    decision_threshold: float = 0.5,
    show_progress: bool = True,
    masks_out: str | Path | None = None,
) -> dict:
    """Score ``compute_map`` on every pair. Returns the report (see module docstring).

    ``masks_out``: a folder to write each scored photo's mask in (the map at or above 0.5, the one
    the pixel F1 scores; ``NNNNN_STEM.png``, 0/255, NNNNN the pair's row), so that two runs can be
    compared mask against mask (``studies.compare_evaluations --masks``).
    """
    from tqdm import tqdm

    per_image: list[dict] = []
    pixel = {"auc": [], "f1": [], "f1_best": [], "iou": []}
    image_scores: list[float] = []
    image_labels: list[bool] = []
    skipped = 0
    if masks_out is not None:
        Path(masks_out).mkdir(parents=True, exist_ok=True)
    for number, pair in enumerate(tqdm(pairs, desc="evaluate", unit="img", file=sys.stderr,
                                       disable=not show_progress)):
        row: dict = {"image": str(pair.image), "mask": str(pair.mask) if pair.mask else None}
        try:
            rgb = load_image(pair.image)
            truth = read_mask(pair.mask) if pair.mask else None
            if truth is not None and truth.shape != rgb.shape[:2]:
                raise InvalidImageError(
                    f"mask is {truth.shape[1]}x{truth.shape[0]} but image is {rgb.shape[1]}x{rgb.shape[0]}"
                )
        except WslocError as error:
            log.warning("skipped %s", error)
            row["skipped"] = str(error)
            per_image.append(row)
            skipped += 1
            continue
        scores, image_score, *said = compute_map(rgb)
        tampered = truth is not None and bool(truth.any())
        row["tampered"] = tampered
        row["image_score"] = image_score
        if masks_out is not None:
            write_png_atomic(Path(masks_out) / mask_file_name(number, pair.image),
                             np.where(scores >= 0.5, 255, 0).astype(np.uint8))
        if said:
            row.update(said[0])
        if image_score is not None:
            image_scores.append(float(image_score))
            image_labels.append(tampered)
        if tampered:
            f1, iou = f1_iou_at(scores, truth, 0.5)
            values = {"auc": roc_auc(scores, truth), "f1": f1, "f1_best": best_f1(scores, truth), "iou": iou}
            for key, value in values.items():
                pixel[key].append(value)
                row[f"pixel_{key}"] = None if math.isnan(value) else round(value, 6)
        per_image.append(row)

    labels = np.array(image_labels, bool)
    n_tampered = int(sum(1 for r in per_image if r.get("tampered")))
    n_authentic = int(sum(1 for r in per_image if r.get("tampered") is False))
    has_scores = len(image_scores) == n_tampered + n_authentic and len(image_scores) > 0
    both_classes = has_scores and labels.any() and (~labels).any()
    report = {
        "pixel_auc": _clean(nanmean(pixel["auc"])),
        "pixel_f1": _clean(nanmean(pixel["f1"])),
        "pixel_f1_best": _clean(nanmean(pixel["f1_best"])),
        "pixel_iou": _clean(nanmean(pixel["iou"])),
        "image_auc": _clean(roc_auc(np.array(image_scores), labels)) if both_classes else None,
        "image_accuracy": _clean(accuracy(np.array(image_scores), labels, decision_threshold))
        if has_scores and n_authentic > 0
        else None,
        "n_tampered": n_tampered,
        "n_authentic": n_authentic,
        "n_skipped": skipped,
        **({"verdicts": count_verdicts([(r["verdict"], r["tampered"]) for r in per_image if "verdict" in r])}
           if any("verdict" in r for r in per_image) else {}),
        "per_image": per_image,
    }
    return report


def mask_file_name(number: int, image: Path) -> str:
    """The file ``evaluate_pairs(masks_out=...)`` writes the mask of pair ``number`` in."""
    return f"{number:05d}_{Path(image).stem}.png"


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)
