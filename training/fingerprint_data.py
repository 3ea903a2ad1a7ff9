"""Training material of the processing fingerprint (:mod:`training.fingerprint`): numpy + OpenCV only.

Everything here is a pure function of its arguments and a seed, so a batch is a function of
``(sources, seed, step)`` alone: training resumes exactly by asking for the batches from the saved
step on, and worker processes can prepare them ahead of the trainer in any order.

* :func:`list_sources`: the pristine photos (BSDS500, Kodak, casia1-train's AUTHENTIC photos,
  cocoglide-dev's ``*_real.png``), split by photo into train / validation.
* :func:`sample_history`: one random processing history (a JSON-ready dict): a region
  re-rendered from a lower resolution, a resize by 0.3-1.0 with one of five kernels, blur /
  sharpen / denoise, gamma, noise, JPEG 50-100 once or twice with a grid shift, WebP.
* :func:`sample_tail`: a platform's resize and re-save, shared by both histories of a set
  (``BatchShape.tail`` of the sets), applied after them.
* :func:`apply_history`: that history applied to an RGB crop, returned as luminance.
* :func:`make_batch`: ``photos x histories x patches`` luminance patches and their group labels
  (a group = one history on a set of ``share`` photos: its tiles are positives across content;
  the same photos under their other histories, and other sets, are negatives).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

KERNELS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
KERNEL_NAMES = tuple(KERNELS)

# The luminance weights (ITU-R BT.601, as JPEG) and the network input scaling, shared with the
# runtime (wsloc_runtime.evidence.fingerprint reads them back from the ONNX metadata).
LUMA = (0.299, 0.587, 0.114)
INPUT_OFFSET = 0.5  # x = Y / 255 - 0.5


@dataclass(frozen=True)
class BatchShape:
    photos: int = 16  # distinct photos per batch
    histories: int = 2  # histories per photo (same photo, other history = hard negative)
    patches: int = 4  # tiles per (photo, history) crop
    patch: int = 64  # patch side in pixels (a multiple of the network's stride)
    crop: int = 128  # side of the processed crop the patches are drawn from
    share: int = 2  # photos that go through the same history (positives across content)
    tail: float = 0.0  # chance that a set's histories end in one shared platform tail (sample_tail)

    @property
    def batch(self) -> int:
        return self.photos * self.histories * self.patches

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# sources


def list_sources(data_root: str | Path) -> list[Path]:
    """The pristine photos under ``data_root`` (the shared data folder), sorted; missing sets skipped."""
    root = Path(data_root)
    paths: list[Path] = []
    paths += sorted((root / "bsds500" / "images").glob("*/*.jpg"))
    paths += sorted((root / "kodak").glob("kodim*.png"))
    csv = root / "casia1-train.csv"
    if csv.is_file():
        for line in csv.read_text().splitlines()[1:]:
            name, _, label = line.strip().rpartition(",")
            if label.strip() == "0":
                paths.append(root / name)
    paths += sorted((root / "cocoglide" / "dev").glob("*_real.png"))
    return [p for p in paths if p.is_file()]


# Kodak photos kept out of training: the shipped model's test re-renders a region of these.
HELD_OUT_KODAK = ("kodim21.png", "kodim22.png", "kodim23.png", "kodim24.png")


def is_validation(path: Path, fraction: float = 0.04) -> bool:
    """A fixed split by photo name: held-out Kodak photos and ``fraction`` of the rest."""
    if path.name in HELD_OUT_KODAK:
        return True
    digest = hashlib.sha1(f"{path.parent.name}/{path.name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def split_sources(paths: list[Path], fraction: float = 0.04) -> tuple[list[Path], list[Path]]:
    train = [p for p in paths if not is_validation(p, fraction)]
    val = [p for p in paths if is_validation(p, fraction)]
    return train, val


def read_rgb(path: str | Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------------------------
# histories


def sample_history(rng: np.random.Generator) -> dict:
    """One random processing history, as a JSON-ready dict (an empty dict = left untouched)."""
    h: dict = {}
    if rng.random() < 0.2:
        h["lowres"] = {
            "factor": round(float(rng.uniform(2.0, 4.0)), 3),
            "down": str(rng.choice(["area", "linear", "cubic"])),
            "up": str(rng.choice(["linear", "cubic", "lanczos"])),
        }
    if rng.random() < 0.6:
        h["resize"] = {"scale": round(float(rng.uniform(0.3, 1.0)), 3), "kernel": str(rng.choice(KERNEL_NAMES))}
    r = rng.random()
    if r < 0.15:
        h["blur"] = {"sigma": round(float(rng.uniform(0.4, 1.5)), 3)}
    elif r < 0.30:
        h["sharpen"] = {"amount": round(float(rng.uniform(0.3, 1.5)), 3), "sigma": round(float(rng.uniform(0.5, 1.5)), 3)}
    elif r < 0.40:
        kind = str(rng.choice(["median", "bilateral", "nlmeans"]))
        h["denoise"] = {"kind": kind, "strength": round(float(rng.uniform(3.0, 12.0)), 2)}
    if rng.random() < 0.2:
        h["gamma"] = round(float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))), 3)
    if rng.random() < 0.2:
        h["noise"] = round(float(rng.uniform(0.5, 4.0)), 3)
    r = rng.random()
    codecs: list[dict] = []
    if r < 0.75:
        codecs.append({"kind": "jpeg", "quality": int(rng.integers(50, 101)), "shift": [0, 0]})
        if rng.random() < 0.35:
            codecs.append({"kind": "jpeg", "quality": int(rng.integers(50, 101)),
                           "shift": [int(rng.integers(0, 8)), int(rng.integers(0, 8))]})
        elif rng.random() < 0.1:
            codecs.append({"kind": "webp", "quality": int(rng.integers(50, 101)), "shift": [0, 0]})
    elif r < 0.88:
        codecs.append({"kind": "webp", "quality": int(rng.integers(50, 101)), "shift": [0, 0]})
    if codecs:
        h["codecs"] = codecs
    return h


def sample_tail(rng: np.random.Generator) -> dict:
    """What a platform does to every photo it receives, after whatever happened before: a resize
    by 0.6-0.95 and a JPEG (or WebP) save. Appended to both histories of a set (``history["then"]``),
    it teaches the embedding to tell earlier histories apart under one common last one, which is
    what a spliced photo that was then resized and re-saved as a whole shows."""
    codec = "jpeg" if rng.random() < 0.85 else "webp"
    return {"resize": {"scale": round(float(rng.uniform(0.6, 0.95)), 3), "kernel": str(rng.choice(["linear", "area", "cubic"]))},
            "codecs": [{"kind": codec, "quality": int(rng.integers(70, 96)), "shift": [0, 0]}]}


def history_scale(history: dict) -> float:
    """The history's overall resize factor (its own, times its tail's)."""
    own = float(history.get("resize", {}).get("scale", 1.0))
    return own * (history_scale(history["then"]) if "then" in history else 1.0)


def codec_count(history: dict) -> int:
    return len(history.get("codecs", [])) + (codec_count(history["then"]) if "then" in history else 0)


def _with_scale(history: dict, scale: float) -> dict:
    """``history`` with its overall scale raised to ``scale``: its own resize first (up to none),
    then its tail's."""
    tail_scale = history_scale(history["then"]) if "then" in history else 1.0
    own = min(1.0, scale / tail_scale)
    history = {**history, "resize": {**history.get("resize", {"kernel": "area"}), "scale": round(own + 1e-4, 4)}}
    if "then" in history and own * tail_scale < scale:
        tail = history["then"]
        history["then"] = {**tail, "resize": {**tail["resize"], "scale": round(scale / own + 1e-4, 4)}}
    return history


