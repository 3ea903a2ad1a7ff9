"""How the SEL and trace channels of a trained efficientnetlite0 run's stem compare (a diagnostic).

``python -m studies.stem_report --run runs/E1_e1`` writes ``RUN/stem_report.json`` and prints it
(TensorFlow process). Moved here from ``export.efficientnet_lite`` (its ``stem-report`` command)
so that the backbone module does not import the trainer's data code.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np


def stem_report(run_dir: str | os.PathLike, weights: str = "best", batches: int = 2) -> dict:
    """How the SEL and trace channels of a trained efficientnetlite0 run's stem compare.

    Per input channel: the L2 norm of the stem kernel slice at the ImageNet start and after
    training, and, at the start, the norm of the loss gradient on that slice over ``batches``
    validation batches (a zero-initialised slice still gets a gradient: x_trace * dL/d(stem)).
    """
    import keras
    import tensorflow as tf

    from export.efficientnet_lite import _all_layers
    from export.runs import build_from_run, input_features, sel_cache_path
    from training.data import iterate_batches

    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    joint, _ = build_from_run(run)  # ImageNet start (the run's imagenet_weights)

    def stem_kernel():
        return np.asarray([l for l in _all_layers(joint) if l.name == "stem_conv"][0].kernel.numpy())

    start = stem_kernel()
    cache = sel_cache_path(run["labels_set_dir"], "val", run)
    with np.load(cache) as data:
        sel, labels = data["sel"][: 16 * batches], data["labels"][: 16 * batches]
    scaling = (run["sel_scaling"], run["sel_scale"], run["sel_clip"])
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    stem = [l for l in _all_layers(joint) if l.name == "stem_conv"][0].kernel
    grads = np.zeros(start.shape[2])
    for x, y in iterate_batches(sel, labels, 16, scaling, features=input_features(run)):
        with tf.GradientTape() as tape:
            loss = sum(bce(y, z) for z in joint(x, training=False))
        g = tape.gradient(loss, stem).numpy()
        grads += np.sqrt((g**2).sum(axis=(0, 1, 3)))
    joint.load_weights(run_dir / f"{weights}.weights.h5")
    trained = stem_kernel()
    norm = lambda k: [round(float(np.sqrt((k[:, :, c] ** 2).sum())), 4) for c in range(k.shape[2])]  # noqa: E731
    return {"channels": ["sel_r", "sel_g", "sel_b", *input_features(run)[1:]][: start.shape[2]],
            "kernel_norm_start": norm(start), "kernel_norm_trained": norm(trained),
            "change_norm": norm(trained - start), "grad_norm_at_start": [round(float(v), 6) for v in grads]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a training run folder (training.train --out)")
    parser.add_argument("--weights", default="best")
    args = parser.parse_args(argv)
    report = stem_report(args.run, args.weights)
    (Path(args.run) / "stem_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
