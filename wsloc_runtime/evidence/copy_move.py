"""``copy_move``: areas of the photo that are copies of another area of the same photo.

Classical copy-move detection, without any model, by two searches whose candidates are
verified the same way:

1. Exact copies (Fridrich et al. 2003): every 8x8 block of the gray photo is hashed; a
   translation under which many textured blocks reappear pixel for pixel is a candidate.
   This finds copies of fine texture or smooth road/sky that keypoints miss, as long as the
   copy was not resampled or recompressed.
2. Keypoints (Amerini et al. 2011, Christlein et al. 2012, Pan & Lyu 2010): SIFT keypoints
   matched against the photo itself. Each keypoint's nearest descriptors (the trivial self
   match and spatially close ones skipped) are kept while the generalized 2NN ratio test
   (g2NN) holds, so a keypoint copied several times keeps several matches. The pairs are
   explained by similarity transforms (rotation, scale, translation) found one after the
   other with RANSAC; a pair counts in either direction, since nothing in a match says which
   end is the original. This finds rotated, scaled and recompressed copies.
3. Each candidate transform becomes dense regions: the photo is warped by the transform and
   compared with itself by a local zero-mean normalized correlation and a mean gray-level
   difference (pixel equality for exact copies); where both say "same", the pixel is a copy.
   Thresholded, cleaned, kept only where the candidate's points are, grown a little into the
   copy's flat parts, and mapped back through the transform to mark the original too.

4. A copy is told from two real look-alikes (two bottles of one brand, two windows of one
   house: COVERAGE's originals) by geometry: a copy is the same pixels moved by one transform,
   so its matched keypoints land where the transform puts them to within SIFT's localisation
   noise (median about 0.1 px at the detection size), while two objects photographed apart
   differ in shape and perspective by more (0.18 px and up on every look-alike pair of
   coverage-dev). A pair is a copy when it is pixel-identical (the exact search) or when its
   inliers' median misfit is at most :data:`MAX_COPY_MISFIT`. A pair that matches closely but
   not that well keeps its place in the map (recompression moves a real copy's keypoints too:
   CASIA's and NIST16's JPEG copy-moves misfit by 0.15-0.56 px, every one of them a real copy)
   but claims at most :data:`LOOKALIKE_CLAIM` for the verdict, and is never called a copy. The
   fine-grain (residual) correlation between the two areas is measured and shown, but does not
   decide: on coverage-dev it was as high between real look-alikes (0.73-0.90) as between scaled
   copies (0.58-0.70 on CASIA v2.0), whose resampling smooths the grain.

Repeated textures (windows, tiles) match too, but not pixel for pixel: the dense check of a
real copy holds over an area, that of two similar windows does not, which is what the
thresholds below rely on. They were chosen so that no authentic photo of NoSo (13), CASIA v1
dev (92), Kodak (24) or the first 100 BSDS500 test photos is flagged, except one Kodak
facade (kodim08: a 0.6% patch of timber framing, 8 matching points, strength 0.22).
"""

from __future__ import annotations

import math

import numpy as np

from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence, resize_map

