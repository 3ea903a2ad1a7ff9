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


#: The overlay's opacity where the map is strongest (1); weaker places are more transparent.
DEFAULT_OPACITY = 0.7


def overlay(image: np.ndarray, activation: np.ndarray, opacity: float = DEFAULT_OPACITY,
            colormap: int = HEATMAP_COLORMAP) -> np.ndarray:
    """Blend a heatmap over the photo, each pixel as opaque as the map is strong there.

    Args:
        image: ``(h, w, 3)`` ``uint8`` RGB photo.
        activation: ``(H, W)`` map in [0, 1]; enlarged bilinearly to the photo's size when it differs.
        opacity: in [0, 1]: the heatmap's opacity where the map is 1; where it is ``a`` the
            opacity is ``opacity * a``, so places with no sign of editing show the photo itself
            (a uniform blend darkened the whole photo with the colour map's black and hid it).

    Returns:
        ``(h, w, 3)`` ``uint8`` RGB.
    """
    if image.shape[:2] != activation.shape:
        activation = cv2.resize(activation.astype(np.float32), image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    opacity = float(np.clip(opacity, 0.0, 1.0))
    values = np.clip(np.nan_to_num(activation.astype(np.float32, copy=False)), 0.0, 1.0)
    alpha = (values * opacity)[..., None]
    photo = image.astype(np.float32)
    blended = photo + (heatmap(values, colormap).astype(np.float32) - photo) * alpha
    return (blended + 0.5).astype(np.uint8)  # in [0, 255]: a convex mix of two uint8 pictures


#: Width of the colour bar beside a map, as a fraction of the map's height (at least 14 px).
COLOUR_BAR_FRACTION = 0.05


def colour_bar(height: int, width: int, colormap: int = HEATMAP_COLORMAP) -> np.ndarray:
    """A vertical bar of the colour map, 1 (strongest) at the top: ``(height, width, 3)`` ``uint8`` RGB."""
    if height < 2 or width < 1:
        raise ValueError(f"colour_bar: needs height >= 2 and width >= 1, got {height}x{width}")
    column = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None]
    return np.repeat(heatmap(column, colormap), width, axis=1)


def with_colour_bar(picture: np.ndarray, colormap: int = HEATMAP_COLORMAP, top: str = "strong",
                    bottom: str = "none") -> np.ndarray:
    """``picture`` with the colour map's bar on its right, labelled ``top`` (map 1) and ``bottom``
    (map 0), on a white strip: ``(h, w + strip, 3)`` ``uint8`` RGB. The picture's pixels are kept."""
    picture = np.asarray(picture, np.uint8)
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)
    height = picture.shape[0]
    bar_width = max(14, round(height * COLOUR_BAR_FRACTION))
    scale = max(0.35, height / 900)
    thickness = max(1, round(scale * 1.5))
    text_width = max(cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
                     for label in (top, bottom))
    gap = max(4, bar_width // 3)
    strip = np.full((height, gap + bar_width + gap + text_width + gap, 3), 255, np.uint8)
    margin = max(6, height // 40)  # the labels sit inside the bar's height
    strip[margin:height - margin, gap:gap + bar_width] = colour_bar(height - 2 * margin, bar_width, colormap)
    text_height = cv2.getTextSize(top, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][1]
    x = gap + bar_width + gap
    cv2.putText(strip, top, (x, margin + text_height), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), thickness,
                cv2.LINE_AA)
    cv2.putText(strip, bottom, (x, height - margin), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), thickness,
                cv2.LINE_AA)
    return np.concatenate([picture, strip], axis=1)


