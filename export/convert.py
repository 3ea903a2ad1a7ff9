"""Convert trained WCBnet variants to ONNX files that honour the runtime's model contract.

``python -m export.convert --run runs/cpu --out assets/models`` writes
``wcbnet{2,3,4}.onnx`` (and refreshes ``SHA256SUMS``). Each file

* takes ``sel`` ``float32 [1, H, W, 3]`` and returns ``logit [1, 1]``,
  ``features [1, h, w, D]`` (F_c) and ``gradient [1, h, w, D]`` (dz/dF_c);
* carries :class:`wsloc_runtime.config.WCBnetConfig` as JSON in
  ``metadata_props["wsloc.config"]``.

The gradient is part of the graph: a ``tf.function`` with a FIXED batch of 1 runs the
encoder, then differentiates the logit (not the sigmoid: tf2onnx cannot convert
SigmoidGrad, and Grad-CAM is defined on the logit) with respect to F_c through the
linear head only. A dynamic batch made tf2onnx emit a Reshape that fails at run time.

Every export ends with ``onnx.checker.check_model``, an onnxruntime-versus-TensorFlow
parity check of all three outputs, and a load through
:class:`wsloc_runtime.wcbnet.WCBnetModel`; any failure raises :class:`ConversionError`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from export.onnx_files import checked_bytes, replace_metadata, write_atomic
from wsloc_runtime.config import METADATA_KEY, WCBnetConfig
from wsloc_runtime.models import sha256_of

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Parity tolerance: |ort - tf| <= PARITY_ATOL * max(1, max|tf|), per output.
PARITY_ATOL = 1e-4
OPSET = 17


class ConversionError(RuntimeError):
    """The ONNX file is invalid, disagrees with TensorFlow, or breaks the model contract."""


def serving_function(encoder, head, input_size: tuple[int, int], channels: int = 3):
    """``tf.function`` ``sel [1, H, W, C] -> {logit, features, gradient}`` with dz/dF_c in the graph."""
    import tensorflow as tf

    height, width = input_size

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, channels], tf.float32, name="sel")])
    def serve(sel):
        features = encoder(sel, training=False)
        with tf.GradientTape() as tape:
            tape.watch(features)
            logit = head(features, training=False)
        gradient = tape.gradient(logit, features)
        return {
            "logit": tf.identity(logit, name="logit"),
            "features": tf.identity(features, name="features"),
            "gradient": tf.identity(gradient, name="gradient"),
        }

    return serve


def _rename_outputs(model, wanted: dict[str, np.ndarray], produced: dict[str, np.ndarray]) -> None:
    """Give the graph outputs the contract's names (tf2onnx names them after TF tensors)."""
    renames = {}
    for output in model.graph.output:
        if output.name in wanted:
            continue
        matches = [name for name, value in wanted.items() if value.shape == produced[output.name].shape
                   and np.allclose(value, produced[output.name], atol=1e-5) and name not in renames.values()]
        if len(matches) != 1:
            raise ConversionError(f"cannot tell which contract output ONNX output {output.name!r} is")
        renames[output.name] = matches[0]
    for node in model.graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]
        node.input[:] = [renames.get(n, n) for n in node.input]
    for output in model.graph.output:
        output.name = renames.get(output.name, output.name)


def check_parity(reference: dict[str, np.ndarray], produced: dict[str, np.ndarray], atol: float = PARITY_ATOL) -> dict:
    """Largest absolute difference per output; raises :class:`ConversionError` beyond ``atol * max(1, max|ref|)``."""
    report = {}
    for name, expected in reference.items():
        if name not in produced:
            raise ConversionError(f"ONNX model lacks output {name!r}")
        got = np.asarray(produced[name])
        if got.shape != expected.shape:
            raise ConversionError(f"{name}: ONNX shape {got.shape}, TensorFlow {expected.shape}")
        difference = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
        limit = atol * max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
        if not np.isfinite(difference) or difference > limit:
            raise ConversionError(f"{name}: ONNX differs from TensorFlow by {difference:.3g} (limit {limit:.3g})")
        report[name] = difference
    return report


