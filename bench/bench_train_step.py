"""Training throughput of a WCBnet preset on the current Keras backend (images per second).

Builds the joint model exactly as ``training/train.py`` does (``build_from_run`` and
``compile_for_training``), feeds random SEL-like batches (the cost does not depend on
the values) and times ``train_on_batch`` after a warm-up that absorbs compilation. Pick
the backend with ``KERAS_BACKEND`` (tensorflow, torch, jax); run once per backend to
choose one for ``training/train_gpu.sh``::

    KERAS_BACKEND=torch python -m bench.bench_train_step --preset gpu --batches 64 256
    KERAS_BACKEND=jax   python -m bench.bench_train_step --preset gpu --batches 64 256
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.common import machine, stats_ms, table, write_result


def accelerator() -> str:
    """The device Keras' backend computes on, in words."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if backend == "jax":
        import jax

        return str(jax.devices()[0])
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else "cpu"


def measure(preset: str, batch: int, steps: int, warmup: int, overrides: dict | None = None) -> dict:
    import keras

    from training.train import PRESETS, build_from_run, compile_for_training, feature_channels, input_features, make_optimizer

    # build_from_run fills dropout, tiny widths and (no) ImageNet weights as train.py's runs do;
    # the paper preset trains one variant per run.
    run = {**PRESETS[preset], **(overrides or {})}
    run["cbam_scales"] = [2, 3, 4] if run["joint"] else [4]
    keras.utils.set_random_seed(0)
    joint, _ = build_from_run(run)
    n_outputs = compile_for_training(joint, make_optimizer(run["optimizer"], run["lr"], 10_000, constant=True))
    rng = np.random.default_rng(0)
    size = run["input_size"]
    x = rng.normal(size=(batch, size, size, feature_channels(input_features(run)))).astype(np.float32)
    y = (rng.random((batch, 1)) < 0.5).astype(np.float32)
    targets = [y] * n_outputs if n_outputs > 1 else y
    started = time.perf_counter()
    for _ in range(warmup):
        joint.train_on_batch(x, targets)
    warmup_seconds = time.perf_counter() - started
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(joint.train_on_batch(x, targets, return_dict=True)["loss"])  # float() waits for the device
        times.append(time.perf_counter() - start)
    step = stats_ms(times)
    return {"preset": preset, **(overrides or {}), "batch": batch, "warmup_steps": warmup,
            "warmup_seconds": round(warmup_seconds, 2), **step,
            "images_per_second": round(batch / (step["median_ms"] / 1000.0), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="gpu", choices=["cpu", "gpu", "paper"])
    parser.add_argument("--batches", type=int, nargs="+", default=[64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/train_step_<backend>.json)")
    parser.add_argument("--backbone", help="override the preset's backbone")
    parser.add_argument("--input-size", type=int, help="override the preset's input size")
    parser.add_argument("--head", choices=["gap", "lse"], help="override the head")
    parser.add_argument("--input-features", nargs="+", help="input channels by name (default: the preset's, SEL)")
    parser.add_argument("--separate", action="store_true", help="one variant per model, as the paper trains them")
    args = parser.parse_args()
    import keras

    backend = keras.backend.backend()
    overrides = {k: v for k, v in {"backbone": args.backbone, "input_size": args.input_size, "head": args.head,
                                   "input_features": args.input_features}.items() if v is not None}
    if args.separate:
        overrides["joint"] = False
    rows = [measure(args.preset, batch, args.steps, args.warmup, overrides) for batch in args.batches]
    payload = {"backend": backend, "keras": keras.__version__, "device": accelerator(), "machine": machine(),
               "results": rows}
    path = write_result(f"train_step_{backend}", payload, args.out)
    print(f"backend {backend} on {payload['device']}")
    print(table(["preset", "batch", "median ms/step", "images/s", "warm-up s"],
                [[r["preset"], r["batch"], r["median_ms"], r["images_per_second"], r["warmup_seconds"]] for r in rows]))
    print(path)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
