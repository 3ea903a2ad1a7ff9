"""The public API: ``Localizer`` (construct once) and ``LocalizationResult`` (one per image).

Every step of ``shared/design/method.md``:

1. signed error levels at native resolution, area-resized to each variant's input;
2. each WCBnet variant -> logit, F_c, dz/dF_c (on each test-time view: the input and its
   mirror image by default);
3. Grad-CAM per variant (views averaged after flipping back), upsampled to the working size, geometric mean across variants;
4. regions from a segmenter;
5. the region whose distance-weighted activation is highest;
6. Bayesian enhancement of the fused map by that region; mask = posterior >= 0.5.

With ``fusion="evidence"`` (the default) steps 5-6 read, instead of A alone, the prior that
:mod:`wsloc_runtime.fusion` makes of every evidence (A, JPEG history, copy-move, noise), each
weighted by its reliability on the photo; ``fusion="paper"`` is the paper's pipeline unchanged.

Maps are computed at a *working size* (longer side at most ``work_max_side``), so
cost and memory do not grow with the photo; :meth:`LocalizationResult.full_size`
brings a map back to the photo's own size when it is needed.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from . import __version__
from .cam import DEFAULT_FUSION_EPSILON, geometric_mean_fusion, upsample_map
from .errors import ModelContractError
from .evidence import EvidenceInputs, EvidenceMap, create_evidence
from .fusion import DEFAULT_EVIDENCE, DEFAULT_FUSION, DEFAULT_SETTINGS, FusionSettings, check_fusion, fuse
from .jpeg_traces import jpeg_traces
from .imageio import DEFAULT_MAX_PIXELS, ImageSource, load_image, read_image
from .models import resolve_model
from .readability import READABILITY_EVIDENCE, Readability, assess_readability
from .regions import Regions, bayesian_enhancement, select_region
from .inputs import TRACE_FEATURES, raw_inputs, select_channels
from .sel import error_levels_pass
from .segmenters import Segmenter, create_segmenter
from .views import DEFAULT_TEST_TIME_VIEWS
from .views import test_time_views as resolve_test_time_views
from .wcbnet import WCBnetModel

#: Block scales of the paper's three variants, and the file each is shipped as.
DEFAULT_VARIANTS = (2, 3, 4)
WCBNET_EXPORT_HINT = "python -m training.train ... then python -m export.convert (see assets/models/README.md)"
#: Longer side, in pixels, of the working copy on which maps and regions are computed.
DEFAULT_WORK_MAX_SIDE = 1024
#: P(manipulated at x) at or above which a pixel is in the mask (the paper's fixed threshold).
MASK_THRESHOLD = 0.5

ProgressCallback = Callable[[float, str], None]


_BACKGROUND: ThreadPoolExecutor | None = None
_BACKGROUND_LOCK = threading.Lock()


def background_stages() -> ThreadPoolExecutor:
    """The threads on which the slow stages that need neither the models nor each other (copy-move,
    the segmenter, the error levels' JPEG re-encoding; then writing the photo-size PNGs) run while
    the main thread does the rest: OpenCV and onnxruntime release the GIL, so on two cores they
    overlap. Three, for the three stages that start together. One pool per process, made on first
    use (a Localizer stays picklable)."""
    global _BACKGROUND
    with _BACKGROUND_LOCK:
        if _BACKGROUND is None:
            _BACKGROUND = ThreadPoolExecutor(max_workers=3, thread_name_prefix="wsloc-stage")
        return _BACKGROUND


def _timed(function, *args):
    """``(function(*args), seconds it took)``, for a stage timed on its own thread."""
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def start_stage(beside: bool, function, *args) -> Future:
    """``_timed(function, *args)`` on a background thread when ``beside``, else run now (a process
    given one thread, as each of ``wsloc batch``'s workers on a small machine, gains nothing from a
    second one: its cores are the other workers')."""
    if beside:
        return background_stages().submit(_timed, function, *args)
    done: Future = Future()
    done.set_result(_timed(function, *args))
    return done


def wcbnet_filename(scale: int) -> str:
    return f"wcbnet{scale}.onnx"


def confident_edges(band: tuple[float, float]) -> tuple[float | None, float | None]:
    """The band's edges as the verdict uses them, ``None`` for a side on which the models are never
    confident: a lower edge of 0 (no probability is below it) or an upper edge of 1
    (:mod:`studies.verdict_band` writes 1.0 when no probability was reliable enough, and a
    saturated sigmoid must not turn that into "likely manipulated")."""
    low, high = band
    return (low if low > 0.0 else None), (high if high < 1.0 else None)


def verdict_of(probability: float, band: tuple[float, float], readable: bool = True, readability: float = 1.0,
               margin: float = 0.0) -> str:
    """"likely manipulated" at or above the band's upper edge raised by ``margin * (1 - readability)``
    (a partly readable photo needs a higher score; ``readability`` is the reliability, in [0, 1], of
    the evidence for the kinds "likely authentic" speaks for); on a photo whose traces could not have
    shown an edit (``readable`` False, see :mod:`wsloc_runtime.readability`) "cannot tell" below it;
    otherwise "likely authentic" below the band's lower edge and "uncertain" between them (see
    :func:`confident_edges` for the never-confident sides)."""
    low, high = confident_edges(band)
    if high is not None:
        high += margin * (1.0 - min(1.0, max(0.0, float(readability))))
    if high is not None and probability >= high:
        return "likely manipulated"
    if not readable:
        return CANNOT_TELL
    if low is not None and probability < low:
        return "likely authentic"
    return "uncertain"


#: The verdict where the photo's traces could not have shown an edit: never "likely authentic".
CANNOT_TELL = "cannot tell"
#: The verdict as a flag, as ``is_manipulated`` holds it: no flag unless the verdict is confident.
VERDICT_FLAGS = {"likely manipulated": True, "likely authentic": False, "uncertain": None, CANNOT_TELL: None}


def describe_band(band: tuple[float, float]) -> str:
    """How a probability becomes a verdict, in words: ``"uncertain between 0.30 and 0.70"``,
    ``"threshold 0.50"`` for models without an uncertain band, and for a band open at one end
    (the models are never confident on that side) ``"uncertain from 0.18 up"`` or
    ``"uncertain below 0.80"``."""
    if band[0] == band[1]:
        return f"threshold {band[1]:.2f}"
    low, high = confident_edges(band)
    if high is None:
        return f"uncertain from {low:.2f} up" if low is not None else "always uncertain"
    if low is None:
        return f"uncertain below {high:.2f}"
    return f"uncertain between {low:.2f} and {high:.2f}"


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(height, width)`` scaled so the longer side is at most ``max_side`` (never upscaled)."""
    factor = min(1.0, max_side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def _as_segmenter(segmenter: str | Segmenter, options: dict | None) -> Segmenter:
    """A ready segmenter, or one built from the registry by name."""
    if isinstance(segmenter, Segmenter):
        return segmenter
    return create_segmenter(segmenter, **dict(options or {}))


@dataclass
class LocalizationResult:
    """Everything one call of :meth:`Localizer.localize` found.

    All maps are ``float32`` in [0, 1] and masks ``bool``, of shape ``working_size``.

    Attributes:
        probability: P(manipulated): with ``fusion="paper"`` the mean of the variants'
            probabilities; with ``"evidence"`` that combined with the evidences' strengths.
        is_manipulated: the verdict as a flag: True for "likely manipulated", False for "likely
            authentic", None for "uncertain" and "cannot tell" (:data:`VERDICT_FLAGS`), never at odds
            with ``verdict``.
        model_probability: the mean of the variants' probabilities.
        fusion: ``"evidence"`` or ``"paper"`` (see ``wsloc_runtime.fusion.FUSION_MODES``).
        evidence: each evidence's reading by name (empty with ``fusion="paper"``).
        evidence_weights: the weight each evidence had in the fused prior.
        evidence_shares: each evidence's share of the fused prior inside the mask (or everywhere
            when the mask is empty): which evidence drove the result.
        prior: the map the region step and the Bayes update read: A with ``fusion="paper"``,
            the fused evidence otherwise.
        readability: which kinds of edit the photo's traces would have shown
            (:mod:`wsloc_runtime.readability`); the verdict says "cannot tell" where they could not.
        variant_probabilities: P(manipulated) of each variant, by model name.
        variant_maps: Grad-CAM A_i of each variant, by model name.
        test_time_views: name of the test-time views averaged (see ``views.TEST_TIME_VIEWS``).
        activation: A, the geometric mean of the variant maps.
        regions: the segmenter's candidate regions.
        region_index: i*, the chosen region (-1 when the segmenter found none).
        region_score: S(M_i*, A).
        region_scores: S for every region.
        enhanced: A*, the Bayesian posterior: the map the heatmap shows, ``(h, w)`` float32 in [0, 1].
        posterior_mask: ``enhanced >= 0.5``, the method's own mask (what ``evaluate`` scores), kept
            even where the verdict is "likely authentic".
        mask (property): the mask to show, the one the command line writes: ``posterior_mask``,
            but empty for a photo judged likely authentic.
        error_levels: signed error levels at the working size, ``(h, w, 3)`` float32.
        image: the photo at the working size, ``(h, w, 3)`` uint8 RGB.
        original_size: ``(height, width)`` of the input photo.
        timings: seconds per stage.
        providers: onnxruntime providers each model really runs on.
        notes: what a reader must know about how the input was read (e.g. only the first frame
            of an animated GIF was analysed), one line each.
    """

    probability: float
    is_manipulated: bool | None
    decision_threshold: float
    variant_probabilities: dict[str, float]
    variant_maps: dict[str, np.ndarray]
    activation: np.ndarray
    regions: Regions
    region_index: int
    region_score: float
    region_scores: np.ndarray
    enhanced: np.ndarray
    posterior_mask: np.ndarray
    error_levels: np.ndarray
    image: np.ndarray
    original_size: tuple[int, int]
    segmenter: str
    test_time_views: str = DEFAULT_TEST_TIME_VIEWS
    verdict_band: tuple[float, float] = (0.5, 0.5)
    #: The upper edge rises by this times (1 - readability) (:func:`verdict_of`).
    verdict_margin: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    providers: dict[str, list[str]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model_probability: float | None = None
    fusion: str = "paper"
    evidence: dict[str, EvidenceMap] = field(default_factory=dict)
    evidence_weights: dict[str, float] = field(default_factory=dict)
    evidence_shares: dict[str, float] = field(default_factory=dict)
    prior: np.ndarray | None = None
    readability: Readability | None = None

    @property
    def verdict(self) -> str:
        """The verdict in words, for people: every command line, summary and page reads it here.

        "likely manipulated" at or above the band's upper edge, "likely authentic" below its
        lower edge, "uncertain" between them, so that a weak probability never reads as certain.
        The edges come with the models (their config's ``verdict_band``, chosen on development
        sets and stated in the model card). An upper edge of 1.0 means that no probability was
        reliable enough on those sets: such models never say "likely manipulated". Where the
        photo's traces could not have shown an edit (``readability``), "cannot tell" replaces both
        "likely authentic" and "uncertain".
        """
        level = self.readability.level if self.readability is not None else 1.0
        return verdict_of(self.probability, self.verdict_band, self.readable, level, self.verdict_margin)

    @property
    def readability_sentence(self) -> str | None:
        """What the photo's traces could and could not have shown, in words (None without a readability)."""
        return self.readability.sentence() if self.readability is not None else None

    @property
    def readable(self) -> bool:
        """Whether the photo's traces would have shown the edits a "likely authentic" verdict
        speaks for (True for a result built without a readability, as by hand in tests)."""
        return self.readability is None or self.readability.readable

    @property
    def working_size(self) -> tuple[int, int]:
        return int(self.activation.shape[0]), int(self.activation.shape[1])

    @property
    def region_mask(self) -> np.ndarray:
        """The chosen region M_i* (all False when there is none)."""
        if self.region_index < 0:
            return np.zeros(self.working_size, bool)
        return self.regions.mask(self.region_index)

    @property
    def mask(self) -> np.ndarray:
        """The mask to show, ``(h, w)`` bool at the working size (:meth:`full_size` for the photo's
        own): what the mask PNG, ``mask_fraction``, the app and the report show. Empty for a photo
        judged likely authentic (``is_manipulated is False``), so that nothing says "edited" about
        it; otherwise :attr:`posterior_mask`, the method's mask (which ``evaluate`` scores)."""
        if self.is_manipulated is False:
            return np.zeros(self.working_size, bool)
        return self.posterior_mask

    @property
    def reported_mask(self) -> np.ndarray:
        """The same as :attr:`mask` (its name before version 0.2, kept for code written against it)."""
        return self.mask

    def full_size(self, array: np.ndarray) -> np.ndarray:
        """Resize a working-size array to the photo's own size: masks (bool) by nearest
        neighbour, maps (float) and pictures (uint8, kept uint8) bilinearly.

        For a large photo, colour a map first and enlarge the uint8 picture: a full-size
        float32 map and its colour-mapping copies cost several hundred MB at 48 MP.
        """
        height, width = self.original_size
        if array.shape[:2] == (height, width):
            return array
        if array.dtype == bool:
            resized = cv2.resize(array.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
            return resized.astype(bool)
        if array.dtype == np.uint8:
            return cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(array.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)

    def summary(self) -> dict:
        """A JSON-ready digest (no arrays): verdict, region, mask area, timings, providers."""
        return {
            "wsloc_version": __version__,
            "probability": round(float(self.probability), 6),
            "model_probability": round(float(self.model_probability if self.model_probability is not None
                                             else self.probability), 6),
            "fusion": self.fusion,
            "is_manipulated": self.is_manipulated,
            "verdict": self.verdict,
            "verdict_band": [round(float(edge), 6) for edge in self.verdict_band],
            "verdict_margin": self.verdict_margin,
            "decision_threshold": self.decision_threshold,
            "variant_probabilities": {k: round(float(v), 6) for k, v in self.variant_probabilities.items()},
            "test_time_views": self.test_time_views,
            "segmenter": self.segmenter,
            "region_count": len(self.regions),
            "region_index": int(self.region_index),
            "region_score": round(float(self.region_score), 6),
            "mask_fraction": round(float(self.mask.mean()), 6),
            "original_size": list(self.original_size),
            "working_size": list(self.working_size),
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "providers": self.providers,
            "models": self.models,
            "notes": list(self.notes),
            **({"readability": self.readability.summary()} if self.readability is not None else {}),
            "evidence": {
                name: {**reading.summary(), "weight": round(self.evidence_weights.get(name, 0.0), 4),
                       "share": round(self.evidence_shares.get(name, 0.0), 4)}
                for name, reading in self.evidence.items()
            },
        }


class Localizer:
    """Localize manipulated regions: construct once, call :meth:`localize` many times.

    Args:
        models_dir: directory holding ``wcbnet{2,3,4}.onnx``; ``None`` searches
            ``$WSLOC_MODELS``, the bundled ``assets/models/`` and ``$WSLOC_HF_REPO``.
        variants: block scales of the WCBnet variants to fuse.
        model_paths: explicit ONNX files, overriding ``models_dir``/``variants``.
        segmenter: registry name (``"graph"`` needs no files) or a :class:`Segmenter`.
        segmenter_options: keyword arguments for the segmenter's constructor.
        providers: onnxruntime providers; ``None`` = CUDA when it loads, else CPU.
        work_max_side: longer side of the working copy for maps and regions.
        fusion_epsilon: floor of the geometric-mean fusion.
        intra_op_threads: onnxruntime threads per session (0 = onnxruntime's default); with 1, copy-move
            and the segmenter also run in turn instead of beside the models.
        max_pixels: larger inputs are refused with :class:`InvalidImageError`.
        test_time_views: ``"hflip"`` (default: the input and its mirror image), ``"none"``
            (one pass, half the network time) or ``"flips"`` (four views); see
            ``wsloc_runtime.views.TEST_TIME_VIEWS``.
        fusion: ``"evidence"`` (default: every evidence fused into the Bayes step's prior) or
            ``"paper"`` (the paper's pipeline, A alone); see ``wsloc_runtime.fusion``.
        evidence: the evidences computed with ``fusion="evidence"`` (registry names).
        fusion_settings: the fusion's constants (default: those chosen in ``docs/fusion.md``).
    """

    def __init__(
        self,
        models_dir: str | os.PathLike | None = None,
        variants: Sequence[int] = DEFAULT_VARIANTS,
        model_paths: Iterable[str | os.PathLike] | None = None,
        segmenter: str | Segmenter = "graph",
        segmenter_options: dict | None = None,
        providers: Sequence[str] | None = None,
        work_max_side: int = DEFAULT_WORK_MAX_SIDE,
        fusion_epsilon: float = DEFAULT_FUSION_EPSILON,
        intra_op_threads: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        test_time_views: str = DEFAULT_TEST_TIME_VIEWS,
        fusion: str = DEFAULT_FUSION,
        evidence: Sequence[str] = DEFAULT_EVIDENCE,
        fusion_settings: FusionSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.fusion = check_fusion(fusion)
        self.evidence = [create_evidence(name) for name in evidence]  # fails early on an unknown name
        self.readability_evidence = [create_evidence(name) for name in READABILITY_EVIDENCE]
        self.fusion_settings = fusion_settings
        self.views = resolve_test_time_views(test_time_views)  # fails early on an unknown name
        self.test_time_views = test_time_views
        if work_max_side < 64:
            raise ValueError(f"work_max_side must be at least 64, got {work_max_side}")
        if model_paths is not None:
            paths = [Path(p) for p in model_paths]
        else:
            paths = [
                resolve_model(wcbnet_filename(scale), models_dir, export_hint=WCBNET_EXPORT_HINT)
                for scale in variants
            ]
        if not paths:
            raise ValueError("at least one WCBnet model is needed")
        self.models = [WCBnetModel(path, providers, intra_op_threads) for path in paths]
        names = [model.name for model in self.models]
        if len(set(names)) != len(names):
            raise ModelContractError(f"two models claim the same variant: {names}")
        qualities = {model.config.sel_jpeg_quality for model in self.models}
        if len(qualities) != 1:
            raise ModelContractError(f"variants disagree on the SEL JPEG quality: {sorted(qualities)}")
        self.sel_quality = qualities.pop()
        self.decision_threshold = float(np.mean([m.config.decision_threshold for m in self.models]))
        bands = np.array([m.config.verdict_band for m in self.models], np.float64)
        self.verdict_band = (float(bands[:, 0].mean()), float(bands[:, 1].mean()))
        self.segmenter = _as_segmenter(segmenter, segmenter_options)
        self.work_max_side = int(work_max_side)
        self.fusion_epsilon = float(fusion_epsilon)
        self.max_pixels = int(max_pixels)
        #: Copy-move and the segmenter run beside the models unless this Localizer was given one thread.
        self.stages_beside = intra_op_threads != 1

    def with_fusion(self, fusion: str) -> "Localizer":
        """A Localizer that shares this one's sessions but fuses as ``fusion`` says."""
        derived = copy.copy(self)
        derived.fusion = check_fusion(fusion)
        return derived

    @property
    def result_band(self) -> tuple[float, float]:
        """The verdict band of the probability this Localizer reports, chosen on that probability:
        with ``fusion="paper"`` the paper mode's (the models' own band where none was chosen), the
        fusion's otherwise."""
        if self.fusion == "paper":
            return tuple(self.fusion_settings.paper_verdict_band or self.verdict_band)
        return self.fusion_settings.verdict_band

    @property
    def result_readable_from(self) -> float:
        """The readability threshold chosen with :attr:`result_band`."""
        settings = self.fusion_settings
        return settings.paper_readable_from if self.fusion == "paper" else settings.readable_from

    @property
    def result_margin(self) -> float:
        """The readability margin chosen with :attr:`result_band` (:func:`verdict_of`)."""
        settings = self.fusion_settings
        return settings.paper_verdict_margin if self.fusion == "paper" else settings.verdict_margin

    def with_segmenter(self, segmenter: str | Segmenter, segmenter_options: dict | None = None) -> "Localizer":
        """A Localizer that shares this one's WCBnet sessions but uses another segmenter.

        Sessions are the expensive part (memory, GPU memory, load time), so an app that
        offers several segmenters should build one Localizer and derive the others.
        """
        derived = copy.copy(self)
        derived.segmenter = _as_segmenter(segmenter, segmenter_options)
        return derived

    @property
    def providers(self) -> dict[str, list[str]]:
        """Providers each session really got, by model name (and the segmenter's)."""
        reported = {model.name: list(model.providers) for model in self.models}
        if self.segmenter.providers:
            reported[self.segmenter.name] = list(self.segmenter.providers)
        return reported

    def classify(self, image: ImageSource) -> float:
        """P(manipulated) only, the same number :meth:`localize` reports: with ``fusion="paper"``
        the variants' mean probability (networks only, no maps or regions); with ``"evidence"``
        it also reads every evidence's strength, so the whole analysis runs."""
        if self.fusion == "evidence":
            return self.localize(image).probability
        rgb = load_image(image, self.max_pixels)
        inputs = self._network_inputs(rgb, extra_sizes=[])[0]
        return float(np.mean([m.forward_views(inputs[m.name], self.views).probability for m in self.models]))

    def _needs_traces(self) -> bool:
        return any(f in TRACE_FEATURES for m in self.models for f in m.config.input_features)

    def _input_sizes(self) -> list[tuple[int, int]]:
        """The models' input sizes, each once, sorted: the order the error levels are resized in."""
        return sorted({model.config.input_size for model in self.models})

    def _error_levels(self, rgb: np.ndarray, extra_sizes: list[tuple[int, int]], ela_size=None):
        """The :class:`~wsloc_runtime.sel.ErrorLevels` of the one JPEG re-encoding, resized to each
        model's input size and to ``extra_sizes`` (with the error-level map at ``ela_size`` when given)."""
        return error_levels_pass(rgb, self._input_sizes() + extra_sizes, self.sel_quality, ela_size=ela_size)

    def _network_inputs(self, rgb: np.ndarray, extra_sizes: list[tuple[int, int]], traces=None, levels=None):
        """Each model's input tensor, by model name (models may scale SEL differently even at one
        size), the SEL resized to each of ``extra_sizes``, and the error levels (``levels`` when the
        caller has them from :meth:`_error_levels` with the same ``extra_sizes``, computed here
        otherwise); every feature is computed once for all."""
        sizes = self._input_sizes()
        features = ["sel"] + sorted({f for m in self.models for f in m.config.input_features} - {"sel"})
        if levels is None:
            levels = self._error_levels(rgb, extra_sizes)
        resized = raw_inputs(rgb, features, sizes + extra_sizes, self.sel_quality, traces=traces, sel=levels.resized)
        by_size = dict(zip(sizes, resized[: len(sizes)]))
        inputs = {
            model.name: model.prepare(
                select_channels(by_size[model.config.input_size], features, model.config.input_features)
            )
            for model in self.models
        }
        return inputs, [select_channels(extra, features, ["sel"]) for extra in resized[len(sizes) :]], levels

    def localize(self, image: ImageSource, progress: ProgressCallback | None = None) -> LocalizationResult:
        """Run the whole method on one image.

        Args:
            image: a path, encoded bytes, a PIL image or an HxWx3 uint8 RGB array.
            progress: optional ``callback(fraction_done, stage_name)``.

        Raises:
            InvalidImageError: the input is unreadable or outside the accepted sizes.
        """
        report = progress or (lambda fraction, stage: None)
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = now - clock
            clock = now

        report(0.0, "decode")
        decoded = read_image(image, self.max_pixels)
        rgb = decoded.rgb
        original_size = (int(rgb.shape[0]), int(rgb.shape[1]))
        decoded_notes = decoded.notes
        work = working_size(*original_size, self.work_max_side)
        lap("decode")

        image_work = rgb if work == original_size else cv2.resize(rgb, work[::-1], interpolation=cv2.INTER_AREA)
        # The segmenter and the slow evidences that read only the working copy (copy-move) start
        # now on the background threads, beside everything up to the region choice, and are
        # collected where they are needed. Each is a pure function of its input, so the result is
        # the same as run in turn.
        segmenting = start_stage(self.stages_beside, self.segmenter.segment, image_work)
        fused_mode = self.fusion == "evidence"
        shown = self.evidence if fused_mode else []
        # The readability guard's evidences are read even where they are not shown or fused (the
        # paper's mode), so that no mode says "likely authentic" about a photo it could not read.
        guards = [e for e in self.readability_evidence if e.name not in {s.name for s in shown}]
        beside = {e.name: start_stage(self.stages_beside, e.compute, EvidenceInputs(image=image_work, full=rgb))
                  for e in [*shown, *guards] if e.runs_beside_models and not e.needs_models}
        # The ELA panel's map comes from the same JPEG re-encoding as the models' SEL when it can.
        ela_size = work if any(e.error_levels_quality == self.sel_quality for e in [*shown, *guards]) else None
        # The re-encoding (OpenCV, which releases the GIL) runs beside the JPEG traces (numpy).
        encoding = start_stage(self.stages_beside, self._error_levels, rgb, [work], ela_size)
        traces = None
        if self._needs_traces() or any(e.reads_jpeg_traces for e in [*shown, *guards]):
            report(0.05, "JPEG traces")
            traces = jpeg_traces(rgb)  # one analysis for the models' inputs and both JPEG evidences
            lap("jpeg_traces")
        report(0.1, "error levels")
        levels, timings["error_levels"] = encoding.result()
        inputs, (work_sel,), levels = self._network_inputs(rgb, [work], traces, levels=levels)
        lap("sel")
        # Every model-free evidence read on the photo, shown or guard, by name.
        computed: dict[str, EvidenceMap] = {}
        evidence_inputs = EvidenceInputs(image=image_work, full=rgb, jpeg=traces, error_levels=levels)
        for evidence in [*shown, *guards]:
            if evidence.needs_models or evidence.runs_beside_models:
                continue
            report(0.15, f"evidence: {evidence.name}")
            computed[evidence.name] = evidence.compute(evidence_inputs)
            lap(f"evidence_{evidence.name}")
        del evidence_inputs, levels
        del rgb, decoded, traces  # from here on, nothing holds the full-size photo

        probabilities: dict[str, float] = {}
        maps: dict[str, np.ndarray] = {}
        for position, model in enumerate(self.models):
            report(0.2 + 0.4 * position / len(self.models), model.name)
            output = model.forward_views(inputs[model.name], self.views)
            lap(model.name)
            probabilities[model.name] = output.probability
            maps[model.name] = upsample_map(output.cam, work)
            lap(f"cam_{model.name}")
        activation = geometric_mean_fusion(list(maps.values()), self.fusion_epsilon)
        model_probability = float(np.mean(list(probabilities.values())))
        lap("fusion")
        prior, probability, weights = activation, model_probability, {}
        for name, stage in beside.items():
            computed[name], timings[f"evidence_{name}"] = stage.result()
        lap("waiting")
        readings: dict[str, EvidenceMap] = {}  # the shown evidences, in panel order (none in the paper's mode)
        if fused_mode:
            with_models = EvidenceInputs(image=image_work, activation=activation, probability=model_probability)
            readings = {e.name: e.compute(with_models) if e.needs_models else computed[e.name] for e in self.evidence}
            fused = fuse(list(readings.values()), model_probability, self.fusion_settings)
            prior, probability, weights = fused.prior, fused.probability, fused.weights
            lap("evidence_fusion")

        readability = assess_readability({**computed, **readings}, self.result_readable_from)

        report(0.65, f"segmenting ({self.segmenter.name})")
        regions, timings["segmenter"] = segmenting.result()
        lap("waiting_segmenter")

        report(0.9, "enhancement")
        choice = self.fusion_settings.region_choice if fused_mode else "similarity"
        index, score, scores = select_region(regions, prior, choice)
        lap("similarity")
        enhanced = bayesian_enhancement(prior, regions.mask(index)) if index >= 0 else prior.copy()
        mask = enhanced >= MASK_THRESHOLD
        shares = fused.shares(readings, mask) if fused_mode else {}
        lap("enhancement")
        report(1.0, "done")

        return LocalizationResult(
            probability=probability,
            is_manipulated=VERDICT_FLAGS[verdict_of(probability, self.result_band, readability.readable,
                                                    readability.level, self.result_margin)],
            decision_threshold=self.decision_threshold,
            variant_probabilities=probabilities,
            variant_maps=maps,
            activation=activation,
            regions=regions,
            region_index=index,
            region_score=score,
            region_scores=scores,
            enhanced=enhanced,
            posterior_mask=mask,
            error_levels=work_sel,
            image=image_work,
            original_size=original_size,
            segmenter=self.segmenter.name,
            test_time_views=self.test_time_views,
            verdict_band=self.result_band,
            verdict_margin=self.result_margin,
            timings=timings,
            providers=self.providers,
            models={m.name: f"{m.path.name} ({m.config.backbone}, {m.config.model_version})" for m in self.models},
            notes=decoded_notes,
            model_probability=model_probability,
            fusion=self.fusion,
            evidence=readings,
            evidence_weights=weights,
            evidence_shares=shares,
            prior=prior,
            readability=readability,
        )