def export_variant(encoder, head, config: WCBnetConfig, path: str | os.PathLike,
                   check_inputs: Sequence[np.ndarray] | None = None, atol: float = PARITY_ATOL) -> dict:
    """Convert one variant to ``path`` and verify it.

    Args:
        encoder: Keras model ``[B, H, W, C] -> F_c``; head: ``F_c -> logit [B, 1]``.
        config: the contract written into the file's metadata.
        check_inputs: ``float32 [1, H, W, C]`` tensors for the parity check (two random
            ones are added, so the check never runs on nothing).

    Returns:
        ``{"path", "sha256", "bytes", "parity": {output: max abs difference}}``.
    """
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    from wsloc_runtime.wcbnet import WCBnetModel

    height, width = config.input_size
    channels = config.input_channels
    if tuple(encoder.input.shape[1:]) != (height, width, channels):
        raise ConversionError(f"encoder input {encoder.input.shape} does not match the config's "
                              f"{(height, width, channels)} (input_size, input_features)")
    names = config.output_names
    serve = serving_function(encoder, head, config.input_size, channels)
    spec = (tf.TensorSpec([1, height, width, channels], tf.float32, name=config.input_name),)
    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)

    rng = np.random.default_rng(0)
    inputs = [np.asarray(x, np.float32) for x in (check_inputs or [])]
    inputs += [rng.normal(0, 0.5, (1, height, width, channels)).astype(np.float32) for _ in range(2)]
    for x in inputs:
        if x.shape != (1, height, width, channels):
            raise ConversionError(f"parity input has shape {x.shape}, expected {(1, height, width, channels)}")
    references = [{k: v.numpy().astype(np.float64) for k, v in serve(tf.constant(x)).items()} for x in inputs]

    session = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    if len(input_names) != 1:
        raise ConversionError(f"expected one graph input, got {input_names}")
    first = dict(zip([o.name for o in session.get_outputs()], session.run(None, {input_names[0]: inputs[0]})))
    contract = {names[k]: references[0][k] for k in ("logit", "features", "gradient")}
    _rename_outputs(model_proto, contract, first)
    model_proto.graph.input[0].name, old_input = config.input_name, input_names[0]
    for node in model_proto.graph.node:
        node.input[:] = [config.input_name if n == old_input else n for n in node.input]
    replace_metadata(model_proto, {METADATA_KEY: config.to_json()})
    model_proto.producer_name = "wsloc export.convert"
    target = write_atomic(path, checked_bytes(model_proto, config.name, ConversionError))

    runtime = WCBnetModel(target, providers=["CPUExecutionProvider"])
    if runtime.config != config:
        raise ConversionError(f"{target}: metadata reads back as {runtime.config}, wrote {config}")
    parity: dict[str, float] = {}
    for x, reference in zip(inputs, references):
        out = runtime.forward(x)
        produced = {"logit": np.array([[out.logit]]), "features": out.features[None], "gradient": out.gradient[None]}
        for name, difference in check_parity(reference, produced, atol).items():
            parity[name] = max(parity.get(name, 0.0), difference)
    return {"path": str(target), "sha256": sha256_of(target), "bytes": target.stat().st_size, "parity": parity}


def write_checksums(folder: Path, files: Sequence[Path]) -> Path:
    """``SHA256SUMS`` in ``sha256sum`` format for ``files`` (names relative to ``folder``); the lines
    of other files still in ``folder`` (``fingerprint.onnx``) are kept."""
    path = folder / "SHA256SUMS"
    names = {p.name for p in files}
    kept = {line.split()[-1].lstrip("*"): line for line in (path.read_text().splitlines() if path.is_file() else [])
            if len(line.split()) == 2 and line.split()[-1].lstrip("*") not in names
            and (folder / line.split()[-1].lstrip("*")).is_file()}
    lines = {**kept, **{p.name: f"{sha256_of(p)}  {p.name}" for p in files}}
    path.write_text("".join(lines[name] + "\n" for name in sorted(lines)))
    return path


def sample_inputs(run: dict, count: int = 2) -> list[np.ndarray]:
    """A few real validation inputs (scaled) for the parity check, when the run's cache exists."""
    from export.runs import input_features, sel_cache_path
    from wsloc_runtime.inputs import scale_input

    cache = sel_cache_path(run.get("labels_set_dir") or run.get("synth_dir", ""), "val", run)
    if not cache.is_file():
        return []
    with np.load(cache) as data:
        sel = data["sel"][:count]
    # Scaled as training.data.iterate_batches scales an evaluation batch (same function, same order).
    return [scale_input(raw, input_features(run), run["sel_scaling"], run["sel_scale"], run["sel_clip"])[None]
            for raw in sel]


