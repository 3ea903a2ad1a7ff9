"""How far could any pixel-wise fusion of today's evidence maps go on one set? A diagnostic, never
a selection: a combiner is FITTED ON THE SET'S OWN REFERENCE MASKS (which the product never does)
and scored on the set's other photos, grouped by base photo so that no base photo is on both sides::

    python -m studies.fusion_ceiling --set nist16-dev              # logistic regression (numpy)
    python -m studies.fusion_ceiling --set nist16-dev --model gbm  # gradient boosting (scikit-learn)

If even a combiner fitted on the set cannot beat the shipped vote on unseen base photos, no
setting of the vote can: the set needs a new trace, not a new fusion (docs/fusion.md).

Features per pixel (from ``python -m studies.fusion_study cache``): each map's logit, the same
times its reliability, and the logit blurred at two scales (a pixel's surroundings).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from studies.fusion_study import CACHE, enhanced_of, load_set, score_maps, score_setting

MAPS = ("activation", "ev_noise", "ev_ela", "ev_jpeg", "ev_jpeg_grid", "ev_copy_move")
#: Blur of a logit map, in working-size pixels: a few cells, then about a tenth of the photo.
CONTEXT_SIGMAS = (8.0, 24.0)
#: Two photos whose 24x24 grey thumbnails correlate above this share a base photo (NIST16 edits
#: each base photo many times; CASIA splices share sources).
SAME_BASE_CORRELATION = 0.8
PIXELS_PER_PHOTO = 4000


def pixel_features(record: dict) -> np.ndarray:
    """``(h * w, F)`` ``float32`` features of a cached photo (see the module's docstring)."""
    columns = []
    for key in MAPS:
        values = np.clip(record[key].astype(np.float32), 0.01, 0.99)
        logit = np.log(values / (1.0 - values))
        reliability = float(record.get("rel_" + key[3:], 1.0)) if key.startswith("ev_") else 1.0
        columns += [logit, logit * reliability] + [cv2.GaussianBlur(logit, (0, 0), s) for s in CONTEXT_SIGMAS]
    return np.stack(columns, -1).reshape(-1, len(columns))


def base_photo_groups(records: list[dict]) -> np.ndarray:
    """One integer per photo; photos that look like the same base photo share it (union of
    thumbnail correlations above :data:`SAME_BASE_CORRELATION`)."""
    thumbs = []
    for record in records:
        grey = cv2.cvtColor(np.ascontiguousarray(record["image"]), cv2.COLOR_RGB2GRAY).astype(np.float32)
        thumb = cv2.resize(grey, (24, 24), interpolation=cv2.INTER_AREA).ravel()
        thumbs.append((thumb - thumb.mean()) / (thumb.std() + 1e-6))
    thumbs = np.array(thumbs)
    correlation = thumbs @ thumbs.T / thumbs.shape[1]
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(correlation > SAME_BASE_CORRELATION, 1))):
        parent[root(int(i))] = root(int(j))
    return np.array([root(i) for i in range(len(records))])


class LogisticCombiner:
    """L2-regularised logistic regression by Newton's method on standardised features."""

    def __init__(self, ridge: float = 1e-3, iterations: int = 25) -> None:
        self.ridge, self.iterations = ridge, iterations

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "LogisticCombiner":
        self.mean, self.scale = features.mean(0), features.std(0) + 1e-6
        x = np.c_[(features - self.mean) / self.scale, np.ones(len(features))].astype(np.float64)
        self.weights = np.zeros(x.shape[1])
        for _ in range(self.iterations):
            p = 1.0 / (1.0 + np.exp(-x @ self.weights))
            gradient = x.T @ (labels - p) - self.ridge * len(x) * self.weights
            hessian = (x * (p * (1 - p))[:, None]).T @ x + self.ridge * len(x) * np.eye(x.shape[1])
            self.weights += np.linalg.solve(hessian, gradient)
        return self

    def logit(self, features: np.ndarray) -> np.ndarray:
        return np.c_[(features - self.mean) / self.scale, np.ones(len(features))] @ self.weights


