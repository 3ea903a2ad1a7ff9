"""Regions, their similarity to an activation map, and the Bayesian enhancement.

Pure numpy/OpenCV functions, testable without any model.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import UnknownNameError


class Regions:
    """Candidate regions of one image.

    Attributes:
        masks: ``bool`` array ``(N, H, W)``; masks may overlap (SAM) or partition the image.
            Regions made from label maps (:meth:`from_label_maps`) build it on first use only:
            the pipeline reads each region through :meth:`mask` and :meth:`crop` instead, which
            spares writing N full-size masks (about 90 MB and 80 ms for the graph segmenter's
            regions of a 1024 px working copy).
        source: name of the segmenter that produced them.
        boxes: each mask's tight bounding box ``(top, bottom, left, right)``, ``(N, 4)``, when the
            maker knew them (:meth:`from_labels` does); ``None`` lets the scores find them. Set it
            only for masks that are not changed afterwards.
    """

    def __init__(self, masks: np.ndarray | None = None, source: str = "", boxes: np.ndarray | None = None, *,
                 label_maps: list[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.source = source
        # Each label map with the label of each of its regions, in region order.
        self._label_maps = label_maps
        if masks is None:
            if label_maps is None:
                raise ValueError("Regions needs masks or label maps")
            self._masks = None
            self._count = sum(len(values) for _, values in label_maps)
            self._shape = tuple(int(n) for n in label_maps[0][0].shape) if label_maps else (0, 0)
        else:
            masks = np.asarray(masks)
            if masks.ndim != 3:
                raise ValueError(f"Regions.masks must be (N, H, W), got shape {masks.shape}")
            self._masks = masks.astype(bool, copy=False)
            self._count, self._shape = int(masks.shape[0]), (int(masks.shape[1]), int(masks.shape[2]))
        if boxes is not None and np.shape(boxes) != (self._count, 4):
            raise ValueError(f"Regions.boxes must be ({self._count}, 4), got shape {np.shape(boxes)}")
        self.boxes = boxes

    @property
    def masks(self) -> np.ndarray:
        if self._masks is None:
            masks = np.empty((self._count, *self._shape), bool)
            offset = 0
            for labels, values in self._label_maps:
                np.equal(labels[None, :, :], values[:, None, None], out=masks[offset : offset + len(values)])
                offset += len(values)
            self._masks = masks
        return self._masks

    def _label_of(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < self._count:
            raise IndexError(f"region {index} of {self._count}")
        for labels, values in self._label_maps:
            if index < len(values):
                return labels, values[index]
            index -= len(values)
        raise IndexError(index)  # not reached: the counts add up to self._count

    def mask(self, index: int) -> np.ndarray:
        """Region ``index`` as an ``(H, W)`` bool mask."""
        if self._masks is not None:
            return self._masks[index]
        labels, value = self._label_of(index)
        return labels == value

    def crop(self, index: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        """``mask(index)[top:bottom, left:right]``, without building the whole mask."""
        if self._masks is not None:
            return self._masks[index, top:bottom, left:right]
        labels, value = self._label_of(index)
        return labels[top:bottom, left:right] == value

    @classmethod
    def from_labels(cls, labels: np.ndarray, source: str = "", min_area: int = 1) -> "Regions":
        """One region per distinct label of an ``(H, W)`` integer map; negative labels are ignored."""
        return cls.from_label_maps([labels], source, min_area)

    @classmethod
    def from_label_maps(cls, label_maps, source: str = "", min_area: int = 1) -> "Regions":
        """The regions of several ``(H, W)`` label maps of one image, in order (each as
        :meth:`from_labels`: one per distinct label, ascending, negative labels ignored), with their
        bounding boxes.

        The masks are not written (see :attr:`masks`); the boxes come from one count per map of
        (label, row) and (label, column) pairs.
        """
        label_maps = [np.asarray(labels) for labels in label_maps]
        shape = label_maps[0].shape
        if any(labels.shape != shape for labels in label_maps):
            raise ValueError("label maps of one image must share its shape")
        kept = [_kept_labels(labels, min_area) for labels in label_maps]
        boxes = np.zeros((sum(len(values) for values in kept), 4), np.int64)
        height, width = shape
        offset = 0
        for labels, values in zip(label_maps, kept):
            count = len(values)
            if count == 0:
                continue
            # Region index of each pixel (count: not a kept label), then which rows and columns
            # each region reaches.
            low = min(0, int(labels.min()))
            lookup = np.full(int(max(values.max(), labels.max())) - low + 1, count, np.int64)
            lookup[values - low] = np.arange(count)
            index = lookup[labels - low]
            rows = np.zeros((count + 1, height), bool)
            rows[index, np.arange(height)[:, None]] = True
            columns = np.zeros((count + 1, width), bool)
            columns[index, np.arange(width)[None, :]] = True
            rows, columns = rows[:count], columns[:count]
            section = boxes[offset : offset + count]
            section[:, 0] = np.argmax(rows, axis=1)
            section[:, 1] = height - np.argmax(rows[:, ::-1], axis=1)
            section[:, 2] = np.argmax(columns, axis=1)
            section[:, 3] = width - np.argmax(columns[:, ::-1], axis=1)
            offset += count
        # In the labels' own type: comparing int32 labels with int64 values is twice as slow.
        return cls(None, source, boxes,
                   label_maps=[(labels, values.astype(labels.dtype)) for labels, values in zip(label_maps, kept)])

    def __len__(self) -> int:
        return self._count

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape


def _kept_labels(labels: np.ndarray, min_area: int) -> np.ndarray:
    """The labels of ``labels`` (ascending) that are not negative and cover at least ``min_area`` pixels."""
    if labels.size and np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0 and labels.max() < 4 * labels.size:
        counts = np.bincount(labels.ravel())  # linear time; np.unique sorts
        return np.flatnonzero(counts >= max(int(min_area), 1))
    values, counts = np.unique(labels, return_counts=True)
    return values[(values >= 0) & (counts >= min_area)].astype(np.int64)


def connected_regions(class_map: np.ndarray, min_area: int = 1, ignore: tuple[int, ...] = ()) -> np.ndarray:
    """Split a semantic ``(H, W)`` class map into a label map: one label per connected
    component of each class (8-connectivity). Components smaller than ``min_area`` pixels,
    and classes in ``ignore``, get label -1."""
    labels = np.full(class_map.shape, -1, np.int32)
    next_label = 0
    for value in np.unique(class_map):
        if int(value) in ignore:
            continue
        count, components, stats, _ = cv2.connectedComponentsWithStats(
            (class_map == value).astype(np.uint8), connectivity=8
        )
        for component in range(1, count):
            if stats[component, cv2.CC_STAT_AREA] >= min_area:
                labels[components == component] = next_label
                next_label += 1
    return labels


def inside_distance(mask: np.ndarray) -> np.ndarray:
    """D(M): each inside pixel's Euclidean distance to the region's boundary, 0 outside.

    The image border counts as boundary: a region that runs off the picture has an
    edge there too, and this keeps background-like regions from scoring as cores.
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def region_similarity(regions: Regions, activation: np.ndarray) -> np.ndarray:
    """S(M_i, A) = sum(D(M_i) * A) / sum(M_i) for every region.

    Work is done on each region's bounding box, so a partition of the image costs
    about one image-sized distance transform in total.

    Args:
        regions: N masks of shape ``(H, W)``.
        activation: ``(H, W)`` map in [0, 1].

    Returns:
        ``float64`` array of N scores (0 for an empty mask).
    """
    scores = np.zeros(len(regions), np.float64)
    for index, crop, values in _bounding_boxes(regions, activation):
        # Exact: the ring just outside a tight bounding box is all outside pixels, so no
        # nearer boundary exists beyond the crop.
        distance = inside_distance(crop)
        scores[index] = float((distance * values).sum(dtype=np.float64)) / float(crop.sum())
    return scores


