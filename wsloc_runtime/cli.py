"""Command line: ``python -m wsloc_runtime {localize,evaluate,...}`` (also installed as ``wsloc``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .batch import register as register_batch
from .errors import Stopped, WslocError
from .imageio import image_files, write_json_atomic
from .options import add_localizer_arguments, localizer_from_args, max_pixels_from_args  # noqa: F401  (re-exported)
from .outputs import (localize_to_files, output_stems, provenance_line, verdict_counts, verdict_line,  # noqa: F401
                      write_result_files)
from .provenance import read_trust_anchors

log = logging.getLogger("wsloc")


def expand_folders(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """IMAGE arguments with each folder replaced by its image files (:func:`imageio.image_files`),
    and the folders that hold none."""
    paths, empty = [], []
    for argument in arguments:
        if Path(argument).is_dir():
            found = image_files(argument)
            if not found:
                empty.append(argument)
            paths.extend(found)
        else:
            paths.append(argument)
    return paths, empty


def localize_summary(rows: Sequence[dict], empty_folders: Sequence[str], out_dir: Path) -> str:
    """The line ``localize`` ends with: how many analysed and failed, the verdicts, where the files are."""
    failures = sum(1 for row in rows if row["error"] is not None)
    found = verdict_counts(rows)
    line = f"{len(rows) - failures} of {len(rows)} images analysed ({failures} failed)"
    if empty_folders:
        line += f", {len(empty_folders)} folder{'s' if len(empty_folders) > 1 else ''} without images"
    line += f": {found}" if found else ""
    # Only a run that wrote something points at the folder (a failed one may never have made it).
    return line + (f"; outputs in {out_dir}{os.sep}" if len(rows) > failures else "; nothing written")


#: Where ``localize`` writes when ``--out`` is not given (in the current folder; the summary names it).
DEFAULT_OUT = "wsloc-results"


def _jsonl_record(row: dict) -> dict:
    """What ``localize --jsonl`` prints for one photo: the results row, without the printed-line helpers."""
    return {key: value for key, value in row.items() if key not in ("verdict_band",)}


def trust_anchors_from_args(args: argparse.Namespace) -> str | None:
    """The PEM text of ``--trust-list`` (None without it). Raises WslocError for a file that is
    missing or holds no certificate."""
    try:
        return read_trust_anchors(getattr(args, "trust_list", None))
    except (OSError, ValueError) as error:
        raise WslocError(f"--trust-list: {error}") from None


def command_localize(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from .wording import legend_lines

    images, empty_folders = expand_folders(args.images)
    for folder in empty_folders:
        print(f"error: {folder}: no image files in this folder", file=sys.stderr)
    out_dir = Path(args.out or DEFAULT_OUT)
    rows = []
    localizer = None
    trust_anchors = trust_anchors_from_args(args)
    if images:
        localizer = localizer_from_args(args)
        # A progress bar only for a person watching a terminal: in a log it is noise.
        progress = tqdm(list(zip(images, output_stems(images))), desc="localize", unit="img", file=sys.stderr,
                        disable=args.quiet or len(images) < 2 or not sys.stderr.isatty(), leave=False)
        for source, stem in progress:
            row = localize_to_files(localizer, source, out_dir, stem, report=args.report, trust_anchors=trust_anchors)
            rows.append(row)
            if args.jsonl:
                progress.write(json.dumps(_jsonl_record(row)), file=sys.stdout)
            elif row["error"] is not None:
                progress.write(f"error: {row['error']}", file=sys.stderr)
            elif not args.quiet:
                progress.write(verdict_line(row), file=sys.stdout)
                declared = provenance_line(row)
                if declared:
                    progress.write(declared, file=sys.stdout)
                for note in row["notes"]:
                    progress.write(f"  note: {note}", file=sys.stdout)
        progress.close()
    sys.stderr.flush()
    summary = localize_summary(rows, empty_folders, out_dir)
    if args.jsonl:  # stdout holds the records alone, one JSON object a line
        print(summary, file=sys.stderr, flush=True)
    else:
        if not args.quiet and localizer is not None and any(row["error"] is None for row in rows):
            for line in legend_lines(localizer.result_band, str(out_dir)):
                print(line)
        print(summary, flush=True)
    return 1 if empty_folders or any(row["error"] is not None for row in rows) else 0


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
        masks_out=args.masks_out,
    )
    report = {
        "map": args.map,
        "fusion": localizer.fusion if localizer else None,
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
    print(f"map: {args.map}{f'   fusion: {localizer.fusion}' if localizer else ''}   pairs: {args.pairs}")
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
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Writes <name>_heatmap.png, <name>_mask.png, <name>_overlay.png and <name>.json per image, "
                    "prints one line per image, a short legend and a summary line on stdout (errors and, on a "
                    "terminal, progress on stderr); exit 1 if any image failed.",
        epilog="Each line: FILE: VERDICT SCORE | could show KINDS | mask SHARE\n"
               "  SCORE     0 = no sign of editing, 1 = strong signs. The models' edges turn it into a verdict:\n"
               "            \"likely manipulated\" from the upper edge; \"likely authentic\" below the lower edge,\n"
               "            said only where the photo could show a pasted region (\"cannot tell\" where not);\n"
               "            \"uncertain\" between. The legend after the lines states these models' edges.\n"
               "  KINDS     the kinds of edit the photo's traces would have revealed (pastes, copies, AI fills).\n"
               "  SHARE     how much of the photo the mask marks (no mask for \"likely authentic\").\n"
               "docs/verdict.md says how the edges were chosen and how often each verdict was right.",
    )
    localize.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                          help="image files, or folders: their image files, not recursive, without the "
                               "reference masks beside their photos (boat_mask.png next to boat.jpg)")
    localize.add_argument("--out", metavar="DIR", default=None,
                          help=f"folder for the outputs (default: ./{DEFAULT_OUT}; the summary line names it)")
    localize.add_argument("--jsonl", action="store_true",
                          help="for scripts: one JSON object per image on stdout (file, verdict, probability, "
                               "mask_fraction, readability, could_show, error, ...), the summary on stderr")
    localize.add_argument("--report", action="store_true",
                          help="also write <name>_report.html: one self-contained file to attach to a fact-check "
                               "(verdict, heatmap, mask, every evidence panel, file evidence, SHA-256, versions)")
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
    evaluate.add_argument("--masks-out", metavar="FOLDER", default=None,
                          help="also write each photo's scored mask (map >= 0.5) there as NNNNN_STEM.png, "
                               "to compare two runs mask against mask (studies.compare_evaluations --masks)")
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
