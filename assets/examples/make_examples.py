"""Rebuild the app's example forgeries and their reference masks, deterministically.

    python assets/examples/make_examples.py [--kodak DIR] [--out assets/examples]

Sources are freely licensed (see README.md here): the Kodak Lossless True Color
Image Suite (never-compressed PNGs; ``--kodak`` or ``$WSLOC_KODAK``, default
``../shared/data/kodak``) and photos bundled with scikit-image.

Every forgery gets a *realistic* compression history, because that difference is the
evidence the method looks for: the host photo went through a camera-like JPEG at
q=95, the pasted region comes from a copy that was saved at q=70 (a photo taken from
the web), and the composite is saved again (JPEG q=92, or PNG). Pasted regions are
shifted off the 8x8 JPEG grid and feathered at the edge, as a careful forger would.
The reference mask (``<name>_mask.png``, white = manipulated) is the pasted region:
the feathered alpha at 0.5 and above. Copy-move masks mark the target only (the
copy), as CASIA's do.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata

HERE = Path(__file__).resolve().parent
DEFAULT_KODAK = Path(os.environ.get("WSLOC_KODAK", HERE.parents[2] / "shared" / "data" / "kodak"))

HOST_QUALITY = 95  # a camera's own JPEG
DONOR_QUALITY = 70  # a photo downloaded from the web
FINAL_QUALITY = 92  # the forger's "Save as"
FEATHER_SIGMA = 1.2  # px: soft edge of the pasted region


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress and decode (libjpeg via OpenCV, 4:2:0): one step of a photo's history."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def polygon_alpha(shape: tuple[int, int], points, scale: float = 1.0, shift=(0, 0)) -> np.ndarray:
    """Feathered [0, 1] alpha of a polygon, after scaling about the origin and shifting by (dx, dy)."""
    mask = np.zeros(shape, np.uint8)
    pts = np.round(np.asarray(points, np.float64) * scale + np.asarray(shift, np.float64)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), FEATHER_SIGMA)


def disc_alpha(shape: tuple[int, int], centre, radius: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, tuple(int(v) for v in centre), int(radius), 255, -1, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), FEATHER_SIGMA)


def paste(host: np.ndarray, donor: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite two aligned images of the same size."""
    a = alpha[..., None]
    return np.clip(host.astype(np.float32) * (1 - a) + donor.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)


