"""Export the model-backed segmenters to ONNX for wsloc_runtime.

Usage::

    python -m export.segmenters sam --model-type vit_b --checkpoint sam_vit_b_01ec64.pth --out assets/models
    python -m export.segmenters deeplab --arch deeplabv3_resnet50 \\
        --checkpoint deeplabv3_resnet50_coco-cd0a2569.pth --out assets/models
    python -m export.segmenters pspnet --backbone resnet50 --checkpoint pspnet_ade20k.pth --out assets/models

``--random-weights`` builds a small random model instead of loading a checkpoint (for
tests and for trying the pipeline without downloads). Each export runs ``onnx.checker``
and an onnxruntime-vs-torch parity check, and exits non-zero when either fails.
See docs/segmenters.md for where the official checkpoints come from.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    parts = [int(p) for p in text.lower().replace("x", ",").split(",") if p.strip()]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH (>= 16), got {text!r}")
    return parts[0], parts[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export.segmenters", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="model", required=True)

    sam = sub.add_parser("sam", help="Segment Anything: sam_encoder.onnx + sam_decoder.onnx")
    sam.add_argument("--model-type", choices=("vit_b", "vit_l", "vit_h"), default="vit_b")
    sam.add_argument("--external-data", choices=("auto", "yes", "no"), default="auto",
                     help="keep encoder weights in sam_encoder.onnx.data (auto: only when over 2 GB, i.e. vit_h)")

    deeplab = sub.add_parser("deeplab", help="torchvision DeepLabV3: deeplab.onnx")
    deeplab.add_argument("--arch", default="deeplabv3_resnet50",
                         choices=("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large"))
    deeplab.add_argument("--input-size", type=_size, default=(520, 520), help="network input, SIZE or HxW (520)")

    psp = sub.add_parser("pspnet", help="PSPNet (export/pspnet_model.py): pspnet.onnx")
    psp.add_argument("--backbone", default="resnet50", choices=("resnet18", "resnet34", "resnet50", "resnet101"))
    psp.add_argument("--input-size", type=_size, default=(473, 473), help="network input, SIZE or HxW (473)")

    for p in (sam, deeplab, psp):
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--checkpoint", type=Path, help="official / trained checkpoint (.pth)")
        source.add_argument("--random-weights", action="store_true", help="small random model (tests, demos)")
        p.add_argument("--out", type=Path, required=True, help="output directory")
        p.add_argument("--model-version", default="", help="recorded in the ONNX metadata")
        p.add_argument("--seed", type=int, default=0, help="seed of --random-weights")
    for p in (deeplab, psp):
        p.add_argument("--num-classes", type=int, default=21, help="classes of --random-weights (checkpoints carry their own)")
        p.add_argument("--training-data", default="", help="free text recorded in the metadata")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    start = time.perf_counter()
    try:
        if args.model == "sam":
            from export.sam_export import build_sam, build_tiny_sam, export_sam

            if args.random_weights:
                sam, model_type = build_tiny_sam(seed=args.seed), "tiny"
            else:
                sam, model_type = build_sam(args.model_type, args.checkpoint), args.model_type
            external = {"auto": "auto", "yes": True, "no": False}[args.external_data]
            result = export_sam(sam, args.out, model_type, args.model_version or (
                args.checkpoint.name if args.checkpoint else "random"), external)
        else:
            from export.semantic_export import export_deeplab, export_pspnet

            exporter, name = (export_deeplab, args.arch) if args.model == "deeplab" else (export_pspnet, args.backbone)
            result = exporter(name, None if args.random_weights else args.checkpoint, args.out, args.input_size,
                              num_classes=args.num_classes if args.random_weights else None,
                              model_version=args.model_version, training_data=args.training_data, seed=args.seed)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # ParityError and onnx checker failures
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.items()}
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