#: Longest side, in pixels, of the copy the analysis runs on; bounds time on any input.
ANALYSIS_MAX_SIDE = 1024
#: Longest side of the copy keypoints are detected on: SIFT's cost is mostly its first
#: octaves, and a copy small enough to vanish at this size is also too small to verify.
KEYPOINT_MAX_SIDE = 640
#: At most this many keypoints (the strongest); matching is quadratic in the count.
MAX_KEYPOINTS = 2000
#: A photo (analysis copy) with a shorter side than this holds no copy worth verifying.
MIN_SIDE = 48
#: Fewer keypoints than this and the photo is too flat to say anything about copies.
MIN_KEYPOINTS = 40
#: Keypoints this many or more make the photo fully judgeable.
FULL_RELIABILITY_KEYPOINTS = 400
#: Nearest neighbours looked at per keypoint (g2NN), not counting the keypoint itself.
NEIGHBOURS = 6
#: g2NN ratio d_i / d_{i+1}: Amerini et al. use 0.5; a little looser finds rotated copies.
G2NN_RATIO = 0.6
#: A keypoint whose nearest other descriptor is farther than this (RootSIFT, unit length)
#: cannot be a copy: matches that pass the ratio test lie below it (at most 0.37 on NoSo and
#: CASIA v2 copy-moves).
CANDIDATE_DISTANCE = 0.42
#: RootSIFT distances below this are the same descriptor (float64 rounding of 2 - 2 x 1 leaves
#: about 1e-8; distinct SIFT descriptors, integers up to 255 before RootSIFT, are 1e-3 or more apart).
SAME_DESCRIPTOR = 1e-4
#: Matched points closer than this (fraction of the image diagonal, and at least 10 px) are
#: one structure, not a copy.
MIN_SHIFT_FRACTION = 0.015
#: RANSAC reprojection tolerance, pixels at the analysis size.
RANSAC_TOLERANCE = 4.0
#: A transform needs at least this many inlier pairs to be considered.
MIN_INLIERS = 6
#: At most this many transforms (copies) per photo.
MAX_TRANSFORMS = 4
#: Scales outside this range are not plausible copy-moves (and RANSAC degeneracies).
SCALE_RANGE = (0.4, 2.5)
#: A keypoint pair is a copy when its inliers' median misfit to the fitted transform, in pixels at
#: the size the keypoints were detected at, is at most this (module docstring, item 4).
MAX_COPY_MISFIT = 0.15
#: The most a reading whose pairs all only match closely (none as only a copy does) claims for
#: the verdict (``EvidenceMap.claim``); its map and strength still show where to look.
LOOKALIKE_CLAIM = 0.15
#: Gaussian sigma of the blur whose difference with the photo is the fine grain compared
#: between the two areas of a pair (shown, not decisive).
RESIDUAL_SIGMA = 0.7
#: A pixel-identical repeat shifted by whole 8x8 blocks in both directions is also what JPEG makes
#: of two quiet blocks quantized alike (seen on untouched photos saved at quality 70-75: shifts of
#: 16, 24, 104 px); it is taken as a copy only where the fine grain of the whole area repeats too,
#: as a real copy's does (0.94-1.0 on COVERAGE's and CASIA v2.0's exact copies; 0.11-0.36 on
#: those untouched photos, 0.88 on one).
GRID_SHIFT_MIN_GRAIN = 0.95
#: Side of the blocks hashed to find pixel-exact copies.
HASH_BLOCK = 8
#: Gray-level variance a block needs to count as textured for the exact-copy search.
MIN_HASH_VARIANCE = 2.0
#: An exact-copy translation needs at least this many identical blocks.
MIN_DUPLICATE_BLOCKS = 40
#: Identical textured blocks this far apart are already a copy (a copy nudged by a few
#: pixels over its original); keypoint matches need a longer distance, above.
MIN_EXACT_SHIFT = 6.0
#: Local variance an area needs for pixel-exact equality to count (saturated areas are equal
#: to any shifted copy of themselves).
MIN_EXACT_VARIANCE = 0.5
#: Gaussian blur before the dense correlation, forgiving the copy's resampling.
CORRELATION_BLUR_SIGMA = 1.0
#: The dense check runs on the inlier points' bounding box widened by half its size and at
#: least this many pixels.
DENSE_MARGIN = 40
#: Side of the window of the local zero-mean normalized correlation.
CORRELATION_WINDOW = 7
#: A pixel is a copy where the local correlation exceeds this: real copies reach about 0.95
#: and more, repeated but distinct textures rarely hold it over an area.
CORRELATION_THRESHOLD = 0.9
#: Mean absolute gray-level difference (0-255) in the window above which two areas are not
#: copies, whatever their correlation; leaves room for JPEG noise and resampling.
MAX_MEAN_DIFFERENCE = 4.0
#: Flat areas join a verified copy region where the mean difference stays below this ...
MAX_FLAT_DIFFERENCE = 1.5
#: ... and no farther from it than this fraction of the image diagonal.
GROW_FRACTION = 0.02
#: Local variance (of 0-255 gray) below which the correlation is undefined (flat areas).
MIN_LOCAL_VARIANCE = 1.0
#: A copy region smaller than this fraction of the photo is dropped as noise.
MIN_REGION_FRACTION = 0.0004
#: A region must hold this many of the transform's inlier keypoints.
MIN_KEYPOINTS_IN_REGION = 3
#: At most this many (source, copy) point pairs per verified copy go into ``details["segments"]``
#: for drawing: enough to show the copy's direction and extent, few enough to stay readable.
SEGMENTS_PER_COPY = 12


