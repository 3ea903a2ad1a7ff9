"""Convert WCBnet ONNX files to float16 weights and activations, for the CUDA provider.

    python -m export.fp16 assets/models/wcbnet2.onnx ... --out-dir assets/models/fp16

Inputs and outputs stay float32 (``keep_io_types``), so a converted file honours the
same contract (``wsloc.config`` metadata, tensor names, shapes) and the runtime loads it
unchanged: ``--models assets/models/fp16``. The ``wsloc.config`` metadata gets
``model_version`` suffixed with ``+fp16`` so reports say which file ran.

float16 is for GPUs: onnxruntime's CPU provider has few float16 kernels and either
refuses the file or runs it slower than float32. Speed and accuracy on a GPU are
recorded in docs/performance.md once measured (not yet: no GPU was available).
Needs ``pip install onnxconverter-common``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from export.onnx_files import replace_metadata
from wsloc_runtime.config import METADATA_KEY

#: float16 has ~3 significant digits; outputs are compared relative to their own scale.
PARITY_TOLERANCE = 2e-2


def convert(source: Path, target: Path) -> Path:
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(source))
    metadata = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{source}: no {METADATA_KEY} metadata; is it a WCBnet export?")
    _separate_outputs(model)
    for index, node in enumerate(model.graph.node):
        if not node.name:  # the converter tracks nodes by name; unnamed ones end up with mixed types
            node.name = f"{node.op_type}_{index}"
    # Resize/Upsample stay float32 (onnxconverter-common's default block list): their float16
    # CUDA kernels are missing in some onnxruntime builds.
    converted = float16.convert_float_to_float16(model, keep_io_types=True)
    config = json.loads(metadata[METADATA_KEY])
    config["model_version"] = f"{config.get('model_version', 'unknown')}+fp16"
    replace_metadata(converted, {**metadata, METADATA_KEY: json.dumps(config, sort_keys=True)})
    onnx.checker.check_model(converted)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(target))
    check_parity(source, target)
    return target


def check_parity(reference: Path, converted: Path, seed: int = 0) -> dict[str, float]:
    """Run both files on the same SEL-like input; raise if any output differs by more than
    ``PARITY_TOLERANCE`` of that output's largest magnitude. Returns the relative differences."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (reference, converted)]
    feed_info = sessions[0].get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in feed_info.shape]
    feed = {feed_info.name: np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)}
    names = [o.name for o in sessions[0].get_outputs()]
    expected, actual = (s.run(names, feed) for s in sessions)
    differences = {}
    for name, a, b in zip(names, expected, actual):
        scale = max(float(np.abs(a).max()), 1e-6)
        differences[name] = float(np.abs(a - b.astype(np.float32)).max()) / scale
        if differences[name] > PARITY_TOLERANCE:
            raise ValueError(
                f"{converted.name}: float16 output {name!r} differs by {differences[name]:.2e} of its scale "
                f"(tolerance {PARITY_TOLERANCE:.0e})"
            )
    return differences


def _separate_outputs(model) -> None:
    """Give every graph output its own Identity node.

    With ``keep_io_types`` the converter casts outputs back to float32 under their own names;
    an output that other nodes also consume (F_c feeds the head) would then reach them as
    float32 next to float16 operands, and onnxruntime rejects the graph.
    """
    from onnx import helper

    consumed = {name for node in model.graph.node for name in node.input}
    for output in model.graph.output:
        if output.name not in consumed:
            continue
        internal = f"{output.name}__internal"
        for node in model.graph.node:
            node.output[:] = [internal if o == output.name else o for o in node.output]
            node.input[:] = [internal if i == output.name else i for i in node.input]
        model.graph.node.append(helper.make_node("Identity", [internal], [output.name], name=f"{output.name}_out"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="float32 -> float16 WCBnet ONNX (float32 inputs/outputs kept)")
    parser.add_argument("models", nargs="+", type=Path, help="wcbnet*.onnx files")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    for source in args.models:
        target = convert(source, args.out_dir / source.name)
        print(f"{source} ({source.stat().st_size / 1e6:.1f} MB) -> {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
