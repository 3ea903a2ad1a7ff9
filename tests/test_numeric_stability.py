"""Results that do not flip on float noise (issue 33).

The JPEG traces decide things (each frequency's quantization step, the first step of a double
quantization, the grid phase) by comparing DCT coefficients with thresholds and with each other.
In float32, two processors' BLAS kernels gave coefficients 1e-4 apart and moved the coins example's
mask from 8.8% to 4.9% of the photo. The traces now compute in float64: these tests perturb every
coefficient by far more than two float64 kernels differ by and check that no decision moves. The
whole pipeline under two real numeric configurations is measured by studies/numeric_stability.py.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from studies.compare_evaluations import compare_masks, main as compare_main, mask_agreement
from tests.conftest import REPO_ROOT
from wsloc_runtime import jpeg_traces
from wsloc_runtime.imageio import load_image

EXAMPLES = REPO_ROOT / "assets" / "examples"
#: Two float64 summation orders of 64 products differ by at most about 64 eps relative; the noise
#: below is 100 times that.
RELATIVE_NOISE = 100 * 64 * np.finfo(np.float64).eps


def _noisy_dct(monkeypatch, seed: int) -> None:
    original = jpeg_traces.block_dct
    rng = np.random.default_rng(seed)

    def perturbed(y, offset=(0, 0)):
        coefficients = original(y, offset)
        return coefficients * (1.0 + RELATIVE_NOISE * rng.choice([-1.0, 1.0], coefficients.shape))

    monkeypatch.setattr(jpeg_traces, "block_dct", perturbed)


@pytest.mark.parametrize("name", ["copymove_coins.png", "copymove_hats.jpg", "spliced_boat.jpg"])
def test_trace_decisions_do_not_move_under_last_bit_noise(monkeypatch, name):
    rgb = load_image(EXAMPLES / name)
    clean = jpeg_traces.jpeg_traces(rgb)
    assert clean.has_grid and any(clean.first_steps), "the example should carry a JPEG history to decide on"
    for seed in (1, 2):
        with monkeypatch.context() as patch:
            _noisy_dct(patch, seed)
            noisy = jpeg_traces.jpeg_traces(rgb)
        assert (noisy.offset, noisy.steps, noisy.first_steps) == (clean.offset, clean.steps, clean.first_steps)
        assert noisy.grid_score == pytest.approx(clean.grid_score, rel=1e-9)
        # Per-block maps are float32 sums of at most 45 terms: equal within 45 float32 ulps of the
        # largest term (the log-likelihood ratios are clipped to +-LLR_CLIP).
        tolerance = 45 * np.finfo(np.float32).eps * jpeg_traces.LLR_CLIP
        for field in ("double_quantization", "lattice_fit", "coded_log_ratio", "grid_fit_sum"):
            np.testing.assert_allclose(getattr(noisy, field), getattr(clean, field), rtol=0, atol=tolerance,
                                       err_msg=field)


def test_traces_compute_the_coefficients_in_float64():
    y = jpeg_traces.luminance(load_image(EXAMPLES / "copymove_coins.png"), np.float64)
    assert y.dtype == np.float64 and jpeg_traces.block_dct(y).dtype == np.float64
    # The float64 luminance is the BT.601 sum in thousandths, an exact integer, divided once: the
    # correctly rounded value of the exact luminance, the same bits on every processor.
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [17, 200, 93]]], np.uint8)
    exact = [(299 * r + 587 * g + 114 * b - 128_000) / 1000 for r, g, b in pixels[0].tolist()]
    np.testing.assert_array_equal(jpeg_traces.luminance(pixels, np.float64)[0], exact)


def test_mask_agreement_is_the_f1_of_one_mask_against_the_other():
    first = np.zeros((4, 4), bool)
    second = np.zeros((4, 4), bool)
    assert mask_agreement(first, second) == 1.0  # both empty: they agree
    first[0, :2] = True
    assert mask_agreement(first, second) == 0.0
    second[0, 1:3] = True
    assert mask_agreement(first, second) == pytest.approx(2 * 1 / 4)
    with pytest.raises(ValueError, match="shape"):
        mask_agreement(first, np.zeros((3, 3), bool))


def test_evaluate_writes_its_masks_and_compare_reads_them(tmp_path, capsys):
    """``evaluate --masks-out`` writes each scored mask; ``compare_evaluations --masks`` counts the
    photos whose masks agree, here one identical and one changed."""
    from wsloc_runtime.cli import main as wsloc_main

    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["image", "mask"])
        writer.writerow([EXAMPLES / "copymove_coins.png", EXAMPLES / "copymove_coins_mask.png"])
        writer.writerow([EXAMPLES / "spliced_boat.jpg", EXAMPLES / "spliced_boat_mask.png"])
    for run in ("before", "after"):
        assert wsloc_main(["-q", "evaluate", "--pairs", str(pairs), "--map", "ones",
                           "--out", str(tmp_path / run / "s.json"), "--masks-out", str(tmp_path / run / "masks" / "s")]) == 0
    written = sorted(p.name for p in (tmp_path / "before" / "masks" / "s").glob("*.png"))
    assert written == ["00000_copymove_coins.png", "00001_spliced_boat.png"]
    coins = np.asarray(Image.open(tmp_path / "before" / "masks" / "s" / written[0]))
    assert coins.shape == load_image(EXAMPLES / "copymove_coins.png").shape[:2] and (coins == 255).all()

    # Change one photo's mask in the second run: half of it emptied.
    changed = tmp_path / "after" / "masks" / "s" / written[1]
    mask = np.asarray(Image.open(changed)).copy()
    mask[: mask.shape[0] // 2] = 0
    Image.fromarray(mask).save(changed)
    values = compare_masks(tmp_path / "before" / "masks" / "s", tmp_path / "after" / "masks" / "s")
    assert values[0] == 1.0 and values[1] == pytest.approx(2 * 0.5 / 1.5, abs=0.01)
    assert compare_main([str(tmp_path / "before"), str(tmp_path / "after"), "--masks"]) == 0
    out = capsys.readouterr().out
    assert "masks agreeing (F1 >= 0.98): 1/2 photos" in out and "same verdict: 2/2 photos" in out
    report = json.loads((tmp_path / "before" / "s.json").read_text())
    assert len(report["per_image"]) == 2
