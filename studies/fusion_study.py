"""Choose the fusion's settings from cached evidence on the visible development sets.

Step 1, ``cache``: run the default pipeline once per photo of each pairs file and keep, at the
working size, what the fusion reads: the models' activation A and probability, the paper's
enhanced map, the raw pooled double-quantization ratio, every model-free evidence map with its
reliability and strength, and the reference mask::

    python -m studies.fusion_study cache --sets casia1-dev casia1-dev-swap casia2-samples noso nist16-dev

Step 2, ``score``: score a fusion setting on every cached set in seconds (maps at the working
size, so the numbers are close to, not equal to, ``wsloc evaluate``'s at the mask's size; the
shipped numbers always come from ``wsloc evaluate``).

The selection rule is declared in ``docs/fusion.md`` before any candidate was scored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from wsloc_runtime.regions import REGION_CHOICES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_SETS = ("casia1-dev", "casia1-dev-swap", "casia2-samples", "noso", "nist16-dev")
CACHE = Path("runs/fusion_cache")


def _model_free_evidence() -> list[str]:
    from wsloc_runtime.evidence import create_evidence, evidence_names

    return [n for n in evidence_names() if not create_evidence(n).needs_models]


def cache_set(name: str, data: Path, out: Path, localizer, evidence: list[str], limit: int = 0,
              refresh: bool = False) -> None:
    from tqdm import tqdm

    from wsloc_runtime.errors import WslocError
    from wsloc_runtime.evaluate import read_mask, read_pairs
    from wsloc_runtime.evidence import EvidenceInputs, create_evidence
    from wsloc_runtime.imageio import load_image
    from wsloc_runtime.jpeg_traces import block_map_to_size, jpeg_traces, pooled_double_quantization

    pairs = read_pairs(data / f"{name}.csv")[: limit or None]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    evidences = {n: create_evidence(n) for n in evidence}
    for pair in tqdm(pairs, desc=name, file=sys.stderr):
        target = folder / (pair.image.stem + ".npz")
        if target.exists():
            existing = dict(np.load(target, allow_pickle=False))
            missing = list(evidence) if refresh else [n for n in evidence if f"ev_{n}" not in existing]
            if not missing and (localizer is None or "model_probability" in existing):
                continue
        elif localizer is None:  # --no-models adds to cached photos only: the rest has no activation
            continue
        else:
            existing, missing = {}, list(evidence)
        try:
            rgb = load_image(pair.image)
        except WslocError as error:  # the sets hold a few non-images (noso's readme.txt)
            print(f"skipped {error}", file=sys.stderr)
            continue
        if localizer is not None and "activation" in existing and "model_probability" not in existing:
            existing["model_probability"] = np.float32(localizer.classify(rgb))
        truth = read_mask(pair.mask) if pair.mask else np.zeros(rgb.shape[:2], bool)
        if truth.shape != rgb.shape[:2]:
            continue
        record = dict(existing)
        run_models = localizer is not None and "activation" not in record
        # One analysis of the JPEG grid for the cached ratio and every evidence that reads it.
        traces = (jpeg_traces(rgb) if run_models or any(evidences[n].reads_jpeg_traces for n in missing)
                  else None)
        if run_models:
            result = localizer.localize(rgb)
            size = result.working_size
            record.update(activation=result.activation.astype(np.float16),
                          paper_enhanced=result.enhanced.astype(np.float16),
                          model_probability=np.float32(result.model_probability),
                          image=result.image,
                          regions=np.packbits(result.regions.masks, axis=None),
                          regions_shape=np.array(result.regions.masks.shape, np.int32))
            record["pooled_dq"] = block_map_to_size(pooled_double_quantization(traces), traces.offset,
                                                    rgb.shape[:2], size).astype(np.float16)
            record["jpeg_has_grid"] = np.bool_(traces.has_grid)
            record["jpeg_double"] = np.int32(sum(1 for s in traces.first_steps if s))
        image = record["image"]
        size = image.shape[:2]
        record["truth"] = cv2.resize(truth.astype(np.uint8), size[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
        record["tampered"] = np.bool_(truth.any())
        inputs = EvidenceInputs(image=image, full=rgb, jpeg=traces)
        for n in missing:
            reading = evidences[n].compute(inputs)
            record[f"ev_{n}"] = reading.map.astype(np.float16)
            record[f"rel_{n}"] = np.float32(reading.reliability)
            record[f"str_{n}"] = np.float32(reading.strength)
        np.savez_compressed(target, **record)


def load_regions(record) -> np.ndarray:
    """The cached segmenter regions, ``bool`` ``(N, h, w)``."""
    shape = tuple(int(v) for v in record["regions_shape"])
    return np.unpackbits(record["regions"], count=int(np.prod(shape))).reshape(shape).astype(bool)


def load_set(name: str, cache: Path = CACHE) -> list[dict]:
    """Every cached photo of a set, as dicts of arrays (maps as float32)."""
    records = []
    for path in sorted((cache / name).glob("*.npz")):
        with np.load(path, allow_pickle=False) as stored:
            record = {k: stored[k] for k in stored.files}
        for key, value in record.items():
            if value.dtype == np.float16:
                record[key] = value.astype(np.float32)
        record["path"] = path
        records.append(record)
    return records


def readings_of(record: dict, evidence: list[str]):
    """The cached photo's evidence readings, as the pipeline would have them."""
    from wsloc_runtime.evidence import EvidenceMap

    readings = []
    for name in evidence:
        if name == "activation":
            readings.append(EvidenceMap("activation", record["activation"], 1.0, "",
                                        float(record["model_probability"])))
        elif f"ev_{name}" in record:
            readings.append(EvidenceMap(name, record[f"ev_{name}"], float(record[f"rel_{name}"]), "",
                                        float(record[f"str_{name}"])))
    return readings