def convert_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, weights: str = "best",
                variants: Sequence[int] | None = None, model_version: str | None = None,
                training_data: str | None = None, verdict_band: Sequence[float] | None = None) -> list[dict]:
    """Convert every variant of a training run (see :mod:`training.train`).

    ``verdict_band``: ``(low, high)`` probabilities of the verdict's "uncertain" band (see
    :class:`wsloc_runtime.config.WCBnetConfig`); chosen on development sets (model card).
    """
    from export.runs import build_from_run, input_features

    run_path = Path(run_dir)
    run = json.loads((run_path / "run.json").read_text())
    weights_path = run_path / f"{weights}.weights.h5"
    if not weights_path.is_file():
        raise FileNotFoundError(f"no {weights_path}; train first (python -m training.train)")
    # The joint model owns every layer; each variant's encoder and head share them.
    joint, parts = build_from_run(run)
    joint.load_weights(weights_path)
    state = json.loads((run_path / "state.json").read_text()) if (run_path / "state.json").is_file() else {}
    version = model_version or f"{run['preset']}-{run['backbone']}-{run['input_size']}-e{state.get('best_epoch', state.get('epoch', '?'))}"
    if run.get("labels"):
        described = (f"real photos of {Path(run['labels']).name} (image-level labels), "
                     + ("re-saved with the other class's JPEG profiles (training.casia_set) "
                        if run.get("debias") else "as they are ")
                     + f"+ {run['labels_synth']} forgeries synthesized from its authentic photos"
                     + (f" + {run['weak_pairs']} synthesized forgeries ({', '.join(run['weak_kinds'])}) from its, "
                        "BSDS500's and Kodak's authentic photos, each with its host as an authentic twin, and "
                        "platform chains (resize 0.5-1.0, recompression) for both classes (training.weak_set)"
                        if run.get("weak_pairs") else "")
                     + (f" + synthesized BSDS500/Kodak images ({run['synth_ratio']} per real-set image)"
                        if run.get("synth_ratio") else ""))
    else:
        described = (f"synthesized splice/copy-move/authentic set from BSDS500 + Kodak (training.synth seed "
                     f"{run['synth_seed']}, {run['train_count']} training images)")
    data_text = training_data or (
        described + ", image-level labels only"
        + ("; joint training of variants 2/3/4 on one shared backbone" if run["joint"] else "")
    )
    out = Path(out_dir)
    reports = []
    check = sample_inputs(run)
    for scale in variants or run["cbam_scales"]:
        if scale not in parts:
            raise ValueError(f"run {run_dir} has no variant {scale}; it has {sorted(parts)}")
        config = WCBnetConfig(
            cbam_scale=scale, input_size=(run["input_size"], run["input_size"]),
            sel_jpeg_quality=run["sel_jpeg_quality"], sel_scaling=run["sel_scaling"], sel_scale=run["sel_scale"],
            sel_clip=run["sel_clip"], backbone=run["backbone"], feature_dim=run["feature_dim"],
            model_version=version, training_data=data_text, input_features=input_features(run),
            verdict_band=tuple(verdict_band) if verdict_band else (0.5, 0.5),
        )
        report = export_variant(parts[scale].encoder, parts[scale].head, config, out / f"{config.name}.onnx", check)
        print(json.dumps(report), flush=True)
        reports.append(report)
    write_checksums(out, sorted(out.glob("wcbnet*.onnx")))
    return reports


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert WCBnet variants of a training run to ONNX.")
    parser.add_argument("--run", default=str(REPO_ROOT / "runs" / "cpu"))
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--out", default=str(REPO_ROOT / "assets" / "models"))
    parser.add_argument("--variants", type=int, nargs="+")
    parser.add_argument("--model-version")
    parser.add_argument("--training-data")
    parser.add_argument("--verdict-band", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="probabilities bounding the 'uncertain' verdict (default: 0.5 0.5, no band)")
    args = parser.parse_args(argv)
    convert_run(args.run, args.out, args.weights, args.variants, args.model_version, args.training_data,
                args.verdict_band)


if __name__ == "__main__":
    main()
