"""Pictures for people: heatmaps, overlays, region maps. Pure numpy/OpenCV, uint8 RGB out."""

from __future__ import annotations

import cv2
import numpy as np

from .regions import Regions


#: The colour map every heatmap and overlay is drawn with (unless told otherwise).
HEATMAP_COLORMAP = cv2.COLORMAP_INFERNO
#: What the colours of a colour map mean, for the legend beside a picture drawn with it:
#: (strongest, middle, weakest). One source of truth with the pictures: a legend is read from the
#: colour map that drew its picture (:func:`legend`), and a test checks each named colour against
#: the colour map itself.
COLORMAP_LEGENDS = {
    cv2.COLORMAP_INFERNO: ("pale yellow", "orange and red", "purple to black"),
    cv2.COLORMAP_JET: ("dark red", "yellow and cyan", "dark blue"),
}


def legend(colormap: int = HEATMAP_COLORMAP) -> str:
    """The colours of ``colormap`` in words: ``"pale yellow strongest, then orange and red; purple
    to black weak or none"`` for inferno."""
    try:
        strong, middle, weak = COLORMAP_LEGENDS[colormap]
    except KeyError:
        raise ValueError(f"no legend for colour map {colormap}: add it to COLORMAP_LEGENDS") from None
    return f"{strong} strongest, then {middle}; {weak} weak or none"


def heatmap_levels(activation: np.ndarray) -> np.ndarray:
    """A [0, 1] map as the colour map's 256 levels: ``HxW`` ``uint8``, 0 for 0 and 255 for 1."""
    return np.clip(np.nan_to_num(activation) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def heatmap_palette(colormap: int = HEATMAP_COLORMAP) -> np.ndarray:
    """The colour of each of the 256 levels, ``(256, 3)`` ``uint8`` RGB: ``heatmap(a)`` is
    ``heatmap_palette()[heatmap_levels(a)]``."""
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], colormap)[:, 0, ::-1].copy()


def heatmap(activation: np.ndarray, colormap: int = HEATMAP_COLORMAP) -> np.ndarray:
    """Colour a [0, 1] map. Returns ``HxWx3`` ``uint8`` RGB."""
    return cv2.cvtColor(cv2.applyColorMap(heatmap_levels(activation), colormap), cv2.COLOR_BGR2RGB)


def overlay(image: np.ndarray, activation: np.ndarray, opacity: float = 0.5,
            colormap: int = HEATMAP_COLORMAP) -> np.ndarray:
    """Blend a heatmap over the photo; ``opacity`` 0 shows the photo, 1 the heatmap."""
    if image.shape[:2] != activation.shape:
        activation = cv2.resize(activation.astype(np.float32), image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    opacity = float(np.clip(opacity, 0.0, 1.0))
    return cv2.addWeighted(image, 1.0 - opacity, heatmap(activation, colormap), opacity, 0.0)


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A binary mask as a white-on-black ``uint8`` image (255 = manipulated)."""
    return np.where(mask, 255, 0).astype(np.uint8)


def outline_mask(image: np.ndarray, mask: np.ndarray, colour=(255, 40, 40), tint: float = 0.35) -> np.ndarray:
    """The photo with the mask tinted and outlined, for judging a mask against the picture."""
    if image.shape[:2] != mask.shape:
        mask = cv2.resize(mask.astype(np.uint8), image.shape[1::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
    result = image.copy()
    tinted = (result[mask] * (1.0 - tint) + np.array(colour) * tint).astype(np.uint8)
    result[mask] = tinted
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(max(image.shape[:2]) / 400))
    cv2.drawContours(result, contours, -1, colour, thickness)
    return result


def region_map(image: np.ndarray, regions: Regions, chosen: int = -1, seed: int = 0) -> np.ndarray:
    """Each region in its own colour over a faded photo; the chosen region outlined in white."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 230, size=(max(len(regions), 1), 3)).astype(np.float32)
    canvas = image.astype(np.float32) * 0.35
    for index, mask in enumerate(regions.masks):
        canvas[mask] = canvas[mask] * 0.4 + colours[index] * 0.6
    result = np.clip(canvas, 0, 255).astype(np.uint8)
    if 0 <= chosen < len(regions):
        contours, _ = cv2.findContours(regions.masks[chosen].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(result, contours, -1, (255, 255, 255), max(2, round(max(image.shape[:2]) / 250)))
    return result