def score_maps(records: list[dict], maps: list[np.ndarray]) -> dict:
    """Pixel F1 at 0.5 and AUC (tampered photos), averaged over photos."""
    from wsloc_runtime.metrics import f1_iou_at, nanmean, roc_auc

    f1s, aucs = [], []
    for record, values in zip(records, maps):
        if not bool(record["tampered"]):
            continue
        truth = record["truth"]
        f1s.append(f1_iou_at(values, truth, 0.5)[0])
        aucs.append(roc_auc(values, truth))
    return {"f1": round(float(nanmean(f1s)), 4), "auc": round(float(nanmean(aucs)), 4), "n": len(f1s)}


def enhanced_of(record: dict, prior: np.ndarray, region_choice: str = "similarity") -> np.ndarray:
    """The region choice (the paper's S by default) and Bayes update on ``prior`` with the cached
    regions."""
    from wsloc_runtime.regions import Regions, bayesian_enhancement, select_region

    regions = Regions(load_regions(record))
    index, _, _ = select_region(regions, prior, region_choice)
    return bayesian_enhancement(prior, regions.masks[index]) if index >= 0 else prior


def score_setting(records: list[dict], settings, evidence: list[str], enhance: bool = False) -> dict:
    """The runtime's fusion (``wsloc_runtime.fusion.fuse``) with ``settings`` on cached photos."""
    from wsloc_runtime.fusion import fuse

    tampered = [r for r in records if bool(r["tampered"])]
    maps = [fuse(readings_of(r, evidence), float(r["model_probability"]), settings).prior for r in tampered]
    if enhance:
        maps = [enhanced_of(r, m, settings.region_choice) for r, m in zip(tampered, maps)]
    return score_maps(tampered, maps)


def score_singles(records: list[dict], evidence: list[str]) -> dict[str, dict]:
    """The rule's references: the paper's enhanced map and each single evidence map."""
    tampered = [r for r in records if bool(r["tampered"])]
    singles = {"paper": score_maps(tampered, [enhanced_of(r, r["activation"]) for r in tampered])}
    for name in evidence:
        key = "activation" if name == "activation" else f"ev_{name}"
        if tampered and key in tampered[0]:
            singles[name] = score_maps(tampered, [r[key] for r in tampered])
    return singles


def rule_summary(fused: dict[str, dict], singles: dict[str, dict[str, dict]]) -> dict:
    """docs/fusion.md's rule: the worst shortfall against the best single map of each set (over
    F1 and AUC), then the mean F1 and mean AUC over the sets."""
    shortfall = min(min(fused[s]["f1"] - max(v["f1"] for v in singles[s].values()),
                        fused[s]["auc"] - max(v["auc"] for v in singles[s].values())) for s in fused)
    return {"worst_shortfall": round(shortfall, 4),
            "mean_f1": round(float(np.mean([v["f1"] for v in fused.values()])), 4),
            "mean_auc": round(float(np.mean([v["auc"] for v in fused.values()])), 4)}


def versus_default(fused: dict[str, dict], default: dict[str, dict]) -> dict:
    """The eleventh study's rule: the worst drop of a candidate against today's default over the sets
    and both scores (negative: a drop), with both settings' per-set scores and means."""
    drop = min(min(fused[s]["f1"] - default[s]["f1"], fused[s]["auc"] - default[s]["auc"]) for s in fused)
    return {"worst_drop_vs_default": round(drop, 4),
            "per_set": {s: {"candidate": (fused[s]["f1"], fused[s]["auc"]), "default": (default[s]["f1"], default[s]["auc"])}
                        for s in fused},
            "default_mean_f1": round(float(np.mean([v["f1"] for v in default.values()])), 4),
            "default_mean_auc": round(float(np.mean([v["auc"] for v in default.values()])), 4)}


