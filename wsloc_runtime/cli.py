"""Command line: ``python -m wsloc_runtime {localize,evaluate,...}`` (also installed as ``wsloc``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from . import __version__
from .batch import Stopped, image_files
from .batch import register as register_batch
from .errors import WslocError
from .imageio import DEFAULT_MAX_PIXELS, describe_source, write_json_atomic, write_png_atomic
from .pipeline import DEFAULT_VARIANTS, DEFAULT_WORK_MAX_SIDE, Localizer, LocalizationResult
from .segmenters import segmenter_names
from .viz import heatmap, mask_image, overlay
from .views import DEFAULT_TEST_TIME_VIEWS, TEST_TIME_VIEWS

log = logging.getLogger("wsloc")


def add_localizer_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every command that runs the models shares."""
    group = parser.add_argument_group("models")
    group.add_argument("--models", metavar="DIR", help="directory with wcbnet{2,3,4}.onnx (default: search)")
    group.add_argument(
        "--variants", default=",".join(map(str, DEFAULT_VARIANTS)), help="block scales to fuse (default 2,3,4)"
    )
    group.add_argument("--segmenter", default="graph", help=f"one of {', '.join(segmenter_names())}")
    group.add_argument("--segmenter-models", metavar="DIR", help="directory with the segmenter's ONNX files")
    group.add_argument("--providers", help="onnxruntime providers, comma-separated (default: CUDA if usable, else CPU)")
    group.add_argument("--work-max-side", type=int, default=DEFAULT_WORK_MAX_SIDE, help="working resolution")
    group.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    group.add_argument(
        "--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
        help=f"refuse images with more megapixels, checked on the file's header before decoding "
             f"(default {DEFAULT_MAX_PIXELS / 1e6:.0f}; a 108 MP photo needs about 1.4 GB of memory)",
    )
    group.add_argument(
        "--views", default=DEFAULT_TEST_TIME_VIEWS, choices=list(TEST_TIME_VIEWS),
        help="test-time views averaged per variant: hflip = the photo and its mirror image (default), "
             "none = one pass (half the network time), flips = four flips",
    )


def localizer_from_args(args: argparse.Namespace) -> Localizer:
    try:
        variants = [int(v) for v in args.variants.split(",") if v.strip()]
    except ValueError as error:
        raise WslocError(f"--variants must be comma-separated integers, got {args.variants!r}") from error
    providers = [p.strip() for p in args.providers.split(",")] if args.providers else None
    segmenter_options = {"model_dir": args.segmenter_models} if args.segmenter_models else {}
    return Localizer(
        models_dir=args.models,
        variants=variants,
        segmenter=args.segmenter,
        segmenter_options=segmenter_options,
        providers=providers,
        work_max_side=args.work_max_side,
        intra_op_threads=args.threads,
        test_time_views=args.views,
        max_pixels=max_pixels_from_args(args),
    )


def max_pixels_from_args(args: argparse.Namespace) -> int:
    """``--max-megapixels`` in pixels; settings built by hand (the benchmarks) may leave it out."""
    megapixels = getattr(args, "max_megapixels", None)
    if megapixels is None:
        return DEFAULT_MAX_PIXELS
    if megapixels <= 0:
        raise WslocError(f"--max-megapixels must be positive, got {megapixels:g}")
    return int(megapixels * 1e6)


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


def write_result_files(result: LocalizationResult, out_dir: Path, stem: str, source: str) -> dict:
    """Write ``<stem>_heatmap.png`` and ``<stem>_mask.png`` (photo size), ``<stem>_overlay.png``
    (working size) and ``<stem>.json``, each atomically. Returns the JSON payload."""
    outputs = {
        "heatmap": out_dir / f"{stem}_heatmap.png",
        "mask": out_dir / f"{stem}_mask.png",
        "overlay": out_dir / f"{stem}_overlay.png",
    }
    write_png_atomic(outputs["heatmap"], result.full_size(heatmap(result.enhanced)))
    write_png_atomic(outputs["mask"], mask_image(result.full_size(result.mask)))
    write_png_atomic(outputs["overlay"], overlay(result.image, result.enhanced))
    payload = {"input": source, **result.summary(), "outputs": {k: str(v) for k, v in outputs.items()}}
    # The JSON goes last: its presence means every other output of this image is complete.
    write_json_atomic(out_dir / f"{stem}.json", payload)
    return payload


def localize_to_files(localizer: Localizer, source: str, out_dir: Path, stem: str) -> dict:
    """Localize one image and write its files (see ``write_result_files``); never raises for a bad image.

    Returns a results row: ``file``, ``stem``, ``probability``, ``is_manipulated``, ``verdict``,
    ``mask_fraction``, ``seconds``, ``timings`` (the pipeline's stage timings plus ``encode``, the
    time spent writing files), ``notes`` (see ``LocalizationResult.notes``) and ``error`` (``None``
    on success, else a one-line message that names the input). Shared by ``localize`` and
    ``batch`` so both report failures alike.
    """
    start = time.perf_counter()
    row = {"file": source, "stem": stem, "probability": None, "is_manipulated": None, "verdict": None,
           "mask_fraction": None, "seconds": None, "timings": None, "notes": [], "error": None}
    try:
        result = localizer.localize(source)
        encode_start = time.perf_counter()
        payload = write_result_files(result, Path(out_dir), stem, source)
        timings = dict(payload["timings"], encode=round(time.perf_counter() - encode_start, 4))
        row.update(probability=payload["probability"], is_manipulated=payload["is_manipulated"],
                   verdict=payload["verdict"], mask_fraction=payload["mask_fraction"], timings=timings,
                   notes=payload["notes"])
    except WslocError as error:
        row["error"] = str(error)
    except Exception as error:  # one broken image must not stop a run over many
        log.debug("unexpected failure on %s", source, exc_info=True)
        row["error"] = f"{describe_source(source)}: unexpected {type(error).__name__}: {error}"
    row["seconds"] = round(time.perf_counter() - start, 4)
    return row