def legend_picture(width: int = 512, colormap: int = HEATMAP_COLORMAP) -> np.ndarray:
    """The legend PNG written beside the heatmap and overlay: a horizontal colour bar from 0 (left)
    to 1 (right) with what each end means. ``(h, width, 3)`` ``uint8`` RGB."""
    if width < 200:
        raise ValueError(f"legend_picture: width must be at least 200 px, got {width}")
    bar_height, pad = 28, 10
    canvas = np.full((bar_height + 3 * pad + 36, width, 3), 255, np.uint8)
    row = np.linspace(0.0, 1.0, width - 2 * pad, dtype=np.float32)[None, :]
    canvas[pad:pad + bar_height, pad:width - pad] = np.repeat(heatmap(row, colormap), bar_height, axis=0)
    font, scale, ink = cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20)
    y = pad + bar_height + pad + 12
    left, right = "0: no sign of editing", "1: strong signs"
    cv2.putText(canvas, left, (pad, y), font, scale, ink, 1, cv2.LINE_AA)
    right_width = cv2.getTextSize(right, font, scale, 1)[0][0]
    cv2.putText(canvas, right, (width - pad - right_width, y), font, scale, ink, 1, cv2.LINE_AA)
    cv2.putText(canvas, "Colours of the heatmap and the overlay (" + legend(colormap).split(";")[0] + ")",
                (pad, y + 20), font, 0.4, ink, 1, cv2.LINE_AA)
    return canvas


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


#: Colour of the lines that join a copy to its original (the colour maps draw no pure green).
CLONE_LINE_COLOUR = (0, 255, 0)


def draw_clone_lines(picture: np.ndarray, segments, scale: float = 1.0, colour=CLONE_LINE_COLOUR) -> np.ndarray:
    """A copy of ``picture`` with a line from each matched point to its copy and a dot at each end.

    Args:
        picture: ``(h, w, 3)`` ``uint8`` RGB.
        segments: ``[((x0, y0), (x1, y1)), ...]`` in working-size pixels (the copy-move evidence's
            ``details["segments"]``).
        scale: ``picture``'s size over the working size (1 for a working-size picture).
    """
    result = np.ascontiguousarray(picture).copy()
    thickness = max(1, round(max(result.shape[:2]) / 500))
    for (x0, y0), (x1, y1) in segments or ():
        start = (round(x0 * scale), round(y0 * scale))
        end = (round(x1 * scale), round(y1 * scale))
        cv2.line(result, start, end, colour, thickness, cv2.LINE_AA)
        for point in (start, end):
            cv2.circle(result, point, 2 * thickness + 1, colour, -1, cv2.LINE_AA)
    return result


def mask_at(values: np.ndarray, threshold: float) -> np.ndarray:
    """The map cut at ``threshold``: ``values >= threshold``, ``bool`` of ``values``' shape
    (the pipeline's own mask is this at :data:`~wsloc_runtime.pipeline.MASK_THRESHOLD`)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"mask threshold must be in [0, 1], got {threshold}")
    return np.asarray(values) >= np.float32(threshold)


def outline_scaled(picture: np.ndarray, mask: np.ndarray, colour=(255, 40, 40)) -> np.ndarray:
    """``picture`` (any size) with the outline of a working-size ``mask`` drawn on it: the contours
    are found at the mask's size and scaled, so a 48 MP picture costs no 48 MP mask. A copy."""
    result = np.ascontiguousarray(picture).copy()
    if not mask.any():
        return result
    scale_x = picture.shape[1] / mask.shape[1]
    scale_y = picture.shape[0] / mask.shape[0]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    scaled = [np.round(c.astype(np.float32) * np.float32([scale_x, scale_y])).astype(np.int32) for c in contours]
    cv2.drawContours(result, scaled, -1, colour, max(2, round(max(picture.shape[:2]) / 400)), cv2.LINE_AA)
    return result


def fit_within(picture: np.ndarray, max_side: int) -> np.ndarray:
    """``picture`` reduced (INTER_AREA) so that its longest side is at most ``max_side``; itself
    when it already fits. Any ``(h, w[, c])`` ``uint8`` array."""
    if max_side < 1:
        raise ValueError(f"fit_within: max_side must be at least 1, got {max_side}")
    height, width = picture.shape[:2]
    factor = max_side / max(height, width)
    if factor >= 1.0:
        return picture
    return cv2.resize(picture, (max(1, round(width * factor)), max(1, round(height * factor))),
                      interpolation=cv2.INTER_AREA)