def copy_segments(copies: list[dict], analysis_size: tuple[int, int], size: tuple[int, int]) -> list[list]:
    """Lines to draw from each shown pair's inlier points to their matches, for people.

    Args:
        copies: the transforms whose areas the map shows (copies and near-copies), each with ``source_points`` and ``target_points``
            ``(n, 2)`` (x, y) at the analysis size.
        analysis_size: ``(height, width)`` the points are measured at.
        size: ``(height, width)`` of the returned coordinates (the map's, the working size).

    Returns:
        ``[[[x0, y0], [x1, y1]], ...]``: at most :data:`SEGMENTS_PER_COPY` pairs per copy, evenly
        spread over its inliers, as floats rounded to 0.1 px (JSON-ready). Display only: no number
        of the reading depends on them.
    """
    scale = np.array([size[1] / analysis_size[1], size[0] / analysis_size[0]], np.float64)
    segments = []
    for copy in copies:
        source = np.asarray(copy["source_points"], np.float64).reshape(-1, 2)
        target = np.asarray(copy["target_points"], np.float64).reshape(-1, 2)
        if len(source) == 0:
            continue
        chosen = np.unique(np.linspace(0, len(source) - 1, min(SEGMENTS_PER_COPY, len(source))).round().astype(int))
        for start, end in zip(source[chosen] * scale, target[chosen] * scale):
            segments.append([[round(float(start[0]), 1), round(float(start[1]), 1)],
                             [round(float(end[0]), 1), round(float(end[1]), 1)]])
    return segments


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _detect(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoint positions ``(n, 2)`` float32 (x, y, at ``gray``'s size) and RootSIFT descriptors
    ``(n, 128)`` float64 (unit length)."""
    import cv2

    factor = min(1.0, KEYPOINT_MAX_SIDE / max(gray.shape))
    small = gray if factor == 1.0 else cv2.resize(
        gray, (round(gray.shape[1] * factor), round(gray.shape[0] * factor)), interpolation=cv2.INTER_AREA)
    sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS, contrastThreshold=0.02)
    keypoints, descriptors = sift.detectAndCompute(small, None)
    if descriptors is None or not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float64)
    points = np.array([kp.pt for kp in keypoints], np.float32) / factor
    # RootSIFT: Hellinger distance separates near-identical descriptors better than L2. In float64:
    # a copy's descriptors are near-identical, and their distances are differences of numbers
    # close to 1 (see _self_matches), which float32 products would bury in rounding noise.
    descriptors = descriptors.astype(np.float64)
    descriptors /= descriptors.sum(axis=1, keepdims=True) + 1e-7
    return points, np.sqrt(descriptors)


def _self_matches(points: np.ndarray, descriptors: np.ndarray, min_shift: float) -> np.ndarray:
    """Match pairs ``(m, 2)`` int (indices, first < second) of the photo's keypoints with themselves."""
    count = len(points)
    if count < 3:
        return np.zeros((0, 2), np.int64)
    # RootSIFT descriptors have unit length: squared distance = 2 - 2 * similarity.
    similarity = descriptors @ descriptors.T
    np.fill_diagonal(similarity, -1.0)
    # Only keypoints with some close descriptor can pass the ratio test; selecting them
    # first spares sorting the rows of all the others (most of them).
    close_rows, close_columns = np.nonzero(similarity > 1.0 - CANDIDATE_DISTANCE ** 2 / 2)
    far = np.hypot(*(points[close_rows] - points[close_columns]).T) >= min_shift
    candidates = np.unique(close_rows[far])
    if len(candidates) == 0:
        return np.zeros((0, 2), np.int64)
    distances = 2.0 - 2.0 * similarity[candidates]
    distances[np.arange(len(candidates)), candidates] = np.inf
    # A few spare neighbours: SIFT gives one location several orientations, and those (and
    # the self match) are dropped below as not copies.
    k = min(NEIGHBOURS + 4, count - 1)
    nearest = np.argpartition(distances, k, axis=1)[:, :k + 1]
    nearest_distance = np.take_along_axis(distances, nearest, axis=1)
    shift = np.hypot(points[nearest, 0] - points[candidates, None, 0],
                     points[nearest, 1] - points[candidates, None, 1])
    nearest_distance = np.sqrt(np.maximum(nearest_distance, 0.0))
    # Pixel-identical copies have identical descriptors: their distance is 0 up to rounding, and
    # which of two such copies is "nearer" (and whether their ratio passes) must not be rounding's
    # choice. Below SAME_DESCRIPTOR they are the same descriptor: distance exactly 0, ties kept in
    # index order by the stable sort.
    nearest_distance[nearest_distance < SAME_DESCRIPTOR] = 0.0
    nearest_distance = np.where(shift < min_shift, np.inf, nearest_distance)
    order = np.argsort(nearest_distance, axis=1, kind="stable")[:, :NEIGHBOURS + 1]
    nearest = np.take_along_axis(nearest, order, axis=1)
    nearest_distance = np.take_along_axis(nearest_distance, order, axis=1)
    with np.errstate(invalid="ignore"):  # inf / inf where both neighbours were dropped
        ratios = nearest_distance[:, :-1] / np.maximum(nearest_distance[:, 1:], 1e-9)
    # g2NN: keep neighbours while each is clearly closer than the next one.
    passes = np.isfinite(nearest_distance[:, :-1]) & (ratios < G2NN_RATIO)
    accepted = np.cumprod(passes, axis=1).astype(bool)
    rows, columns = np.nonzero(accepted)
    if len(rows) == 0:
        return np.zeros((0, 2), np.int64)
    others = nearest[rows, columns]
    rows = candidates[rows]
    pairs = np.stack([np.minimum(rows, others), np.maximum(rows, others)], axis=1)
    return np.unique(pairs.astype(np.int64), axis=0)


def _transform_parameters(affine: np.ndarray) -> tuple[float, float]:
    """(rotation in degrees, scale) of a 2x3 similarity transform."""
    scale = math.hypot(affine[0, 0], affine[1, 0])
    angle = math.degrees(math.atan2(affine[1, 0], affine[0, 0]))
    return angle, scale


def _find_transforms(points: np.ndarray, pairs: np.ndarray, min_shift: float) -> list[dict]:
    """Similarity transforms explaining the pairs, each with its inlier source/target points."""
    import cv2

    found = []
    remaining = pairs
    for _ in range(MAX_TRANSFORMS):
        if len(remaining) < MIN_INLIERS:
            break
        first, second = points[remaining[:, 0]], points[remaining[:, 1]]
        # Both directions: the transform maps the original onto the copy, and a pair does
        # not say which of its ends is which.
        source = np.concatenate([first, second])
        target = np.concatenate([second, first])
        affine, inliers = cv2.estimateAffinePartial2D(
            source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_TOLERANCE,
            maxIters=2000, confidence=0.995, refineIters=10)
        if affine is None or inliers is None:
            break
        inliers = inliers.ravel().astype(bool)
        forward, backward = inliers[:len(remaining)], inliers[len(remaining):]
        used = forward | backward
        if used.sum() < MIN_INLIERS:
            break
        remaining = remaining[~used]
        angle, scale = _transform_parameters(affine)
        inlier_source = np.concatenate([first[forward], second[backward & ~forward]])
        inlier_target = np.concatenate([second[forward], first[backward & ~forward]])
        shift = np.median(np.hypot(*(inlier_target - inlier_source).T))
        if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] or shift < min_shift:
            continue
        found.append({"affine": affine.astype(np.float64), "angle": angle, "scale": scale,
                      "inliers": int(used.sum()), "source_points": inlier_source,
                      "target_points": inlier_target})
    return found


def _exact_duplicate_translations(gray: np.ndarray, min_shift: float) -> list[dict]:
    """Translations under which many textured blocks reappear pixel for pixel.

    Keypoints miss copies of fine texture (grass, gravel): the strongest points of the copy
    are not those of the original once the surroundings change. A copy pasted without
    resampling is, block for block, identical to its original, which a hash of every
    ``HASH_BLOCK`` x ``HASH_BLOCK`` block finds in one sort (Fridrich et al. 2003, exact match).
    """
    import cv2

    height, width = gray.shape
    if height < 2 * HASH_BLOCK or width < 2 * HASH_BLOCK:
        return []
    values = gray.astype(np.float32)
    generator = np.random.default_rng(17)
    # Small integer weights keep every block sum below 2**24, exact in float32, so equal
    # blocks hash equal; two independent sums make a chance collision negligible.
    hashes = [cv2.filter2D(values, cv2.CV_32F, generator.integers(1, 16, (HASH_BLOCK, HASH_BLOCK))
                           .astype(np.float32), borderType=cv2.BORDER_CONSTANT) for _ in range(2)]
    mean = cv2.boxFilter(values, cv2.CV_32F, (HASH_BLOCK, HASH_BLOCK), borderType=cv2.BORDER_CONSTANT)
    variance = cv2.boxFilter(values * values, cv2.CV_32F, (HASH_BLOCK, HASH_BLOCK),
                             borderType=cv2.BORDER_CONSTANT) - mean ** 2
    # Flat or saturated blocks are identical all over a sky; only textured blocks count.
    margin = HASH_BLOCK // 2 + 1
    textured = np.zeros((height, width), bool)
    textured[margin:height - margin, margin:width - margin] = True
    textured &= variance > MIN_HASH_VARIANCE
    indices = np.flatnonzero(textured)
    if len(indices) < 2:
        return []
    first_hash, second_hash = (np.rint(h.ravel()[indices]).astype(np.int64) for h in hashes)
    # Each hash is below 2**18 and a pixel index below 2**20 (the analysis copy has at most
    # 1024 x 1024 pixels): one packed integer sorts faster than an argsort of the hashes.
    packed = np.sort((first_hash << 38) | (second_hash << 20) | indices.astype(np.int64))
    keys, indices = packed >> 20, packed & ((1 << 20) - 1)
    equal = np.flatnonzero(keys[1:] == keys[:-1])
    if len(equal) == 0:
        return []
    # Raster order within a pair, so one copy gives one offset, not it and its negative.
    first = np.minimum(indices[equal], indices[equal + 1])
    second = np.maximum(indices[equal], indices[equal + 1])
    dy = second // width - first // width
    dx = second % width - first % width
    far = np.hypot(dy, dx) >= min_shift
    first, second, dy, dx = first[far], second[far], dy[far], dx[far]
    if len(dy) == 0:
        return []
    offsets, inverse, counts = np.unique(dy * (4 * width) + dx, return_inverse=True, return_counts=True)
    found = []
    min_count = max(MIN_DUPLICATE_BLOCKS, MIN_REGION_FRACTION * height * width / 4)
    for offset_index in np.argsort(counts)[::-1][:MAX_TRANSFORMS]:
        if counts[offset_index] < min_count:
            break
        members = inverse == offset_index
        shift_y, shift_x = int(dy[members][0]), int(dx[members][0])
        source_points = np.stack([first[members] % width, first[members] // width], axis=1).astype(np.float32)
        found.append({"affine": np.array([[1.0, 0.0, shift_x], [0.0, 1.0, shift_y]]), "angle": 0.0,
                      "scale": 1.0, "inliers": int(counts[offset_index]), "source_points": source_points,
                      "target_points": source_points + np.float32([shift_x, shift_y]), "min_shift": min_shift,
                      "exact": True})
    return found


def _same_transform(first: dict, second: dict) -> bool:
    difference = np.abs(first["affine"] - second["affine"])
    return bool(difference[:, :2].max() < 0.03 and difference[:, 2].max() < 4.0)


def _box(values: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.boxFilter(values, -1, (CORRELATION_WINDOW, CORRELATION_WINDOW), borderType=cv2.BORDER_REFLECT)


def _local_correlation(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windowed zero-mean normalized correlation ``(h, w)`` float32 in [-1, 1] and its validity mask."""
    mean_first, mean_second = _box(first), _box(second)
    variance_first = _box(first * first) - mean_first ** 2
    variance_second = _box(second * second) - mean_second ** 2
    covariance = _box(first * second) - mean_first * mean_second
    valid = (variance_first > MIN_LOCAL_VARIANCE) & (variance_second > MIN_LOCAL_VARIANCE)
    correlation = covariance / np.sqrt(np.maximum(variance_first * variance_second, 1e-6))
    return np.where(valid, correlation, 0.0).astype(np.float32), valid


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    import cv2

    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled


def _dense_regions(smooth: np.ndarray, transform: dict, min_shift: float,
                   gray: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Target and source regions ``(h, w)`` uint8 {0, 1} of one transform, and their mean correlation.

    ``smooth`` is the blurred gray photo (float32); ``gray`` the unblurred one (uint8), read
    for exact translations only.
    """
    import cv2

    full_height, full_width = smooth.shape
    affine = transform["affine"]
    inverse = cv2.invertAffineTransform(affine)
    # Only around the inlier points: a copy is where its matches are, and the window bounds
    # the time of each transform.
    points = transform["target_points"]
    low, high = points.min(axis=0), points.max(axis=0)
    margin = max(DENSE_MARGIN, 0.5 * float((high - low).max()))
    x0, y0 = (max(0, int(v - margin)) for v in low)
    x1, y1 = min(full_width, int(high[0] + margin) + 1), min(full_height, int(high[1] + margin) + 1)
    height, width = y1 - y0, x1 - x0
    # warped(c) = photo(A^-1 (c + o)) on the window at o: where photo and warped agree, the
    # pixel is a copy of its preimage.
    window_inverse = inverse.copy()
    window_inverse[:, 2] = inverse[:, :2] @ np.array([x0, y0], float) + inverse[:, 2]
    flags = cv2.WARP_INVERSE_MAP
    crop = np.ascontiguousarray(smooth[y0:y1, x0:x1])
    warped = cv2.warpAffine(smooth, window_inverse, (width, height), flags=cv2.INTER_LINEAR | flags, borderValue=0)
    inside = cv2.warpAffine(np.ones_like(smooth), window_inverse, (width, height),
                            flags=cv2.INTER_NEAREST | flags) > 0
    correlation, valid = _local_correlation(crop, warped)
    # Near the transform's fixed point a pixel trivially matches itself.
    if np.allclose(affine[:, :2], np.eye(2)):
        # A translation moves every pixel by the same distance.
        moved = np.full((height, width), math.hypot(affine[0, 2], affine[1, 2]) >= min_shift)
    else:
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        preimage_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        preimage_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
        moved = np.hypot(preimage_x - xs, preimage_y - ys) >= min_shift
    # Correlation ignores brightness offsets, so a smooth ramp matches any shifted copy of
    # itself; a real copy also has the same gray levels.
    difference = _box(np.abs(crop - warped))
    candidate = ((correlation > CORRELATION_THRESHOLD) & (difference < MAX_MEAN_DIFFERENCE)
                 & valid & inside & moved)
    if transform.get("exact") and gray is not None:
        # A pixel-exact copy of a smooth area (a patch of road or sky pasted over an object)
        # has too little contrast for a correlation, but every pixel equals its original.
        gray_crop = gray[y0:y1, x0:x1]
        shifted = cv2.warpAffine(gray, window_inverse, (width, height), flags=cv2.INTER_NEAREST | flags,
                                 borderValue=0)
        equal = _box((gray_crop == shifted).astype(np.float32)) > 0.9
        values = gray_crop.astype(np.float32)
        contrast = _box(values * values) - _box(values) ** 2 > MIN_EXACT_VARIANCE
        candidate |= equal & contrast & inside & moved
        valid = valid | (equal & contrast)
    candidate = candidate.astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    candidate = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    candidate = cv2.morphologyEx(candidate, cv2.MORPH_CLOSE, kernel, iterations=2)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    target = np.zeros((height, width), np.uint8)
    points = np.round(points - np.float32([x0, y0])).astype(int)
    points[:, 0] = np.clip(points[:, 0], 0, width - 1)
    points[:, 1] = np.clip(points[:, 1], 0, height - 1)
    # Dilated labels so a keypoint on the region's rim still counts for it.
    hit_labels = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int32)[points[:, 1], points[:, 0]]
    min_area = MIN_REGION_FRACTION * full_height * full_width
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < min_area:
            continue
        if np.count_nonzero(hit_labels == label) >= MIN_KEYPOINTS_IN_REGION:
            target[labels == label] = 1
    if not target.any():
        empty = np.zeros((full_height, full_width), np.uint8)
        return empty, empty.copy(), 0.0
    mean_correlation = float(correlation[(target > 0) & valid].mean()) if ((target > 0) & valid).any() else 0.0
    # Flat parts of a copy (a white shirt, sky) have no correlation to read, but the same
    # gray levels as their original: let the verified region grow into them, a little way.
    # The reach scales with the region, so a small copy in a sky cannot grow into the sky.
    reach = int(np.clip(0.2 * math.sqrt(target.sum()), 3, GROW_FRACTION * math.hypot(full_height, full_width)))
    near = cv2.dilate(target, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    same_levels = (difference < MAX_FLAT_DIFFERENCE) & inside & moved & (near > 0)
    grown = (same_levels | (target > 0)).astype(np.uint8)
    grown = cv2.morphologyEx(grown, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    count, labels = cv2.connectedComponents(grown, connectivity=8)
    keep = np.bincount(labels[target > 0], minlength=count) > 0
    keep[0] = False
    window = _fill_holes(keep[labels].astype(np.uint8) | target)
    target = np.zeros((full_height, full_width), np.uint8)
    target[y0:y1, x0:x1] = window
    # source(s) = target(A s)
    source = cv2.warpAffine(target, affine, (full_width, full_height), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    return target, source, mean_correlation


def _misfit(transform: dict, detection_factor: float) -> float:
    """Median distance, in pixels at the keypoints' detection size, between where the transform
    puts each inlier's source point and where its match is (0 for a pixel-exact copy)."""
    if transform.get("exact"):
        return 0.0
    source = np.asarray(transform["source_points"], np.float64)
    target = np.asarray(transform["target_points"], np.float64)
    if len(source) == 0:
        return math.inf
    affine = transform["affine"]
    placed = source @ affine[:, :2].T + affine[:, 2]
    return float(np.median(np.hypot(*(placed - target).T))) * detection_factor


def _whole_blocks(affine: np.ndarray) -> bool:
    """Whether a translation moves by whole 8x8 JPEG blocks in both directions."""
    return all(float(v).is_integer() and int(v) % 8 == 0 for v in affine[:, 2])


def _fine_grain(gray: np.ndarray) -> np.ndarray:
    """The photo minus its blur at :data:`RESIDUAL_SIGMA`, ``float32``: the grain a copy carries along."""
    import cv2

    values = gray.astype(np.float32)
    return values - cv2.GaussianBlur(values, (0, 0), RESIDUAL_SIGMA)


def _residual_correlation(grain: np.ndarray, transform: dict, target: np.ndarray) -> float:
    """Pearson correlation, over the target area (its rim left out), of the photo's fine grain
    (:func:`_fine_grain`) with the grain carried over from the source area by the transform; 1 for
    a pixel-exact copy."""
    import cv2

    height, width = grain.shape
    inverse = cv2.invertAffineTransform(transform["affine"])
    carried = cv2.warpAffine(grain, inverse, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    inside = cv2.warpAffine(np.ones_like(grain), inverse, (width, height),
                            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    area = (target > 0) & inside
    core = cv2.erode(area.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if core.sum() > 50:
        area = core
    if area.sum() < 10:
        return 0.0
    first = grain[area].astype(np.float64) - grain[area].mean()
    second = carried[area].astype(np.float64) - carried[area].mean()
    scale = math.sqrt(float((first * first).sum()) * float((second * second).sum()))
    return float((first * second).sum()) / scale if scale > 0 else 0.0


def _block_grid_alignment(gray: np.ndarray, region: np.ndarray) -> float:
    """How much of the region's 8x8 JPEG blocking sits on the photo's own grid phase, in [0, 1].

    A region pasted at an offset that is not a multiple of 8 carries its blocking off the
    photo's grid; the original keeps it on. 0.5 means no grid to read.
    """
    values = gray.astype(np.float32)
    horizontal = np.abs(np.diff(values, axis=1))[:-1, :]
    vertical = np.abs(np.diff(values, axis=0))[:, :-1]
    mask = region[:-1, :-1] > 0
    if mask.sum() < 256:
        return 0.5
    whole = np.ones_like(mask)

    def phase_energy(selection: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        columns = np.array([horizontal[:, phase::8][selection[:, phase::8]].mean()
                            if selection[:, phase::8].any() else 0.0 for phase in range(8)])
        rows = np.array([vertical[phase::8, :][selection[phase::8, :]].mean()
                         if selection[phase::8, :].any() else 0.0 for phase in range(8)])
        return columns, rows

    global_columns, global_rows = phase_energy(whole)
    column_phase, row_phase = int(np.argmax(global_columns)), int(np.argmax(global_rows))
    columns, rows = phase_energy(mask)
    contrast_columns = columns[column_phase] - np.median(columns)
    contrast_rows = rows[row_phase] - np.median(rows)
    spread = (np.std(columns) + np.std(rows)) / 2 + 1e-6
    return float(1.0 / (1.0 + math.exp(-(contrast_columns + contrast_rows) / spread)))


def _seam_contrast(smooth: np.ndarray, region: np.ndarray) -> float:
    """Gradient on the region's outline over the gradient around it (about 1 for a natural outline)."""
    import cv2

    thin = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    wide = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21))
    band = (cv2.dilate(region, thin) - cv2.erode(region, thin)) > 0
    ring = ((cv2.dilate(region, wide) - cv2.erode(region, wide)) > 0) & ~band
    if not band.any() or not ring.any():
        return 1.0
    magnitude = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    return float(magnitude[band].mean() / (magnitude[ring].mean() + 1e-6))


def _pasted_side(gray: np.ndarray, smooth: np.ndarray, target: np.ndarray, source: np.ndarray) -> str:
    """"target" or "source": which of the two ends looks pasted.

    Two weak cues, summed: the pasted end's JPEG blocking sits less on the photo's grid, and
    its outline is smoother than its surroundings (measured on CASIA v1/v2 copy-moves: each
    cue alone picks the pasted end in 27 of 45 cases, both together in 15 of the 21 cases
    where they agree).
    """
    grid = _block_grid_alignment(gray, source) - _block_grid_alignment(gray, target)
    seam = _seam_contrast(smooth, source) - _seam_contrast(smooth, target)
    return "target" if grid + seam >= 0 else "source"


def copy_move_evidence(rgb: np.ndarray, size: tuple[int, int] | None = None, mark: str = "both") -> EvidenceMap:
    """Copy-move map of ``rgb`` resized to ``size`` (default: its own).

    Args:
        rgb: ``(h, w, 3)`` ``uint8`` RGB photo; analysed at most :data:`ANALYSIS_MAX_SIDE` px.
        size: ``(height, width)`` of the returned map.
        mark: ``"both"`` marks the original and its copy (as copy-move masks usually do);
            ``"copy"`` marks only the end judged pasted (JPEG blocking off the photo's grid,
            smoother outline; a weak guess, right about 6 times in 10 on CASIA).

    Returns:
        EvidenceMap with a ``(height, width)`` ``float32`` map in [0, 1] (1 = a duplicated
        area), reliability 1 once a copy is verified and otherwise from the keypoint count
        (can this photo's search say "no copy"?), strength from inliers and area.

    Raises:
        ValueError: ``rgb`` is not an ``(h, w, 3)`` ``uint8`` array, or ``mark`` is unknown.
    """
    import cv2

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"copy_move: expected an (h, w, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    if mark not in ("both", "copy"):
        raise ValueError(f"copy_move: mark must be 'both' or 'copy', got {mark!r}")
    size = tuple(size or rgb.shape[:2])
    factor = min(1.0, ANALYSIS_MAX_SIDE / max(rgb.shape[:2]))
    if factor < 1.0:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor)),
                         interpolation=cv2.INTER_AREA)
    gray = _gray(rgb)
    height, width = gray.shape
    empty = np.zeros(size, np.float32)
    points, descriptors = _detect(gray)
    keypoint_count = len(points)
    if min(height, width) < MIN_SIDE:
        return EvidenceMap(
            name="copy_move", map=empty, reliability=0.0, strength=0.0,
            reason=f"the photo is too small ({width}x{height} pixels) to look for copied areas",
            details={"keypoints": keypoint_count})
    if keypoint_count < MIN_KEYPOINTS:
        return EvidenceMap(
            name="copy_move", map=empty, reliability=0.0, strength=0.0,
            reason=(f"the photo is too flat to look for copied areas: only {keypoint_count} distinctive "
                    "points found"),
            details={"keypoints": keypoint_count})
    reliability = min(1.0, (keypoint_count - MIN_KEYPOINTS) / (FULL_RELIABILITY_KEYPOINTS - MIN_KEYPOINTS))
    min_shift = max(10.0, MIN_SHIFT_FRACTION * math.hypot(height, width))
    pairs = _self_matches(points, descriptors, min_shift)
    transforms = _exact_duplicate_translations(gray, MIN_EXACT_SHIFT)
    transforms += [{**found, "min_shift": min_shift} for found in _find_transforms(points, pairs, min_shift)
                   if not any(_same_transform(found, exact) for exact in transforms)]
    smooth = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), CORRELATION_BLUR_SIGMA)
    detection_factor = min(1.0, KEYPOINT_MAX_SIDE / max(gray.shape))
    copies, lookalikes = [], []
    jpeg_repeats = 0
    fine_grain = _fine_grain(gray) if transforms else None  # once for every transform
    for transform in transforms:
        target, source, correlation = _dense_regions(smooth, transform, transform["min_shift"], gray)
        if not target.any():
            continue
        misfit = _misfit(transform, detection_factor)
        grain = _residual_correlation(fine_grain, transform, target)
        if transform.get("exact") and _whole_blocks(transform["affine"]) and grain < GRID_SHIFT_MIN_GRAIN:
            jpeg_repeats += 1  # JPEG's own identical blocks, not a copy (GRID_SHIFT_MIN_GRAIN)
            continue
        found = {**transform, "area": float(target.mean()), "correlation": correlation, "misfit": misfit,
                 "grain": grain, "target": target, "source": source}
        (copies if misfit <= MAX_COPY_MISFIT else lookalikes).append(found)
    details = {"keypoints": keypoint_count, "matches": int(len(pairs)),
               "transforms_tried": len(transforms), "copies": len(copies), "lookalikes": len(lookalikes),
               "jpeg_repeats": jpeg_repeats}
    verified = copies + lookalikes
    if not verified:
        return EvidenceMap(
            name="copy_move", map=empty, reliability=reliability, strength=0.0,
            reason=f"no duplicated area found among {keypoint_count:,} distinctive points",
            details=details)
    # Every matching pair shows where to look (the map, and its weight in the fused prior); only a
    # pair that matches as only a copy does makes the full claim for the verdict (module docstring,
    # item 4): a near-copy may be two real look-alikes, or a copy that recompression blurred.
    combined = np.zeros((height, width), np.float32)
    for found in verified:
        target, source = found.pop("target"), found.pop("source")
        if mark == "copy":
            chosen = target if _pasted_side(gray, smooth, target, source) == "target" else source
            combined = np.maximum(combined, chosen)
        else:
            combined = np.maximum(combined, np.maximum(target, source))
    # The keypoint count says whether a search that finds nothing means anything; a verified
    # copy is itself proof that the photo carries the trace, however flat the rest of it is.
    reliability = 1.0
    best = max(verified, key=lambda item: item["inliers"])
    inliers = sum(item["inliers"] for item in verified)
    area = float(combined.mean())
    # Confidence grows with the independent points that agree on one transform and with the
    # verified area; a dozen inliers over 0.5% of the photo is already unlikely by chance.
    strength = (1.0 - math.exp(-(inliers - MIN_INLIERS + 1) / 12.0)) * min(1.0, 0.5 + area / 0.01)
    strength = float(np.clip(strength * max(0.5, min(1.0, (best["correlation"] - 0.8) / 0.15)), 0.0, 1.0))
    angle, scale = best["angle"], best["scale"]
    geometry = []
    if abs(angle) >= 3:
        geometry.append(f"rotated {angle:.0f}°")
    if abs(scale - 1) >= 0.05:
        geometry.append(f"scaled {scale:.2f}")
    pairs_text = "two areas" if len(verified) == 1 else f"{len(verified)} pairs of areas"
    shape_text = f" ({', '.join(geometry)})" if geometry else ""
    details.update({"inliers": inliers, "area": round(area, 4), "rotation_deg": round(angle, 1),
                    "scale": round(scale, 3), "correlation": round(best["correlation"], 3),
                    "misfit_px": round(best["misfit"], 3), "grain_correlation": round(best["grain"], 3),
                    # display only: point pairs of every pair of areas the map shows
                    "segments": copy_segments(verified, (height, width), size)})
    if copies:
        sure = max(copies, key=lambda item: item["inliers"])
        check = ("pixel for pixel" if sure.get("exact") else
                 f"their matching points agree with one transform to {sure['misfit']:.2f} px, as only a copy does")
        reason = (f"{pairs_text} covering {area:.1%} of the photo are copies of each other{shape_text}, "
                  f"{inliers} matching points; {check}")
        claim = None
    else:
        reason = (f"{pairs_text} covering {area:.1%} of the photo match closely{shape_text}, {inliers} matching "
                  f"points, but not as only a copy does: after the best fit their points still differ by "
                  f"{best['misfit']:.2f} px (a copy: at most {MAX_COPY_MISFIT:.2f}); a copy saved again, or two "
                  "real, similar objects")
        claim = min(strength, LOOKALIKE_CLAIM)
    return EvidenceMap(name="copy_move", map=resize_map(combined, size), reliability=reliability,
                       strength=strength, reason=reason, details=details, claim=claim)


@register_evidence("copy_move", "duplicated areas: SIFT self-matching, RANSAC similarity transforms, "
                                "dense correlation of the photo with its warped self")
class CopyMoveEvidence(Evidence):
    name = "copy_move"
    runs_beside_models = True  # SIFT matching, the slowest trace; OpenCV releases the GIL
    title = "Copy-move"

    def __init__(self, mark: str = "both") -> None:
        if mark not in ("both", "copy"):
            raise ValueError(f"copy_move: mark must be 'both' or 'copy', got {mark!r}")
        self.mark = mark

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        # The working copy, not the full photo: bounded time on a 12 MP photo.
        return copy_move_evidence(inputs.image, inputs.working_size, mark=self.mark)