def expand_folders(arguments: Sequence[str]) -> list[str]:
    """IMAGE arguments with each folder replaced by its image files (:func:`batch.image_files`)."""
    paths = []
    for argument in arguments:
        if Path(argument).is_dir():
            found = image_files(argument)
            if not found:
                raise WslocError(f"{argument}: no image files in this folder")
            paths.extend(found)
        else:
            paths.append(argument)
    return paths


def verdict_counts(rows: Sequence[dict]) -> str:
    """``"5 likely manipulated, 2 uncertain"``: how many finished rows got each verdict."""
    counts: dict[str, int] = {}
    for row in rows:
        if not row.get("error") and row.get("verdict"):
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return ", ".join(f"{count} {verdict}" for verdict, count in counts.items())


def verdict_line(row: dict, band: tuple[float, float], out_dir: Path) -> str:
    """One image's result for people: the verdict with what it rests on (the probability beside
    the band it was read with), the marked area and where the files are."""
    from .pipeline import describe_band

    return (f"{row['file']}: {row['verdict']} (P(manipulated) = {row['probability']:.3f}, {describe_band(band)}), "
            f"mask {100 * row['mask_fraction']:.1f}% -> {out_dir / row['stem']}_*.png")


def command_localize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    images = expand_folders(args.images)
    localizer = localizer_from_args(args)
    out_dir = Path(args.out)
    rows = []
    progress = tqdm(list(zip(images, output_stems(images))), desc="localize", unit="img", file=sys.stderr,
                    disable=args.quiet or len(images) < 2, leave=False)
    for source, stem in progress:
        row = localize_to_files(localizer, source, out_dir, stem)
        rows.append(row)
        if row["error"] is not None:
            progress.write(f"error: {row['error']}", file=sys.stderr)
        elif not args.quiet:
            progress.write(verdict_line(row, localizer.verdict_band, out_dir))
            for note in row["notes"]:
                progress.write(f"  note: {note}")
    progress.close()
    failures = sum(1 for row in rows if row["error"] is not None)
    found = verdict_counts(rows)
    print(f"{len(rows) - failures} of {len(rows)} images analysed ({failures} failed)"
          f"{': ' + found if found else ''}; outputs in {out_dir}{os.sep}")
    return 1 if failures else 0


def command_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_pairs, map_function, read_pairs

    pairs = read_pairs(args.pairs)
    if args.limit:
        pairs = pairs[: args.limit]
    localizer = localizer_from_args(args) if args.map in ("enhanced", "activation") else None
    report = evaluate_pairs(
        pairs,
        map_function(args.map, localizer),
        decision_threshold=localizer.decision_threshold if localizer else 0.5,
        show_progress=not args.quiet,
    )
    report = {
        "map": args.map,
        "pairs": str(args.pairs),
        **report,
        "models": {m.name: str(m.path) for m in localizer.models} if localizer else None,
        "segmenter": localizer.segmenter.name if localizer else None,
        "providers": localizer.providers if localizer else None,
    }
    write_json_atomic(args.out, report)
    keys = ["pixel_auc", "pixel_f1", "pixel_f1_best", "pixel_iou", "image_auc", "image_accuracy",
            "n_tampered", "n_authentic", "n_skipped"]
    width = max(map(len, keys))
    print(f"map: {args.map}   pairs: {args.pairs}")
    for key in keys:
        value = report[key]
        print(f"  {key:<{width}}  {'-' if value is None else (f'{value:.4f}' if isinstance(value, float) else value)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsloc", description="Weakly-supervised localization of manipulated image regions."
    )
    parser.add_argument("--version", action="version", version=f"wsloc {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-image lines")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    localize = commands.add_parser(
        "localize", help="heatmap, mask, overlay and JSON for each image",
        description="Writes <name>_heatmap.png, <name>_mask.png, <name>_overlay.png and <name>.json per image, "
                    "prints one line per image and a summary line; exit 1 if any image failed.",
    )
    localize.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                          help="image files, or folders: their image files, not recursive, without the "
                               "reference masks beside their photos (boat_mask.png next to boat.jpg)")
    localize.add_argument("--out", required=True, metavar="DIR")
    add_localizer_arguments(localize)
    localize.set_defaults(handler=command_localize)

    from .evaluate import MAP_KINDS, map_kinds

    evaluate = commands.add_parser("evaluate", help="pixel and image scores over an image,mask CSV")
    evaluate.add_argument("--pairs", required=True, metavar="PAIRS.csv")
    evaluate.add_argument("--out", required=True, metavar="REPORT.json")
    evaluate.add_argument("--map", default="enhanced", choices=map_kinds(), metavar="MAP",
                          help="; ".join(f"{k}: {v}" for k, v in MAP_KINDS.items())
                          + "; evidence:NAME: one model-free evidence map (" + ", ".join(map_kinds()[len(MAP_KINDS):]) + ")")
    evaluate.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    add_localizer_arguments(evaluate)
    evaluate.set_defaults(handler=command_evaluate)

    register_batch(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except WslocError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Stopped as stop:  # a signal that came before a batch had anything to keep
        print(f"stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum


if __name__ == "__main__":
    sys.exit(main())