def _bounding_boxes(regions: Regions, activation: np.ndarray):
    """Each non-empty region's index, tight crop of its mask and of ``activation``."""
    if regions.shape != activation.shape:
        raise ValueError(f"regions {regions.shape} and activation {activation.shape} differ in size")
    if regions.boxes is not None:  # known already (Regions.from_labels): no full-image scans
        for index, (top, bottom, left, right) in enumerate(regions.boxes.tolist()):
            if bottom > top and right > left:
                yield index, regions.crop(index, top, bottom, left, right), activation[top:bottom, left:right]
        return
    for index, mask in enumerate(regions.masks):
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero(mask.any(axis=0))
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        yield index, mask[top:bottom, left:right], activation[top:bottom, left:right]


def soft_dice(regions: Regions, activation: np.ndarray) -> np.ndarray:
    """2 sum(A M_i) / (sum(A) + sum(M_i)) for every region: the Dice overlap (pixel F1) that the
    region would score as a mask if ``activation`` were the truth. Unlike S it does not reward a
    region for its size: a large region pays for the prior it leaves out and for the pixels it
    takes in that the prior does not claim.

    Args:
        regions: N masks of shape ``(H, W)``.
        activation: ``(H, W)`` map in [0, 1].

    Returns:
        ``float64`` array of N scores in [0, 1] (0 for an empty mask).
    """
    scores = np.zeros(len(regions), np.float64)
    total = float(np.clip(activation, 0.0, 1.0).sum(dtype=np.float64))
    for index, crop, values in _bounding_boxes(regions, activation):
        inside = float(np.clip(values[crop], 0.0, 1.0).sum(dtype=np.float64))
        scores[index] = 2.0 * inside / (total + float(crop.sum()))
    return scores