def _resize(img: np.ndarray, size_wh: tuple[int, int], kernel: str) -> np.ndarray:
    return cv2.resize(img, size_wh, interpolation=KERNELS[kernel])


def _codec(rgb: np.ndarray, kind: str, quality: int) -> np.ndarray:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, int(min(quality, 100))])
    if not ok:
        raise RuntimeError(f"{kind} encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def apply_history(rgb: np.ndarray, history: dict, rng: np.random.Generator | None = None) -> np.ndarray:
    """``history`` applied to an RGB ``uint8`` image; returns the processed RGB ``uint8``.

    ``rng`` draws the noise (a fixed seed when omitted). Order: low-resolution re-render, resize,
    filter, gamma, noise, codecs (each later codec after cropping its grid shift off the top-left).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    img = np.ascontiguousarray(rgb)
    h, w = img.shape[:2]
    if "lowres" in history:
        lr = history["lowres"]
        small = (max(1, round(w / lr["factor"])), max(1, round(h / lr["factor"])))
        img = _resize(_resize(img, small, lr["down"]), (w, h), lr["up"])
    if "resize" in history and history["resize"]["scale"] < 1.0:
        s = history["resize"]["scale"]
        img = _resize(img, (max(1, round(w * s)), max(1, round(h * s))), history["resize"]["kernel"])
    if "blur" in history:
        img = cv2.GaussianBlur(img, (0, 0), history["blur"]["sigma"])
    if "sharpen" in history:
        sp = history["sharpen"]
        blurred = cv2.GaussianBlur(img, (0, 0), sp["sigma"]).astype(np.float32)
        img = np.clip(img + sp["amount"] * (img.astype(np.float32) - blurred) + 0.5, 0, 255).astype(np.uint8)
    if "denoise" in history:
        dn = history["denoise"]
        if dn["kind"] == "median":
            img = cv2.medianBlur(img, 3)
        elif dn["kind"] == "bilateral":
            img = cv2.bilateralFilter(img, 5, dn["strength"] * 3, 3)
        else:
            img = cv2.fastNlMeansDenoisingColored(img, None, dn["strength"], dn["strength"], 5, 11)
    if "gamma" in history:
        lut = np.clip(255.0 * (np.arange(256) / 255.0) ** history["gamma"] + 0.5, 0, 255).astype(np.uint8)
        img = lut[img]
    if "noise" in history:
        noisy = img.astype(np.float32) + rng.normal(0.0, history["noise"], img.shape).astype(np.float32)
        img = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    for codec in history.get("codecs", []):
        dy, dx = codec["shift"]
        if dy or dx:
            img = img[dy:, dx:]
        img = _codec(np.ascontiguousarray(img), codec["kind"], codec["quality"])
    if "then" in history:
        img = apply_history(img, history["then"], rng)
    return img


def luminance(rgb: np.ndarray) -> np.ndarray:
    """The network input of an RGB ``uint8`` image: ``(h, w)`` ``float32``, ``Y / 255 - 0.5``."""
    rgb = np.asarray(rgb, np.float32)
    y = LUMA[0] * rgb[..., 0] + LUMA[1] * rgb[..., 1] + LUMA[2] * rgb[..., 2]
    return y / 255.0 - INPUT_OFFSET


def processed_crop(rgb: np.ndarray, history: dict, crop: int, rng: np.random.Generator,
                   anchor: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """A ``crop x crop`` luminance crop of ``rgb`` after ``history`` (its resize clamped so the photo suffices).

    The source region is cut at an offset (so the photo's own JPEG grid falls at a random
    phase), processed, then cropped again. ``anchor = (fy, fx, gy, gx)`` in [0, 1] places both cuts
    (a share of the free room); the same anchor under several histories cuts the same content.
    Default: drawn from ``rng``.
    """
    if anchor is None:
        anchor = tuple(float(v) for v in rng.random(4))
    h, w = rgb.shape[:2]
    margin = 8 * codec_count(history) + 2
    need = crop + margin
    scale = history_scale(history)
    min_scale = need / min(h, w)
    if min_scale > 1.0:
        raise ValueError(f"photo {w}x{h} is smaller than a {need} px crop")
    if scale < min_scale:
        scale = min_scale
        if "then" in history:
            history = _with_scale(history, scale)
        else:
            history = {**history, "resize": {**history["resize"], "scale": scale}}
    side = min(min(h, w), math.ceil(need / scale) + 2)
    y0 = int(round(anchor[0] * (h - side)))
    x0 = int(round(anchor[1] * (w - side)))
    out = apply_history(rgb[y0:y0 + side, x0:x0 + side], history, rng)
    oh, ow = out.shape[:2]
    y1 = int(round(anchor[2] * (oh - crop)))
    x1 = int(round(anchor[3] * (ow - crop)))
    return luminance(out[y1:y1 + crop, x1:x1 + crop])


def patch_offsets(shape: BatchShape) -> list[tuple[int, int]]:
    """Top-left corners of the patches in a crop: tiles of a grid, as far apart as the crop allows,
    so that no two positives share a pixel when ``crop >= 2 * patch`` (no content shortcut)."""
    per_side = math.ceil(math.sqrt(shape.patches))
    room = shape.crop - shape.patch
    steps = [round(room * i / max(per_side - 1, 1)) for i in range(per_side)]
    grid = [(y, x) for y in steps for x in steps]
    return grid[: shape.patches]


def clamp_history(history: dict, shapes: list[tuple[int, int]], crop: int) -> dict:
    """``history`` with its resize scale raised so that every photo of ``shapes`` still gives a crop."""
    need = crop + 8 * codec_count(history) + 2
    lowest = max(need / min(h, w) for h, w in shapes)
    if "then" in history:
        return _with_scale(history, lowest + 1e-3) if history_scale(history) < lowest else history
    if "resize" in history and history["resize"]["scale"] < lowest:
        return {**history, "resize": {**history["resize"], "scale": round(lowest + 1e-3, 4)}}
    return history


def make_batch(sources: list, seed: int, step: int, shape: BatchShape = BatchShape(),
               loader=read_rgb) -> tuple[np.ndarray, np.ndarray]:
    """The training batch number ``step`` of run ``seed``: a pure function of its arguments.

    The picked photos form sets of ``shape.share``; each set goes through ``shape.histories``
    different histories, every photo of the set through each of them, each photo cut at one
    place for all its histories; each processed crop gives ``shape.patches`` tiles. A group is one
    history on one set: its tiles show different photos and different parts of them, so only
    the history ties them (positives); the same tiles under the set's other histories show the
    same content (negatives), so the content cannot tell them apart either.

    Returns ``(patches, groups)``: ``(N, 1, patch, patch)`` ``float32`` luminance patches in the
    order set, history, photo, tile, and ``(N,)`` ``int64`` group ids (``set * histories + history``).
    """
    rng = np.random.default_rng([int(seed), int(step)])
    picks = rng.choice(len(sources), size=shape.photos, replace=len(sources) < shape.photos)
    patches = np.empty((shape.batch, 1, shape.patch, shape.patch), np.float32)
    groups = np.empty((shape.batch,), np.int64)
    offsets = patch_offsets(shape)
    share = max(1, shape.share)
    i = 0
    for set_index, start in enumerate(range(0, shape.photos, share)):
        photos = [loader(sources[int(index)]) for index in picks[start:start + share]]
        anchors = [tuple(float(v) for v in rng.random(4)) for _ in photos]
        # Drawn only when asked for, so that the batches of a run without tails stay as they were.
        tail = sample_tail(rng) if shape.tail > 0 and rng.random() < shape.tail else None
        seen: list[dict] = []
        for k in range(shape.histories):
            history = sample_history(rng)
            while history in seen:  # the histories of a set must differ
                history = sample_history(rng)
            seen.append(history)
            if tail is not None:
                history = {**history, "then": tail}
            history = clamp_history(history, [p.shape[:2] for p in photos], shape.crop)
            for rgb, anchor in zip(photos, anchors):
                y = processed_crop(rgb, history, shape.crop, rng, anchor)
                for oy, ox in offsets:
                    patches[i, 0] = y[oy:oy + shape.patch, ox:ox + shape.patch]
                    groups[i] = set_index * shape.histories + k
                    i += 1
    return patches, groups


# --------------------------------------------------------------------------------------------
# the test material: a region re-rendered from a lower resolution


def rerender_region(rgb: np.ndarray, box: tuple[int, int, int, int], factor: float = 4.0) -> np.ndarray:
    """``rgb`` with ``box = (y0, x0, y1, x1)`` replaced by itself rendered at ``1/factor`` resolution."""
    y0, x0, y1, x1 = box
    out = rgb.copy()
    region = rgb[y0:y1, x0:x1]
    small = cv2.resize(region, (max(1, round((x1 - x0) / factor)), max(1, round((y1 - y0) / factor))),
                       interpolation=cv2.INTER_AREA)
    out[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
    return out
