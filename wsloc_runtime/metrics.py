"""Pixel- and image-level scores. Pure numpy; conventions follow IMDL-BenCo:
pixel scores are computed per tampered image, then averaged over images."""

from __future__ import annotations

import math

import numpy as np


def _check_pair(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    truth = np.asarray(truth).astype(bool).ravel()
    if scores.shape != truth.shape:
        raise ValueError(f"scores and ground truth differ in size: {scores.size} vs {truth.size}")
    return scores, truth


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores counted half).

    Returns ``nan`` when ``truth`` has only one class.
    """
    scores, truth = _check_pair(scores, truth)
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Average ranks of tied groups, 1-based.
    _, first_index, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    group_rank = first_index + (counts + 1) / 2.0
    ranks = np.empty(scores.size, np.float64)
    ranks[order] = np.repeat(group_rank, counts)
    rank_sum = ranks[truth].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def f1_iou_at(scores: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> tuple[float, float]:
    """F1 and IoU of ``scores >= threshold`` against ``truth``.

    An empty prediction of an empty truth is perfect agreement and scores 1.
    """
    scores, truth = _check_pair(scores, truth)
    predicted = scores >= threshold
    tp = float(np.count_nonzero(predicted & truth))
    fp = float(np.count_nonzero(predicted & ~truth))
    fn = float(np.count_nonzero(~predicted & truth))
    if tp + fp + fn == 0:
        return 1.0, 1.0
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)


def best_f1(scores: np.ndarray, truth: np.ndarray) -> float:
    """The highest F1 over every threshold (the 'best-threshold F1' of forensics papers)."""
    scores, truth = _check_pair(scores, truth)
    positives = float(truth.sum())
    if positives == 0:
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    true_positives = np.cumsum(truth[order], dtype=np.float64)
    predicted = np.arange(1, scores.size + 1, dtype=np.float64)
    # Only thresholds between distinct scores are realisable: take the last index of each tie group.
    last_of_group = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp = true_positives[last_of_group]
    f1 = 2 * tp / (predicted[last_of_group] + positives)
    return float(f1.max())


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    scores, labels = _check_pair(scores, labels)
    if scores.size == 0:
        return math.nan
    return float(np.mean((scores >= threshold) == labels))


def nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan
