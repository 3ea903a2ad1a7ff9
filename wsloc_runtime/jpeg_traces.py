"""JPEG compression traces on the 8x8 grid: per-block evidence maps for the networks' input.

A photo that was JPEG-compressed carries, in the DCT coefficients of its 8x8 luminance
blocks, the quantization lattice of that compression. Editing disturbs it where it edits:

* **double quantization** (aligned double JPEG, as Bianchi and Piva's ADQ methods read it):
  a photo compressed at one quality and re-saved at another shows, frequency by frequency,
  a histogram of quantized coefficients with a periodic pattern that single compression
  lacks. A region pasted from elsewhere (resized, rotated or off the 8x8 grid) lost its
  first lattice, so its blocks look singly compressed amid doubly compressed ones.
  :func:`double_quantization_llr` gives, per block, the log-likelihood ratio
  ``log P(coefficients | double) - log P(coefficients | single)``: low where a block looks
  singly compressed.
* **lattice fit**: in a photo whose last save was lossless (PNG, TIFF) but whose content
  came from JPEGs, the host's blocks still sit on its lattice and a pasted or moved region
  (off the grid) does not. :func:`lattice_fit` gives, per block, the mean over informative
  frequencies of ``cos(2 pi c / q)``: 1 on the lattice, about 0 off it.

Everything is estimated from the decoded pixels (no JPEG file parsing): the grid offset
(a cropped photo's grid need not start at pixel 0), each frequency's quantization step q
(the last compression's, or for a lossless re-save the JPEG's before it) and, for double
quantization, the first step. A photo without JPEG history yields all-zero maps, which
the networks read as "no evidence".

Pure numpy/OpenCV. Cost is linear in the number of blocks: the lattice is estimated on at
most :data:`ESTIMATION_BLOCKS` blocks and large photos are mapped in strips, so memory
stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BLOCK = 8
#: AC frequencies analysed, in zigzag order (the first 45 of 63; the highest ones are almost
#: always quantized to zero and carry no evidence).
N_FREQUENCIES = 45
#: Largest quantization step looked for (IJG quality 50 tables reach 121; steps above 64 are
#: at frequencies that rarely survive quantization).
MAX_STEP = 64
#: A lattice is accepted when its periodicity score (mean cos(2 pi c / q) over non-zero
#: coefficients) reaches this value; the step kept is the largest one within
#: STEP_TOLERANCE of the best score (a step's divisors score as high as the step itself).
MIN_LATTICE_SCORE = 0.5
STEP_TOLERANCE = 0.9
#: Fewer non-zero coefficients than this at a frequency: no estimate there.
MIN_NONZERO = 20
#: The grid phase is where the first eight AC frequencies sit on a lattice of step 2..16 (the
#: lowest frequencies' steps at every usual quality); it counts as found when its score beats
#: the median phase's by MIN_GRID_CONTRAST.
_OFFSET_STEPS = np.arange(2, 17)
MIN_GRID_CONTRAST = 0.15
#: Blocks sampled to estimate the grid offset and the lattice.
ESTIMATION_BLOCKS = 4096
OFFSET_BLOCKS = 512
#: Each coefficient's log-likelihood ratio is clipped to +-this, so that one outlier
#: coefficient cannot decide a block.
LLR_CLIP = 8.0
#: A block with more than this share of pixels clipped to 0 or 255 is left out of the grid fit:
#: decoding rounds and clips, and a clipped block leaves its lattice though nobody edited it.
MAX_CLIPPED_SHARE = 0.1
#: Rows per strip when mapping (a multiple of the block size).
STRIP_ROWS = 512
#: A coefficient closer than this to a decision edge (a histogram bin's edge, a rounding midpoint,
#: the coded/zero edge at q/2) counts as on it, and is decided the same way on every processor:
#: half in each neighbouring bin, rounded half to even, coded. Photos with flat or synthetic areas
#: put many coefficients exactly on such edges, where float noise of 1e-12 would otherwise choose
#: the side (it moved a first step of the coins example). Float64 coefficients differ between
#: processors by about 1e-11; real coefficients are spread on a scale of 0.1 and more.
TIE_TOLERANCE = 1e-6
#: Two first steps whose fits (log-likelihood gains) are closer than this, relative, are a tie,
#: kept by the smaller step: the same gain summed over different bins differs in its last bits.
GAIN_TIE = 1e-9


def _dct_matrix() -> np.ndarray:
    k = np.arange(BLOCK)
    matrix = np.sqrt(2.0 / BLOCK) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * BLOCK))
    matrix[0] /= np.sqrt(2.0)
    return matrix


#: Orthonormal 8x8 DCT-II matrix, ``float64``: JPEG's forward DCT of a block B is ``D @ B @ D.T``.
#:
#: Why float64 (here, in :func:`luminance` and in the lattice scores): the traces decide things
#: (each frequency's step, the first step of a double quantization, each coefficient's quantized
#: value) by comparing these numbers with thresholds and with each other. In float32 the BLAS
#: kernel of one processor and another differ by about 1e-4 in a coefficient, enough to move a
#: first step and with it the coins example's mask from 8.8% to 4.9% of the photo. In float64 they
#: differ by about 1e-13, far inside any margin these decisions have.
DCT_MATRIX = _dct_matrix()
ZIGZAG = tuple(
    sorted(((u, v) for u in range(BLOCK) for v in range(BLOCK)),
           key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 else p[0]))
)
#: Flat indices (u * 8 + v) of the analysed AC frequencies.
FREQUENCIES = np.array([u * BLOCK + v for u, v in ZIGZAG[1 : N_FREQUENCIES + 1]])
_OFFSET_PROBE = FREQUENCIES[:8]


def luminance(rgb: np.ndarray, dtype=np.float32) -> np.ndarray:
    """JPEG's luminance Y (ITU-R BT.601) minus 128, ``(H, W)`` in ``dtype``.

    The traces read it in ``float64`` (see :data:`DCT_MATRIX`) as ``(299 R + 587 G + 114 B - 128000)
    / 1000``: an exact integer sum and one correctly rounded division, the same to the last bit on
    every processor (and a third of the time of three float64 products); ``float32``, the default, is
    what the learned fingerprint was trained on and keeps its matrix product.
    """
    if np.dtype(dtype) == np.float64:
        # 1000 (Y - 128) is an integer: summed exactly in int32, then one correctly rounded division.
        thousandths = rgb[..., 0].astype(np.int32) * 299
        thousandths += rgb[..., 1].astype(np.int32) * 587
        thousandths += rgb[..., 2].astype(np.int32) * 114 - 128_000
        return thousandths / 1000.0
    weights = np.array([0.299, 0.587, 0.114], dtype)
    return rgb.astype(dtype) @ weights - dtype(128.0)


def block_dct(y: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """DCT coefficients of every whole 8x8 block of ``y`` starting at ``offset``.

    Returns ``float64`` ``(rows, cols, 64)``, coefficient ``u * 8 + v`` last.
    """
    dy, dx = offset
    y = y[dy:, dx:]
    rows, cols = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    blocks = y[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)
    # Two stacked matrix products, D @ B, then (D @ B) @ D.T, in float64 (see DCT_MATRIX): the same
    # sums as einsum("ij,abjk,lk->abil", ...), 10-15x faster than it.
    blocks = np.asarray(blocks, np.float64)
    coefficients = np.matmul(np.matmul(DCT_MATRIX, blocks), DCT_MATRIX.T)
    return coefficients.reshape(rows, cols, BLOCK * BLOCK)


def lattice_cosine(coefficients: np.ndarray, step) -> np.ndarray:
    """``cos(2 pi c / step)``, ``float32``, broadcast over ``coefficients`` and ``step``.

    The coefficients arrive in float64 (see :data:`DCT_MATRIX`); the cosine is taken in float32,
    four times as fast as in float64. Rounding a float64 to float32 is exact arithmetic, so two
    processors whose coefficients agree to 1e-13 get the same float32 phases, and numpy's float32
    cosine gives the same bits with and without AVX-512 (checked by studies/numeric_stability.py).
    """
    phase = np.asarray(coefficients).astype(np.float32) / np.asarray(step, np.float32)
    return np.cos(np.float32(2 * np.pi) * phase)


def quantize(coefficients: np.ndarray, step) -> np.ndarray:
    """``round(c / step)`` as ``int64``, half to even, a coefficient within :data:`TIE_TOLERANCE` of a
    rounding midpoint rounded as if exactly on it."""
    ratio = np.asarray(coefficients, np.float64) / step
    below = np.floor(ratio)
    on_midpoint = np.abs(ratio - below - 0.5) * step < TIE_TOLERANCE
    return np.round(np.where(on_midpoint, below + 0.5, ratio)).astype(np.int64)


def is_coded(coefficients: np.ndarray, step) -> np.ndarray:
    """``|c| >= step / 2``: the coefficient is coded to a non-zero value at ``step`` (one within
    :data:`TIE_TOLERANCE` of the edge counts as coded)."""
    return np.abs(coefficients) >= np.asarray(step, np.float64) / 2 - TIE_TOLERANCE


def lattice_scores(coefficients: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Periodicity of ``coefficients`` for each step in ``steps``: the mean of
    ``cos(2 pi c / step)`` over the coefficients not quantized to zero at that step (about 1
    on a lattice of that step or a multiple of it, about 0 off any lattice); 0 where fewer
    than :data:`MIN_NONZERO` coefficients remain."""
    c = coefficients.astype(np.float64)[:, None]
    steps = np.asarray(steps, np.float64)[None, :]
    nonzero = is_coded(c, steps)
    counts = nonzero.sum(axis=0)
    totals = np.where(nonzero, lattice_cosine(c, steps), np.float32(0.0)).sum(axis=0, dtype=np.float64)
    return np.where(counts >= MIN_NONZERO, totals / np.maximum(counts, 1), 0.0)