def transformed(image: np.ndarray, out_shape: tuple[int, int], scale: float, shift) -> np.ndarray:
    """``image`` scaled about the origin and shifted by (dx, dy), on a canvas of ``out_shape`` (zeros outside)."""
    matrix = np.float32([[scale, 0, shift[0]], [0, scale, shift[1]]])
    return cv2.warpAffine(image, matrix, out_shape[::-1], flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def kodak(directory: Path, number: int) -> np.ndarray:
    path = directory / f"kodim{number:02d}.png"
    if not path.is_file():
        raise SystemExit(f"{path} not found; pass --kodak DIR (the Kodak suite's kodimNN.png files)")
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def splice(host: np.ndarray, donor: np.ndarray, polygon, scale: float, shift) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``polygon`` out of ``donor`` (q=70 history), scale and move it into ``host`` (q=95 history)."""
    host = jpeg(host, HOST_QUALITY)
    moved = transformed(jpeg(donor, DONOR_QUALITY), host.shape[:2], scale, shift)
    alpha = polygon_alpha(host.shape[:2], polygon, scale, shift)
    return paste(host, moved, alpha), alpha


def copy_move(image: np.ndarray, alpha_source: np.ndarray, shift) -> tuple[np.ndarray, np.ndarray]:
    """Copy a region of ``image`` to ``shift`` (dx, dy) within the same photo.

    The copy is taken from a q=70 save of the photo (the forger worked on a downloaded
    copy) and lands off the JPEG grid of the q=95 host.
    """
    host = jpeg(image, HOST_QUALITY)
    moved = transformed(jpeg(image, DONOR_QUALITY), host.shape[:2], 1.0, shift)
    alpha = transformed(alpha_source, host.shape[:2], 1.0, shift)
    return paste(host, moved, alpha), alpha


# Outlines traced by hand on the source photos (x, y in source pixels).
BOAT_KODIM06 = [(128, 300), (160, 285), (205, 280), (250, 290), (330, 288), (372, 300), (420, 298), (470, 300),
                (505, 300), (555, 340), (445, 348), (438, 380), (400, 386), (300, 388), (200, 378), (160, 362),
                (138, 335)]
ROCKET = [(320, 117), (327, 125), (332, 150), (333, 408), (307, 408), (308, 150), (313, 125)]
GREEN_HAT_KODIM03 = [(462, 240), (490, 228), (525, 236), (553, 262), (570, 296), (548, 320), (550, 378), (528, 380),
                     (495, 355), (470, 318), (460, 280)]


def build(kodak_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """name -> (image, reference mask or None for authentic photos)."""
    examples: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    # Spliced: the fishing boat of kodim06, shrunk, set afloat in the lagoon of kodim16.
    image, alpha = splice(kodak(kodak_dir, 16), kodak(kodak_dir, 6), BOAT_KODIM06, 0.8, (123, 115))
    examples["spliced_boat"] = (image, alpha)

    # Spliced: SpaceX's Falcon 9 (scikit-image "rocket") standing in the valley of kodim13.
    image, alpha = splice(kodak(kodak_dir, 13), skdata.rocket(), ROCKET, 0.75, (333, 83))
    examples["spliced_rocket"] = (image, alpha)

    # Spliced: Chelsea the cat's face (scikit-image "chelsea"), small, on the beach of kodim12.
    cat = skdata.chelsea()
    cat_alpha = np.zeros(cat.shape[:2], np.uint8)
    cv2.ellipse(cat_alpha, (222, 160), (118, 112), 0, 0, 360, 255, -1, cv2.LINE_AA)
    host = jpeg(kodak(kodak_dir, 12), HOST_QUALITY)
    moved = transformed(jpeg(cat, DONOR_QUALITY), host.shape[:2], 0.5, (509, 301))
    alpha = cv2.GaussianBlur(transformed(cat_alpha.astype(np.float32) / 255.0, host.shape[:2], 0.5, (509, 301)),
                             (0, 0), FEATHER_SIGMA)
    examples["spliced_cat"] = (paste(host, moved, alpha), alpha)

    # Copy-move: the green cap of kodim03 cloned onto the board below, off the 8x8 grid.
    hats = kodak(kodak_dir, 3)
    image, alpha = copy_move(hats, polygon_alpha(hats.shape[:2], GREEN_HAT_KODIM03), (-285, 110))
    examples["copymove_hats"] = (image, alpha)

    # Copy-move: a coin of scikit-image "coins" cloned over its left neighbour, hiding it.
    coins = np.repeat(skdata.coins()[..., None], 3, axis=2)
    image, alpha = copy_move(coins, disc_alpha(coins.shape[:2], (212, 195), 27), (-57, 0))
    examples["copymove_coins"] = (image, alpha)

    # Authentic: camera JPEG, saved again; the same history everywhere.
    examples["authentic_lighthouse"] = (jpeg(kodak(kodak_dir, 21), HOST_QUALITY), None)
    examples["authentic_coffee"] = (jpeg(skdata.coffee(), HOST_QUALITY), None)
    return examples


#: Final container of each example: PNG keeps the gray coins lossless, the rest are JPEG q=92.
PNG_EXAMPLES = {"copymove_coins"}


def write(examples, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (image, alpha) in examples.items():
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if name in PNG_EXAMPLES:
            path = out / f"{name}.png"
            cv2.imwrite(str(path), bgr[..., 0] if name == "copymove_coins" else bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        else:
            path = out / f"{name}.jpg"
            cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, FINAL_QUALITY])
        written.append(path)
        if alpha is not None:
            mask_path = out / f"{name}_mask.png"
            cv2.imwrite(str(mask_path), np.where(alpha >= 0.5, 255, 0).astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            written.append(mask_path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", type=Path, default=DEFAULT_KODAK, help="directory of kodimNN.png")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args()
    for path in write(build(args.kodak), args.out):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        print(f"{path.name:32s} {path.stat().st_size / 1024:7.1f} KiB  sha256 {digest}")


if __name__ == "__main__":
    main()
