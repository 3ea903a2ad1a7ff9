"""Export a trained processing fingerprint to ``assets/models/fingerprint.onnx``.

``python -m export.fingerprint_export --run runs/fp1 [--out assets/models/fingerprint.onnx]``

The file takes ``luma`` ``float32 [1, 1, H, W]`` (H, W dynamic, multiples of the stride 4; the
luminance ``(0.299 R + 0.587 G + 0.114 B) / 255 - 0.5``) and returns ``embedding``
``float32 [1, 16, H / 4, W / 4]``; it carries
:class:`wsloc_runtime.evidence.fingerprint.FingerprintConfig` as JSON in
``metadata_props["wsloc.fingerprint"]``. BatchNorm is folded into the convolutions by the
exporter (eval mode).

Every export ends with ``onnx.checker.check_model``, a size check (at most 10 MB), an
onnxruntime-versus-torch parity check on three inputs of different sizes (a real photo's
luminance among them) at ``|ort - torch| <= PARITY_ATOL * max(1, max|torch|)``, and a load through
the runtime's :class:`~wsloc_runtime.evidence.fingerprint.FingerprintModel`; then the file's line in
``SHA256SUMS`` is written (the other lines are kept).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from export.onnx_files import checked_bytes, replace_metadata, write_atomic
from wsloc_runtime.evidence.fingerprint import METADATA_KEY, MODEL_FILENAME, FingerprintConfig, FingerprintModel
from wsloc_runtime.models import sha256_of

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "assets" / "models" / MODEL_FILENAME
#: Parity tolerance: |ort - torch| <= PARITY_ATOL * max(1, max|torch|) (fp32 both sides; the
#: measured difference is about 1e-5, from BatchNorm folding and summation order).
PARITY_ATOL = 1e-4
MAX_BYTES = 10_000_000
OPSET = 17
TRAINING_DATA = ("self-supervised on pristine photos only: BSDS500 (500), Kodak (20 of 24; kodim21-24 held out), "
                 "CASIA v1.0 train authentic (463), CocoGlide dev real photos (153); no manipulation label")
HISTORIES = ("region re-rendered from 1/2-1/4 resolution; resize 0.3-1.0 (nearest, linear, area, cubic, lanczos); "
             "blur / sharpen / denoise (median, bilateral, NL-means); gamma; noise; JPEG 50-100 once or twice "
             "with a grid shift; WebP 50-100")


class ExportError(RuntimeError):
    pass


def update_checksums(folder: Path, target: Path) -> Path:
    """Write ``target``'s line in ``folder/SHA256SUMS`` (``sha256sum`` format), keeping the others."""
    table = folder / "SHA256SUMS"
    lines = [line for line in (table.read_text().splitlines() if table.is_file() else [])
             if line.split() and line.split()[-1].lstrip("*") != target.name]
    lines.append(f"{sha256_of(target)}  {target.name}")
    table.write_text("".join(line + "\n" for line in sorted(lines, key=lambda l: l.split()[-1])))
    return table


def parity_inputs() -> list[np.ndarray]:
    """Three inputs: a real photo's luminance (the bundled example) and two noise fields of odd sizes."""
    import cv2

    inputs = []
    example = REPO_ROOT / "assets" / "examples" / "authentic_lighthouse.jpg"
    bgr = cv2.imread(str(example), cv2.IMREAD_COLOR)
    if bgr is not None:
        y = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        y = y[: y.shape[0] // 4 * 4, : y.shape[1] // 4 * 4]
        inputs.append((y / 255.0 - 0.5)[None, None].astype(np.float32))
    rng = np.random.default_rng(0)
    for h, w in ((64, 64), (148, 212)):
        inputs.append(rng.uniform(-0.5, 0.5, (1, 1, h, w)).astype(np.float32))
    return inputs


def export(run_dir: Path, out: Path = DEFAULT_OUT, atol: float = PARITY_ATOL, write_sums: bool = True) -> dict:
    import onnx
    import torch

    from export.fingerprint_net import VERSION, load_net, receptive_field

    net, ckpt = load_net(run_dir)
    settings = ckpt["settings"]
    stride = settings["space_to_depth"]
    config = FingerprintConfig(
        embedding_dim=settings["dim"], stride=stride,
        receptive_field=receptive_field(settings["layers"], stride),
        model_version=f"{VERSION} ({settings['layers']}x{settings['channels']}, step {ckpt['step']}, "
                      f"{ckpt['patches_seen']} patches, {ckpt['train_seconds'] / 60:.0f} min)",
        training_data=TRAINING_DATA, histories=HISTORIES)
    example = torch.zeros(1, 1, 64, 64)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False) is deprecated in torch 2.9+ but gives a plain,
        # dynamic-H/W graph for this small net; the parity check below guards it.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (example,), buffer, input_names=[config.input_name], output_names=[config.output_name],
                          dynamic_axes={config.input_name: {2: "height", 3: "width"},
                                        config.output_name: {2: "rows", 3: "cols"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    model_proto = onnx.load_from_string(buffer.getvalue())
    replace_metadata(model_proto, {METADATA_KEY: config.to_json()})
    model_proto.producer_name = "wsloc export.fingerprint_export"
    data = checked_bytes(model_proto, "the fingerprint", ExportError)
    if len(data) > MAX_BYTES:
        raise ExportError(f"fingerprint.onnx would be {len(data)} bytes, over the {MAX_BYTES} budget")
    write_atomic(out, data)

    runtime = FingerprintModel(out, providers=["CPUExecutionProvider"])
    if runtime.config != config:
        raise ExportError(f"{out}: metadata reads back as {runtime.config}, wrote {config}")
    worst = 0.0
    for x in parity_inputs():
        with torch.no_grad():
            reference = net(torch.from_numpy(x)).numpy()[0].transpose(1, 2, 0)
        produced = runtime.field(x)
        if produced.shape != reference.shape:
            raise ExportError(f"shape {produced.shape} from onnxruntime, {reference.shape} from torch")
        difference = float(np.max(np.abs(produced.astype(np.float64) - reference)))
        limit = atol * max(1.0, float(np.max(np.abs(reference))))
        if not np.isfinite(difference) or difference > limit:
            raise ExportError(f"onnxruntime differs from torch by {difference:.3g} (limit {limit:.3g}) on {x.shape}")
        worst = max(worst, difference)
    report = {"path": str(out), "bytes": out.stat().st_size, "sha256": sha256_of(out), "parity_max_abs": worst,
              "parity_atol": atol, "config": json.loads(config.to_json())}
    if write_sums:
        report["checksums"] = str(update_checksums(out.parent, out))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="training run directory (its last.pt)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--atol", type=float, default=PARITY_ATOL)
    parser.add_argument("--no-checksums", action="store_true", help="do not touch SHA256SUMS beside --out")
    args = parser.parse_args(argv)
    print(json.dumps(export(args.run, args.out, args.atol, not args.no_checksums), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