_CANDIDATE_STEPS = np.arange(2, MAX_STEP + 1)


def estimate_step(coefficients: np.ndarray) -> int:
    """The quantization step of one frequency's coefficients, or 1 when they show none."""
    scores = lattice_scores(coefficients, _CANDIDATE_STEPS)
    best = float(scores.max())
    if best < MIN_LATTICE_SCORE:
        return 1
    return int(_CANDIDATE_STEPS[scores >= STEP_TOLERANCE * best].max())


def _sample_rows(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= limit else np.sort(rng.choice(n, limit, replace=False))


@dataclass(frozen=True)
class FrequencyModel:
    """What was learned about one frequency: its last step, the first step of a double
    quantization (0 when single fits better), and the log-likelihood ratio of each
    quantized value ``m`` (index ``m + span``) under double vs single quantization."""

    index: int
    step: int
    first_step: int
    span: int
    log_ratio: np.ndarray


@dataclass(frozen=True)
class JpegTraces:
    """The per-block maps of one photo.

    Attributes:
        double_quantization: ``float32`` ``(rows, cols)``: sum over frequencies of the
            clipped log-likelihood ratio, double vs single quantization (0 where no
            frequency was informative).
        lattice_fit: ``float32`` ``(rows, cols)`` in [-1, 1]: mean ``cos(2 pi c / q)``
            over the frequencies with a lattice (0 without one).
        offset: ``(dy, dx)`` of the first block.
        grid_score: how clearly the grid phase stands out (< MIN_GRID_CONTRAST: no JPEG grid).
        steps: the estimated step per analysed frequency (1 = none found).
        first_steps: the first step of double quantization per frequency (0 = none).
        coded_log_ratio: ``float32`` ``(rows, cols)``: the same ratio summed over the coefficients
            quantized to a non-zero value only.
        coded_count: ``float32`` ``(rows, cols)``: how many such coefficients each block has.
        grid_fit_sum: ``float32`` ``(rows, cols)``: sum of ``cos(2 pi c / q)`` over the coefficients
            that the estimated lattice codes to a non-zero value (``|c| >= q / 2``), in blocks without
            clipped pixels (clipping to 0 or 255 after decoding moves a block off its lattice).
        grid_fit_count: ``float32`` ``(rows, cols)``: how many coefficients ``grid_fit_sum`` holds.
    """

    double_quantization: np.ndarray
    lattice_fit: np.ndarray
    offset: tuple[int, int]
    grid_score: float
    steps: tuple[int, ...]
    first_steps: tuple[int, ...]
    coded_log_ratio: np.ndarray
    coded_count: np.ndarray
    grid_fit_sum: np.ndarray
    grid_fit_count: np.ndarray

    @property
    def has_grid(self) -> bool:
        return self.grid_score >= MIN_GRID_CONTRAST


def _interval_mass(sorted_values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Fraction of ``sorted_values`` in each ``[low, high)``."""
    return (_count_below(sorted_values, high) - _count_below(sorted_values, low)) / max(1, sorted_values.size)


def _count_below(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of ``sorted_values`` lie below each edge, a value within :data:`TIE_TOLERANCE` of the
    edge counting one half (so that it is half in the bin on each side, whatever its last bits)."""
    return (np.searchsorted(sorted_values, edges - TIE_TOLERANCE, "left")
            + np.searchsorted(sorted_values, edges + TIE_TOLERANCE, "right")) / 2


def _frequency_model(index: int, aligned: np.ndarray, shifted: np.ndarray) -> FrequencyModel | None:
    """Fit single vs double quantization to one frequency (``None``: not informative).

    The unquantized coefficient distribution is read from blocks on a shifted grid
    (``shifted``), where the JPEG lattice does not apply; single quantization with step
    q2 gives each value m the mass of ``[(m - 1/2) q2, (m + 1/2) q2)``; double gives it the
    masses of every multiple ``j q1`` that rounds to m. The first step q1 is the one that
    explains the histogram best.
    """
    step = estimate_step(aligned)
    if step < 2:
        return None
    values = quantize(aligned, step)
    span = int(max(np.abs(values).max(), np.abs(shifted).max() / step)) + 2
    bins = np.arange(-span, span + 1)
    density = np.sort(shifted)
    smoothing = 1e-4
    single = _interval_mass(density, (bins - 0.5) * step, (bins + 0.5) * step) + smoothing
    single /= single.sum()
    histogram = np.bincount(values + span, minlength=2 * span + 1)
    best: tuple[float, int, np.ndarray] | None = None
    for first in range(1, 2 * step + 1):
        if first == step:
            continue
        reach = int(np.ceil((span + 1) * step / first)) + 1
        multiples = np.arange(-reach, reach + 1)
        mass = _interval_mass(density, (multiples - 0.5) * first, (multiples + 0.5) * first)
        requantized = np.round(multiples * first / step).astype(np.int64)
        inside = np.abs(requantized) <= span
        double = np.bincount(requantized[inside] + span, weights=mass[inside], minlength=2 * span + 1) + smoothing
        double /= double.sum()
        gain = float((histogram * (np.log(double) - np.log(single))).sum())
        if best is None or gain > best[0] + GAIN_TIE * max(1.0, abs(best[0])):
            best = (gain, first, double)
    if best is None or best[0] <= 0:
        return FrequencyModel(index, step, 0, span, np.zeros(2 * span + 1, np.float32))
    _, first, double = best
    log_ratio = np.clip(np.log(double) - np.log(single), -LLR_CLIP, LLR_CLIP).astype(np.float32)
    return FrequencyModel(index, step, first, span, log_ratio)


def jpeg_traces(rgb: np.ndarray, seed: int = 0) -> JpegTraces:
    """The per-block JPEG trace maps of an ``HxWx3`` ``uint8`` RGB photo.

    Deterministic for a given ``seed`` (which blocks are sampled for estimation).
    """
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("expected an HxWx3 uint8 RGB array (use wsloc_runtime.load_image)")
    rng = np.random.default_rng(seed)
    height, width = rgb.shape[:2]
    rows_total = max(0, (height - BLOCK) // BLOCK)
    empty = np.zeros((max(1, height // BLOCK), max(1, width // BLOCK)), np.float32)
    if rows_total < 2 or (width - BLOCK) // BLOCK < 2:
        return _without_lattice(empty.shape, (0, 0), 0.0)

    # Estimation on a sample of 16-row slabs starting at multiples of 8 rows: each holds one
    # block row at every vertical grid phase, and together they cost a few hundred rows of
    # luminance however large the photo.
    sample_strip = _sample_rows(rows_total, max(8, ESTIMATION_BLOCKS // max(1, width // BLOCK)), rng)
    y_sample = np.concatenate([luminance(rgb[r * BLOCK : r * BLOCK + 2 * BLOCK], np.float64) for r in sample_strip])
    offset, grid_score = _offset_from_slabs(y_sample, rng)
    if grid_score < MIN_GRID_CONTRAST:
        rows, cols = (height - offset[0]) // BLOCK, (width - offset[1]) // BLOCK
        return _without_lattice((max(1, rows), max(1, cols)), offset, grid_score)
    aligned_sample = _slab_blocks(y_sample, offset)
    shifted_sample = _slab_blocks(y_sample, ((offset[0] + 4) % BLOCK, (offset[1] + 4) % BLOCK))
    picks = _sample_rows(aligned_sample.shape[0], ESTIMATION_BLOCKS, rng)
    aligned_sample = aligned_sample[picks]
    shifted_sample = shifted_sample[_sample_rows(shifted_sample.shape[0], ESTIMATION_BLOCKS, rng)]
    models = [_frequency_model(int(f), aligned_sample[:, f], shifted_sample[:, f]) for f in FREQUENCIES]

    # Mapping, strip by strip.
    dy, dx = offset
    rows, cols = (height - dy) // BLOCK, (width - dx) // BLOCK
    double_map = np.zeros((rows, cols), np.float32)
    fit_map = np.zeros((rows, cols), np.float32)
    coded_map = np.zeros((rows, cols), np.float32)
    coded_count = np.zeros((rows, cols), np.float32)
    grid_fit_count = np.zeros((rows, cols), np.float32)
    unclipped = np.zeros((rows, cols), bool)
    lattice_models = [m for m in models if m is not None]
    # The same ratios with the zero bin's set to 0: one lookup gives the coded coefficients' sum.
    coded_tables = {m.index: np.where(np.arange(m.log_ratio.size) == m.span, 0.0, m.log_ratio).astype(np.float32)
                    for m in lattice_models}
    analysed = [m.index for m in lattice_models]
    strip_blocks = STRIP_ROWS // BLOCK
    for first_row in range(0, rows, strip_blocks):
        last_row = min(rows, first_row + strip_blocks)
        top = dy + first_row * BLOCK
        strip = rgb[top : dy + last_row * BLOCK, dx : dx + cols * BLOCK]
        y = luminance(strip, np.float64)
        coefficients = block_dct(y)
        unclipped[first_row:last_row] = _clipped_share(strip) <= MAX_CLIPPED_SHARE
        # One frequency after the other, each contiguous: a frequency of the (rows, cols, 64) array
        # is every 64th number, and reading it that way per step cost more than this one gather.
        by_frequency = np.ascontiguousarray(np.moveaxis(coefficients[..., analysed], -1, 0))
        for model, c in zip(lattice_models, by_frequency):
            coded = is_coded(c, model.step)
            fit_map[first_row:last_row] += np.where(coded, lattice_cosine(c, model.step), np.float32(0.0))
            grid_fit_count[first_row:last_row] += coded
            if model.first_step:
                values = np.clip(quantize(c, model.step), -model.span, model.span)
                index = values + model.span
                double_map[first_row:last_row] += model.log_ratio[index]
                coded_map[first_row:last_row] += coded_tables[model.index][index]
                coded_count[first_row:last_row] += values != 0
    grid_fit_sum = np.where(unclipped, fit_map, 0.0).astype(np.float32)
    grid_fit_count *= unclipped
    if lattice_models:
        fit_map /= len(lattice_models)
    steps = tuple(m.step if m else 1 for m in models)
    firsts = tuple(m.first_step if m else 0 for m in models)
    return JpegTraces(double_map, fit_map, offset, grid_score, steps, firsts, coded_map, coded_count,
                      grid_fit_sum, grid_fit_count)


def _without_lattice(shape: tuple[int, int], offset: tuple[int, int], grid_score: float) -> JpegTraces:
    """Traces of a photo too small or without a JPEG grid: every map all zeros, no steps."""
    def zeros() -> np.ndarray:
        return np.zeros(shape, np.float32)

    return JpegTraces(zeros(), zeros(), offset, grid_score, (), (), zeros(), zeros(), zeros(), zeros())


def _clipped_share(rgb_strip: np.ndarray) -> np.ndarray:
    """Per whole 8x8 block of an RGB strip, the share of pixels with a channel at 0 or 255."""
    rows, cols = rgb_strip.shape[0] // BLOCK, rgb_strip.shape[1] // BLOCK
    inside = cv2.inRange(np.ascontiguousarray(rgb_strip[: rows * BLOCK, : cols * BLOCK]), (1, 1, 1), (254, 254, 254))
    # Area interpolation by exactly 8 is the mean over each block.
    return 1.0 - cv2.resize(inside.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA) / 255.0


def _slab_blocks(y_slabs: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """DCT of the blocks at ``offset`` within 16-row slabs stacked in ``y_slabs``: ``(n, 64)``."""
    dy, dx = offset
    slabs = y_slabs.reshape(-1, 2 * BLOCK, y_slabs.shape[1])[:, dy : dy + BLOCK]
    n, _, width = slabs.shape
    return block_dct(slabs.reshape(n * BLOCK, width), (0, dx)).reshape(-1, BLOCK * BLOCK)


def _edge_phases(differences: np.ndarray, axis_length: int, keep: int) -> list[int]:
    """The ``keep`` grid phases (0..7) with the strongest mean absolute step between neighbours:
    JPEG block edges. ``differences[..., j]`` is the step from position j to j + 1, which a block
    starting at phase (j + 1) mod 8 would cause."""
    energy = np.abs(differences).reshape(-1, axis_length).mean(axis=0)
    phases = (np.arange(axis_length) + 1) % BLOCK
    per_phase = np.array([energy[phases == p].mean() for p in range(BLOCK)])
    return [int(p) for p in np.argsort(-per_phase)[:keep]]


def _offset_from_slabs(y_slabs: np.ndarray, rng: np.random.Generator) -> tuple[tuple[int, int], float]:
    """The grid phase whose blocks sit best on a lattice, and by how much it beats the typical
    candidate (their median): a photo without JPEG history has no phase that stands out.

    Candidates are the phases with the strongest block edges, three per axis (and 0, 0), so the
    lattice is tested at ten phases rather than 64.
    """
    slabs = y_slabs.reshape(-1, 2 * BLOCK, y_slabs.shape[1])
    rows = _edge_phases(np.diff(slabs, axis=1).transpose(0, 2, 1), 2 * BLOCK - 1, 3)
    cols = _edge_phases(np.diff(slabs, axis=2), slabs.shape[2] - 1, 3)
    candidates = sorted({(0, 0), *((dy, dx) for dy in rows for dx in cols)})
    scores = []
    for offset in candidates:
        blocks = _slab_blocks(y_slabs, offset)
        blocks = blocks[_sample_rows(blocks.shape[0], OFFSET_BLOCKS, rng)]
        scores.append(np.mean([lattice_scores(blocks[:, f], _OFFSET_STEPS).max() for f in _OFFSET_PROBE]))
    best = int(np.argmax(scores))
    return candidates[best], float(scores[best] - np.median(scores))


def block_map_to_size(block_map: np.ndarray, offset: tuple[int, int], image_size: tuple[int, int],
                      size: tuple[int, int]) -> np.ndarray:
    """A per-block map placed on the photo's pixel grid and resized to ``size`` (height, width).

    Pixels outside whole blocks (the grid offset and the right/bottom remainder) get 0, "no
    evidence". Area interpolation when shrinking, bilinear when enlarging.
    """
    height, width = image_size
    out_h, out_w = size
    dy, dx = offset
    rows, cols = block_map.shape
    # Work at block resolution: the photo's extent in blocks (fractional borders rounded up).
    extent = np.zeros((int(np.ceil(height / BLOCK)) + 1, int(np.ceil(width / BLOCK)) + 1), np.float32)
    first_row, first_col = (1 if dy else 0), (1 if dx else 0)
    extent[first_row : first_row + rows, first_col : first_col + cols] = block_map
    extent = extent[: int(np.ceil(height / BLOCK)), : int(np.ceil(width / BLOCK))]
    interpolation = cv2.INTER_AREA if out_h <= extent.shape[0] and out_w <= extent.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(extent, (out_w, out_h), interpolation=interpolation)


#: Side, in blocks, of the box filter that pools block evidence (a single block's ratio is noisy).
POOL_BLOCKS = 5


def pooled_double_quantization(traces: JpegTraces) -> np.ndarray:
    """The double-quantization ratio averaged over POOL_BLOCKS x POOL_BLOCKS blocks, per block."""
    return cv2.blur(traces.double_quantization, (POOL_BLOCKS, POOL_BLOCKS))


def single_compression_evidence(traces: JpegTraces) -> np.ndarray:
    """Per block, how strongly the neighbourhood looks singly compressed amid a doubly compressed
    photo: ``max(0, -pooled ratio)``, ``float32`` ``(rows, cols)``, 0 where it looks doubly
    compressed or where the photo shows no double compression at all. One-sided on purpose: a
    pasted region is where this evidence is, not where it is missing."""
    return np.maximum(-pooled_double_quantization(traces), 0.0).astype(np.float32)


def single_compression_map(rgb: np.ndarray) -> np.ndarray:
    """The training-free localization map of this module: where blocks look singly compressed amid
    doubly compressed ones (minus the pooled double-quantization ratio), min-max scaled to
    [0, 1] at the photo's size. All zeros without JPEG history.
    """
    traces = jpeg_traces(rgb)
    return block_map_to_size(single_compression_rank(traces), traces.offset, rgb.shape[:2], rgb.shape[:2])


#: A block's pooled window needs this many coefficients coded to a non-zero value (on average
#: one per block of the 5 x 5 window) for its per-coefficient ratio to count as evidence.
MIN_CODED_PER_BLOCK = 1.0


def _pooled_per_coefficient(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``total / count`` of per-block sums pooled over POOL_BLOCKS x POOL_BLOCKS blocks; NaN where the
    window holds fewer than MIN_CODED_PER_BLOCK coefficients per block."""
    window = (POOL_BLOCKS, POOL_BLOCKS)
    pooled_total, pooled_count = cv2.blur(total, window), cv2.blur(count, window)
    enough = pooled_count >= MIN_CODED_PER_BLOCK
    return np.where(enough, pooled_total / np.maximum(pooled_count, 1e-6), np.nan).astype(np.float32)


def coded_double_quantization(traces: JpegTraces) -> np.ndarray:
    """Per block, the double-vs-single log-likelihood ratio per coefficient coded to a non-zero
    value, pooled over POOL_BLOCKS x POOL_BLOCKS blocks; ``float32`` ``(rows, cols)``, NaN where the
    window holds too few coded coefficients.

    Why per coded coefficient: a coefficient quantized to zero says little about the lattice, and
    the zero bin's ratio follows how flat a block is rather than how often it was saved, so the
    sum over all coefficients reads flat areas as "saved once". The mean over the coded ones does
    not follow texture.
    """
    return _pooled_per_coefficient(traces.coded_log_ratio, traces.coded_count)


def grid_fit_per_coefficient(traces: JpegTraces) -> np.ndarray:
    """Per block, the mean ``cos(2 pi c / q)`` over the coefficients the photo's own lattice codes to
    a non-zero value, pooled over POOL_BLOCKS x POOL_BLOCKS blocks; ``float32`` ``(rows, cols)`` in
    [-1, 1] (about 1 on the lattice, about 0 off it), NaN where the window holds too few coded
    coefficients or the photo has no lattice.

    Why per coded coefficient (as :func:`coded_double_quantization`): a flat block codes almost
    nothing, and counting its silent coefficients as "off the lattice" would mark flat areas.
    """
    return _pooled_per_coefficient(traces.grid_fit_sum, traces.grid_fit_count)


def rank_within_photo(evidence: np.ndarray) -> np.ndarray:
    """``evidence`` min-max scaled to [0, 1] within the photo, ``float32``; all zeros where it is
    constant (nothing stands out)."""
    low, high = float(evidence.min()), float(evidence.max())
    scaled = (evidence - low) / (high - low) if high > low else np.zeros_like(evidence)
    return scaled.astype(np.float32)


def single_compression_rank(traces: JpegTraces) -> np.ndarray:
    """Per block, minus the pooled double-quantization ratio min-max scaled to [0, 1] within the photo:
    1 where a block looks most singly compressed relative to the rest, ``float32`` ``(rows, cols)``;
    all zeros for a photo whose ratio is constant (no JPEG history)."""
    return rank_within_photo(-pooled_double_quantization(traces))