class BoostedCombiner:
    """scikit-learn's histogram gradient boosting (optional: ``pip install scikit-learn``)."""

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "BoostedCombiner":
        try:
            from sklearn.ensemble import HistGradientBoostingClassifier
        except ImportError as error:
            raise SystemExit("--model gbm needs scikit-learn: python -m pip install scikit-learn") from error
        self.model = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(features, labels)
        return self

    def logit(self, features: np.ndarray) -> np.ndarray:
        p = np.clip(self.model.predict_proba(features)[:, 1], 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))


COMBINERS = {"logistic": LogisticCombiner, "gbm": BoostedCombiner}


def ceiling(records: list[dict], model: str = "logistic", seed: int = 0) -> dict:
    """Two folds by base photo: fit on one, score the other, both ways.

    Returns pixel F1 at 0.5 / AUC averaged over the tampered photos (``score_maps``), of the
    combiner's posterior (its log-odds shifted so that the fitting fold's edited share sits at 0.5,
    as the shipped vote's 0.5 means "edited") and of that map through the region step; beside
    them the shipped vote's prior AUC and its F1 after the region step (``fused_auc``,
    ``fused_f1``), and the number of base-photo groups.
    """
    from wsloc_runtime.errors import UnknownNameError
    from wsloc_runtime.fusion import DEFAULT_EVIDENCE, DEFAULT_SETTINGS

    if model not in COMBINERS:
        raise UnknownNameError(f"unknown model {model!r}; choose one of: {', '.join(COMBINERS)}")
    records = [r for r in records if bool(r["tampered"])]
    rng = np.random.default_rng(seed)
    groups = base_photo_groups(records)
    unique = np.unique(groups)
    rng.shuffle(unique)
    first = set(unique[::2].tolist())
    folds = [[i for i, g in enumerate(groups) if g in first], [i for i, g in enumerate(groups) if g not in first]]
    scored, posteriors, enhanced = [], [], []
    for held_out, fitting in (folds, folds[::-1]):
        samples, labels = [], []
        for i in fitting:
            features, truth = pixel_features(records[i]), records[i]["truth"].reshape(-1)
            pick = rng.choice(len(truth), min(PIXELS_PER_PHOTO, len(truth)), replace=False)
            samples.append(features[pick])
            labels.append(truth[pick])
        labels = np.concatenate(labels).astype(np.float64)
        combiner = COMBINERS[model]().fit(np.concatenate(samples), labels)
        share = float(np.clip(labels.mean(), 1e-3, 1 - 1e-3))
        for i in held_out:
            record = records[i]
            log_odds = combiner.logit(pixel_features(record)) - np.log(share / (1 - share))
            posterior = (1.0 / (1.0 + np.exp(-log_odds))).reshape(record["truth"].shape).astype(np.float32)
            scored.append(record)
            posteriors.append(posterior)
            enhanced.append(enhanced_of(record, posterior))
    learned, through_regions = score_maps(scored, posteriors), score_maps(scored, enhanced)
    evidence = list(DEFAULT_EVIDENCE)
    vote_prior = score_setting(records, DEFAULT_SETTINGS, evidence)
    vote_regions = score_setting(records, DEFAULT_SETTINGS, evidence, enhance=True)
    return {"auc": learned["auc"], "f1": learned["f1"], "f1_region": through_regions["f1"],
            "fused_auc": vote_prior["auc"], "fused_f1": vote_regions["f1"],
            "groups": int(unique.size), "photos": len(records)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", required=True, help="a cached set, e.g. nist16-dev")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--model", default="logistic", choices=sorted(COMBINERS))
    args = parser.parse_args(argv)
    records = load_set(args.set, args.cache)
    if not records:
        print(f"{args.set}: nothing cached in {args.cache / args.set} (run studies.fusion_study cache)",
              file=sys.stderr)
        return 1
    print(args.set, args.model, ceiling(records, args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