def distance_weighted_mean(regions: Regions, activation: np.ndarray) -> np.ndarray:
    """sum(D(M_i) A) / sum(D(M_i)) for every region: the paper's weighting of a region's core
    kept, its reward for size (S's division by the area, not by the distances) taken out.

    Args and returns as :func:`soft_dice` (scores in [0, 1]).
    """
    scores = np.zeros(len(regions), np.float64)
    for index, crop, values in _bounding_boxes(regions, activation):
        distance = inside_distance(crop)
        scores[index] = float((distance * values).sum(dtype=np.float64)) / max(float(distance.sum()), 1e-12)
    return scores


#: How the region that best matches the prior is chosen. ``similarity`` is the paper's S (its
#: pipeline always uses it); the others are candidates of docs/fusion.md's tenth study.
REGION_CHOICES = {
    "similarity": region_similarity,
    "soft_dice": soft_dice,
    "distance_weighted_mean": distance_weighted_mean,
}


def select_region(regions: Regions, activation: np.ndarray,
                  choice: str = "similarity") -> tuple[int, float, np.ndarray]:
    """i* = argmax_i score(M_i, A), with the score named by ``choice`` (default the paper's S).

    Returns:
        ``(index, score, scores)``; index is -1 and score 0.0 when there are no regions.

    Raises:
        UnknownNameError: ``choice`` is not one of :data:`REGION_CHOICES`.
    """
    if choice not in REGION_CHOICES:
        raise UnknownNameError(f"unknown region choice {choice!r}; choose one of: {', '.join(REGION_CHOICES)}")
    scores = REGION_CHOICES[choice](regions, activation)
    if scores.size == 0:
        return -1, 0.0, scores
    best = int(np.argmax(scores))
    return best, float(scores[best]), scores


def bayesian_enhancement(activation: np.ndarray, region: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Posterior P(manipulated at x | m(x)) by Bayes' rule, pixel by pixel.

    The paper writes P(A | M) = P(M | A) P(A) / P(M) and gives no more detail. This is
    the reading fixed in ``shared/design/method.md`` section 6, a true Bayes update:

    * prior ``P(manip at x) = A(x)``;
    * evidence ``m(x)`` = 1 inside the chosen region, 0 outside;
    * likelihoods estimated from the image itself, treating A as soft labels:
      ``l1 = P(m=1 | manip) = sum(A*M) / sum(A)``,
      ``l0 = P(m=1 | pristine) = sum((1-A)*M) / sum(1-A)``;
    * posterior inside the region ``l1*A / (l1*A + l0*(1-A))``,
      outside ``(1-l1)*A / ((1-l1)*A + (1-l0)*(1-A))``.

    When the region is where the activation concentrates (l1 > l0) the update raises
    A inside it and lowers A outside; an uninformative region (l1 == l0) leaves A as it is.

    Args:
        activation: ``(H, W)`` prior in [0, 1].
        region: ``(H, W)`` bool mask M_{i*}.
        eps: guards the likelihood ratios against empty sums.

    Returns:
        ``(H, W)`` ``float32`` posterior in [0, 1].
    """
    prior = np.clip(activation.astype(np.float64), 0.0, 1.0)
    inside = region.astype(bool)
    if prior.shape != inside.shape:
        raise ValueError(f"activation {prior.shape} and region {inside.shape} differ in size")
    mass_manip = prior.sum()
    mass_pristine = (1.0 - prior).sum()
    l1 = (prior[inside].sum() + eps) / (mass_manip + 2 * eps)
    l0 = ((1.0 - prior[inside]).sum() + eps) / (mass_pristine + 2 * eps)
    like_manip = np.where(inside, l1, 1.0 - l1)
    like_pristine = np.where(inside, l0, 1.0 - l0)
    numerator = like_manip * prior
    denominator = numerator + like_pristine * (1.0 - prior)
    posterior = np.divide(numerator, denominator, out=prior.copy(), where=denominator > 0)
    return np.clip(posterior, 0.0, 1.0).astype(np.float32)
