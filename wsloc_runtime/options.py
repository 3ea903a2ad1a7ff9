"""The options every command that runs the models shares (``--models``, ``--segmenter``, ...),
and the :class:`~wsloc_runtime.pipeline.Localizer` they describe.

Used by ``wsloc localize``/``evaluate`` (:mod:`wsloc_runtime.cli`) and by ``wsloc batch``, whose
workers rebuild their Localizer from the same settings (:mod:`wsloc_runtime.batch`).
"""

from __future__ import annotations

import argparse

from .errors import WslocError
from .imageio import DEFAULT_MAX_PIXELS
from .pipeline import DEFAULT_VARIANTS, DEFAULT_WORK_MAX_SIDE, Localizer
from .segmenters import segmenter_names
from .fusion import DEFAULT_EVIDENCE, DEFAULT_FUSION, FUSION_MODES
from .views import DEFAULT_TEST_TIME_VIEWS, TEST_TIME_VIEWS


#: What the largest photo measured cost, as docs/usage.md ("Limits") and docs/performance.md give it
#: (``/usr/bin/time -f '%e s %M KB' python -m wsloc_runtime -q localize BIG.jpg --out out/``, all the
#: evidence, 2 cores). tests/test_runtime_cli.py checks that the docs still say so.
LARGEST_MEASURED = "a 108 MP photo took 14 s and 1.47 GB at its peak on 2 cores"


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
             f"(default {DEFAULT_MAX_PIXELS / 1e6:.0f}; {LARGEST_MEASURED})",
    )
    group.add_argument(
        "--views", default=DEFAULT_TEST_TIME_VIEWS, choices=list(TEST_TIME_VIEWS),
        help="test-time views averaged per variant: hflip = the photo and its mirror image (default), "
             "none = one pass (half the network time), flips = four flips",
    )
    group.add_argument(
        "--fusion", default=DEFAULT_FUSION, choices=list(FUSION_MODES),
        help="; ".join(f"{name}: {text}" for name, text in FUSION_MODES.items()),
    )
    group.add_argument(
        "--evidence", default=",".join(DEFAULT_EVIDENCE), metavar="NAMES",
        help=f"evidences fused with --fusion evidence, comma-separated (default {','.join(DEFAULT_EVIDENCE)})",
    )
    provenance = parser.add_argument_group("provenance")
    provenance.add_argument(
        "--trust-list", metavar="PEM", default=None,
        help="a file of trust anchors (PEM certificates) to check Content Credentials' signers against; "
             "without it the signer is named but never called verified",
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
        fusion=getattr(args, "fusion", DEFAULT_FUSION),
        evidence=[e.strip() for e in getattr(args, "evidence", ",".join(DEFAULT_EVIDENCE)).split(",") if e.strip()],
    )


def max_pixels_from_args(args: argparse.Namespace) -> int:
    """``--max-megapixels`` in pixels; settings built by hand (the benchmarks) may leave it out."""
    megapixels = getattr(args, "max_megapixels", None)
    if megapixels is None:
        return DEFAULT_MAX_PIXELS
    if megapixels <= 0:
        raise WslocError(f"--max-megapixels must be positive, got {megapixels:g}")
    return int(megapixels * 1e6)