def singles_table(fused: dict[str, dict], singles: dict[str, dict[str, dict]]) -> str:
    """Markdown: one row per map (the fused prior, the paper's enhanced map, each single evidence),
    one column per set, ``AUC / F1`` in each cell."""
    sets = list(fused)
    names = ["fused"] + [n for n in singles[sets[0]]]
    lines = ["| map | " + " | ".join(sets) + " |", "| --- |" + " --- |" * len(sets)]
    for name in names:
        cells = []
        for s in sets:
            score = fused[s] if name == "fused" else singles[s].get(name)
            cells.append(f"{score['auc']:.3f} / {score['f1']:.3f}" if score else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _settings_from(args):
    from dataclasses import replace

    from wsloc_runtime.fusion import DEFAULT_SETTINGS

    gains = dict(DEFAULT_SETTINGS.map_gain)
    for item in args.map_gain:
        name, _, value = item.partition("=")
        gains[name] = float(value)
    changes = {"map_gain": gains}
    if args.override_gain is not None:
        changes["override_gain"] = args.override_gain
    if args.yield_to_specific is not None:
        changes["yield_to_specific"] = args.yield_to_specific
    if args.base_rate is not None:
        changes["base_rate"] = args.base_rate
    if args.override_by is not None:
        changes["override_by"] = tuple(args.override_by)
    if args.region_choice is not None:
        changes["region_choice"] = args.region_choice
    return replace(DEFAULT_SETTINGS, **changes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    cache = commands.add_parser("cache")
    cache.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    cache.add_argument("--data", type=Path, default=DATA)
    cache.add_argument("--out", type=Path, default=CACHE)
    cache.add_argument("--models", default=None)
    cache.add_argument("--evidence", nargs="*", default=None, help="model-free evidence (default: all registered)")
    cache.add_argument("--no-models", action="store_true", help="only add model-free evidence to existing entries")
    cache.add_argument("--limit", type=int, default=0)
    cache.add_argument("--refresh", action="store_true",
                       help="recompute the named evidences even where cached (after an evidence changed)")
    score = commands.add_parser("score", help="the default fusion setting, or one changed by the options")
    score.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    score.add_argument("--cache", type=Path, default=CACHE)
    score.add_argument("--map-gain", nargs="*", default=[], metavar="NAME=GAIN")
    score.add_argument("--override-gain", type=float, default=None)
    score.add_argument("--yield-to-specific", type=float, default=None)
    score.add_argument("--base-rate", type=float, default=None, help="prior P(edited) of a pixel in the vote")
    score.add_argument("--override-by", nargs="+", default=None, metavar="NAME",
                       help="the specific traces that may take the prior over (default: the runtime's)")
    score.add_argument("--region-choice", default=None, choices=sorted(REGION_CHOICES),
                       help="the region step's choice in evidence mode (default: the runtime's; with --enhance)")
    score.add_argument("--singles", action="store_true",
                       help="also print every single map's scores per set, as a markdown table")
    score.add_argument("--enhance", action="store_true", help="score after the region step and Bayes update")
    score.add_argument("--versus-default", action="store_true",
                       help="also score today's default setting and print the worst drop against it (the eleventh study's rule)")
    score.add_argument("--with-evidence", nargs="*", default=[], metavar="NAME",
                       help="cached evidence to read beside the default ones (e.g. fingerprint; give it a --map-gain)")
    args = parser.parse_args(argv)
    if args.command == "score":
        from wsloc_runtime.fusion import DEFAULT_EVIDENCE

        settings = _settings_from(args)
        evidence = list(DEFAULT_EVIDENCE) + [n for n in args.with_evidence if n not in DEFAULT_EVIDENCE]
        fused, singles = {}, {}
        for name in args.sets:
            records = load_set(name, args.cache)
            if not records:
                print(f"{name}: nothing cached in {args.cache / name} (run the cache step)", file=sys.stderr)
                return 1
            fused[name] = score_setting(records, settings, evidence, args.enhance)
            singles[name] = score_singles(records, evidence)
            best_f1 = max(singles[name].items(), key=lambda item: item[1]["f1"])
            best_auc = max(singles[name].items(), key=lambda item: item[1]["auc"])
            print(f"{name}: fused F1 {fused[name]['f1']:.3f} AUC {fused[name]['auc']:.3f} (n={fused[name]['n']}); "
                  f"best single F1 {best_f1[0]} {best_f1[1]['f1']:.3f}, AUC {best_auc[0]} {best_auc[1]['auc']:.3f}")
        print(rule_summary(fused, singles))
        if args.versus_default:
            from wsloc_runtime.fusion import FusionSettings

            default = {name: score_setting(load_set(name, args.cache), FusionSettings(), list(DEFAULT_EVIDENCE),
                                           args.enhance) for name in args.sets}
            print(versus_default(fused, default))
        if args.singles:
            print(singles_table(fused, singles))
        return 0
    if args.command == "cache":
        localizer = None
        if not args.no_models:
            from wsloc_runtime.pipeline import Localizer

            # The paper's pipeline: the activation, the models' probability and the regions are
            # what the fusion reads; every evidence is cached on its own.
            localizer = Localizer(models_dir=args.models, fusion="paper")
        evidence = args.evidence if args.evidence is not None else _model_free_evidence()
        for name in args.sets:
            cache_set(name, args.data, args.out, localizer, evidence, args.limit, args.refresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
