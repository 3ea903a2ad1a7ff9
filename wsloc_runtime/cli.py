"""Command line: ``python -m wsloc_runtime {localize,evaluate,...}`` (also installed as ``wsloc``)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import WslocError
from .imageio import describe_source, write_json_atomic, write_png_atomic
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
    )


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

    Returns a results row: ``file``, ``stem``, ``probability``, ``is_manipulated``,
    ``mask_fraction``, ``seconds``, ``timings`` (the pipeline's stage timings plus ``encode``, the
    time spent writing files) and ``error`` (``None`` on success, else a one-line message that
    names the input). Shared by ``localize`` and ``batch`` so both report failures alike.
    """
    start = time.perf_counter()
    row = {"file": source, "stem": stem, "probability": None, "is_manipulated": None, "mask_fraction": None,
           "seconds": None, "timings": None, "error": None}
    try:
        result = localizer.localize(source)
        encode_start = time.perf_counter()
        payload = write_result_files(result, Path(out_dir), stem, source)
        timings = dict(payload["timings"], encode=round(time.perf_counter() - encode_start, 4))
        row.update(probability=payload["probability"], is_manipulated=payload["is_manipulated"],
                   mask_fraction=payload["mask_fraction"], timings=timings)
    except WslocError as error:
        row["error"] = str(error)
    except Exception as error:  # one broken image must not stop a run over many
        log.debug("unexpected failure on %s", source, exc_info=True)
        row["error"] = f"{describe_source(source)}: unexpected {type(error).__name__}: {error}"
    row["seconds"] = round(time.perf_counter() - start, 4)
    return row


def command_localize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    localizer = localizer_from_args(args)
    out_dir = Path(args.out)
    failures = 0
    stems = output_stems(args.images)
    progress = tqdm(list(zip(args.images, stems)), desc="localize", unit="img", file=sys.stderr,
                    disable=args.quiet or len(args.images) < 2)
    for source, stem in progress:
        row = localize_to_files(localizer, source, out_dir, stem)
        if row["error"] is not None:
            failures += 1
            progress.write(f"error: {row['error']}", file=sys.stderr)
        elif not args.quiet:
            verdict = "MANIPULATED" if row["is_manipulated"] else "authentic"
            progress.write(
                f"{source}: {verdict} (p={row['probability']:.3f}), mask {100 * row['mask_fraction']:.1f}% "
                f"-> {out_dir / stem}_*.png"
            )
    if failures:
        print(f"{failures} of {len(args.images)} inputs failed", file=sys.stderr)
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

    localize = commands.add_parser("localize", help="heatmap, mask, overlay and JSON for each image")
    localize.add_argument("images", nargs="+", metavar="IMAGE")
    localize.add_argument("--out", required=True, metavar="DIR")
    add_localizer_arguments(localize)
    localize.set_defaults(handler=command_localize)

    from .evaluate import MAP_KINDS

    evaluate = commands.add_parser("evaluate", help="pixel and image scores over an image,mask CSV")
    evaluate.add_argument("--pairs", required=True, metavar="PAIRS.csv")
    evaluate.add_argument("--out", required=True, metavar="REPORT.json")
    evaluate.add_argument("--map", default="enhanced", choices=list(MAP_KINDS),
                          help="; ".join(f"{k}: {v}" for k, v in MAP_KINDS.items()))
    evaluate.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    add_localizer_arguments(evaluate)
    evaluate.set_defaults(handler=command_evaluate)

    from . import batch

    batch.register(commands)
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


if __name__ == "__main__":
    sys.exit(main())
