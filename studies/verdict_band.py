"""Choose the verdict's "uncertain" band from scored development sets.

Two uses:

* the default pipeline's verdict (``docs/verdict.md``): the band **and** the readability threshold
  over the seven visible sets at once, from ``wsloc evaluate`` reports (one per set):
  ``python -m studies.verdict_band --evaluations runs/verdict/*.json`` (:func:`choose_verdict_rule`);
* a model's own band (the paper's mode), from a training run's report:
  ``python -m studies.verdict_band --report runs/X/eval_best.json --sets casia1-dev-swap noso``

The band ``(low, high)`` is written into each model's config by ``export.convert
--verdict-band LOW HIGH`` and read by the runtime: at or above ``high`` the verdict is
"likely manipulated", below ``low`` "likely authentic", between them "uncertain". The edges
are chosen so that each confident verdict was right at least ``precision`` of the time on
the given sets (by default the compression-swapped CASIA set and NoSo, whose photos differ
from the training photos' in compression and in kind):

* ``high``: the lowest probability at which the photos scoring at or above it were tampered
  at least ``precision`` of the time (1.0 when no such probability exists: the models are
  then never "likely manipulated");
* ``low``: the highest probability at which the photos scoring below it were authentic at
  least ``precision`` of the time (0.0 when none).

Each side needs at least ``min_count`` photos, so one lucky photo does not set an edge.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from wsloc_runtime.evaluate import CONFIDENT_VERDICTS, count_verdicts
from wsloc_runtime.pipeline import verdict_of
from wsloc_runtime.readability import READABILITY_EVIDENCE, verdict_level

DEFAULT_SETS = ("casia1-dev-swap", "noso")


def choose_band(scores: Sequence[float], tampered: Sequence[bool], precision: float = 0.9,
                min_count: int = 5) -> tuple[float, float]:
    """``(low, high)`` for image probabilities ``scores`` of photos whose truth is ``tampered``."""
    scores = np.asarray(scores, np.float64)
    tampered = np.asarray(tampered, bool)
    if scores.shape != tampered.shape or scores.size == 0:
        raise ValueError("scores and tampered must be non-empty and of one length")
    if not 0.5 < precision <= 1.0:
        raise ValueError(f"precision must be in (0.5, 1], got {precision}")
    candidates = np.unique(scores)
    high = 1.0
    for threshold in candidates:  # ascending: the first that qualifies is the lowest
        above = scores >= threshold
        if above.sum() >= min_count and tampered[above].mean() >= precision:
            high = float(threshold)
            break
    low = 0.0
    for threshold in np.append(candidates, 1.0)[::-1]:  # descending: the first that qualifies is the highest
        below = scores < threshold
        if below.sum() >= min_count and (~tampered[below]).mean() >= precision:
            low = float(threshold)
            break
    if low > high:  # both verdicts are reliable everywhere between: no uncertain zone left
        low = high = float((low + high) / 2)
    return round(low, 4), round(high, 4)


def scores_from_report(report: dict, sets: Sequence[str]) -> tuple[list[float], list[bool]]:
    """Image probabilities and truths of ``sets`` in an ``studies.evaluate_run`` report."""
    scores, truth = [], []
    for name in sets:
        if name not in report:
            raise KeyError(f"the report has no set {name!r}; it has {sorted(k for k in report if not k.startswith('_'))}")
        for row in report[name]["per_image"]:
            if row.get("image_score") is not None and row.get("tampered") is not None:
                scores.append(float(row["image_score"]))
                truth.append(bool(row["tampered"]))
    return scores, truth


#: The readability thresholds the verdict rule chooses among (``docs/verdict.md``).
READABLE_FROM_CANDIDATES = (0.25, 0.5, 0.75)
#: A verdict said at least this often on a set must meet the precision there (``docs/verdict.md``).
MIN_SAID_PER_SET = 10


@dataclass(frozen=True)
class PhotoRow:
    """What the verdict rule reads of one photo: its fused probability, its truth, and how readable
    its traces were (the reliability of the evidence for the kinds "likely authentic" speaks for)."""

    probability: float
    tampered: bool
    readability: float


def rows_from_evaluation(report: dict) -> list[PhotoRow]:
    """The scored photos of one ``wsloc evaluate`` report, in either fusion mode: the readability is
    the row's own (``readability.kinds`` of the kinds "likely authentic" speaks for, which the paper's
    mode reads too), or, in older reports, the reliability of the evidence behind them."""
    rows = []
    for row in report["per_image"]:
        if row.get("tampered") is None or row.get("probability") is None:
            continue
        kinds = (row.get("readability") or {}).get("kinds")
        if kinds:
            readability = verdict_level(kinds)
        else:
            evidence = row.get("evidence") or {}
            readability = min((evidence.get(name, {}).get("reliability", 0.0) for name in READABILITY_EVIDENCE),
                              default=0.0)
        rows.append(PhotoRow(float(row["probability"]), bool(row["tampered"]), float(readability)))
    return rows


def verdicts_of(rows: Sequence[PhotoRow], band: tuple[float, float], readable_from: float,
                margin: float = 0.0) -> list[str]:
    """The runtime's verdict for each row (``wsloc_runtime.pipeline.verdict_of``, the same function)."""
    return [verdict_of(r.probability, band, r.readability >= readable_from, r.readability, margin) for r in rows]


def verdict_table(rows: Sequence[PhotoRow], verdicts: Sequence[str]) -> dict:
    """How often each verdict was said and right (``wsloc evaluate``'s own count), how many forgeries
    "likely manipulated" caught, and the share of photos given a correct confident verdict."""
    table = count_verdicts([(verdict, row.tampered) for row, verdict in zip(rows, verdicts)])
    right = sum(table[verdict]["right"] for verdict in CONFIDENT_VERDICTS)
    table["correct_confident_share"] = round(right / len(rows), 4) if rows else 0.0
    return table


def _meets(tables: Sequence[dict], verdict: str, precision: float, min_said: int) -> bool:
    """Constraints 1 and 2 of ``docs/verdict.md`` for one verdict over every set's table; an edge
    must also have the verdict said ``min_said`` times in all, as ``choose_band``'s ``min_count``."""
    said = sum(t[verdict]["said"] for t in tables)
    right = sum(t[verdict]["right"] for t in tables)
    if said < min_said or right / said < precision:  # an edge at which (almost) nothing is said sets nothing
        return False
    return all(t[verdict]["said"] < min_said or t[verdict]["right"] / t[verdict]["said"] >= precision
               for t in tables)


#: Readability margins the rule chooses among (docs/verdict.md, issue 35's rule).
MARGIN_CANDIDATES = (0.0, 0.05, 0.1)
#: The most "likely manipulated" may be said of the guard's photos (all authentic), as a share.
GUARD_MAX_ACCUSED = 0.02


def _guard_holds(guard: Sequence[PhotoRow] | None, band, readable_from: float, margin: float) -> bool:
    if not guard:
        return True
    said = sum(1 for v in verdicts_of(guard, band, readable_from, margin) if v == "likely manipulated")
    return said <= GUARD_MAX_ACCUSED * len(guard)


def choose_verdict_rule(sets: dict[str, Sequence[PhotoRow]], precision: float = 0.9,
                        min_said: int = MIN_SAID_PER_SET,
                        readable_candidates: Sequence[float] = READABLE_FROM_CANDIDATES,
                        guard: Sequence[PhotoRow] | None = None,
                        margin_candidates: Sequence[float] = (0.0,)) -> dict:
    """The band, ``readable_from`` and readability margin by the rule of ``docs/verdict.md``.

    For each margin, the upper edge is the lowest probability at which "likely manipulated" meets
    the precision on every set where it is said ``min_said`` times and pooled, and (with a
    ``guard`` of authentic photos) is said of at most :data:`GUARD_MAX_ACCUSED` of the guard's
    photos (1.0, "never", when none does); for each readability threshold the lower edge is the
    highest at which "likely authentic" does (0.0 when none); the candidate whose verdicts give the
    most photos a correct confident verdict, averaged over the sets, wins (ties: the higher
    threshold, then the larger margin).

    Returns:
        ``{"verdict_band": [low, high], "readable_from": t, "margin": m, "objective": ...,
        "per_set": {...}, "guard": {...}, "candidates": [...]}``.
    """
    if not sets:
        raise ValueError("no sets to choose on")
    if not 0.5 < precision <= 1.0:
        raise ValueError(f"precision must be in (0.5, 1], got {precision}")
    every = np.unique(np.concatenate([[r.probability for r in rows] for rows in sets.values()]
                                     + ([[r.probability for r in guard]] if guard else [])))

    def tables(band, readable_from, margin):
        return {name: verdict_table(rows, verdicts_of(rows, band, readable_from, margin))
                for name, rows in sets.items()}

    def between(threshold: float) -> float:
        """The edge halfway down to the next observed probability: it splits the photos as
        ``threshold`` does, and rounding it to 4 decimals cannot move a photo across it."""
        below = every[every < threshold]
        return float((threshold + below[-1]) / 2) if below.size else float(threshold)

    candidates = []
    for margin in margin_candidates:
        high = 1.0
        for threshold in every:  # ascending: the first that qualifies is the lowest
            if threshold <= 0.0:
                continue
            band = (0.0, float(threshold))
            # Constraints on the edge itself, then where it lands after placing it between two scores.
            if (_meets(list(tables(band, 1.0, margin).values()), "likely manipulated", precision, min_said)
                    and _guard_holds(guard, (0.0, between(threshold)), 1.0, margin)):
                high = between(threshold)
                break
        for readable_from in readable_candidates:
            low = 0.0
            for threshold in np.append(every, 1.0)[::-1]:  # descending: the first that qualifies is the highest
                if threshold > high or threshold <= 0.0:
                    continue
                if _meets(list(tables((float(threshold), high), readable_from, margin).values()), "likely authentic",
                          precision, min_said):
                    low = min(between(threshold), high)
                    break
            low, high_edge = round(low, 4), round(high, 4)
            per_set = tables((low, high_edge), readable_from, margin)  # the verdicts the rounded edges give
            objective = float(np.mean([t["correct_confident_share"] for t in per_set.values()]))
            guard_table = (verdict_table(guard, verdicts_of(guard, (low, high_edge), readable_from, margin))
                           if guard else None)
            candidates.append({"readable_from": readable_from, "margin": margin, "verdict_band": [low, high_edge],
                               "objective": round(objective, 4), "per_set": per_set, "guard": guard_table})
    best = max(candidates, key=lambda c: (c["objective"], c["readable_from"], c["margin"]))
    return {**best, "candidates": [{k: v for k, v in c.items() if k not in ("per_set", "guard")} for c in candidates],
            "precision": precision, "min_said": min_said}


def leave_one_set_out(sets: dict[str, Sequence[PhotoRow]], precision: float = 0.9,
                      min_said: int = MIN_SAID_PER_SET, guard: Sequence[PhotoRow] | None = None,
                      margin_candidates: Sequence[float] = (0.0,)) -> dict:
    """Each set's verdicts counted with the edges :func:`choose_verdict_rule` chose on the other sets
    (and the guard), and, per confident verdict, the lowest of those held-out precisions over the
    sets where it was said ``min_said`` times (the number the README states), or the pooled one
    where no set reaches that.

    Returns:
        ``{"held_out": {set: {"rule": {...}, "table": {...}}}, "stated": {verdict: {...}}}``.
    """
    held_out = {}
    for name, rows in sets.items():
        others = {other: r for other, r in sets.items() if other != name}
        rule = choose_verdict_rule(others, precision, min_said, guard=guard, margin_candidates=margin_candidates)
        band = tuple(rule["verdict_band"])
        table = verdict_table(rows, verdicts_of(rows, band, rule["readable_from"], rule["margin"]))
        held_out[name] = {"rule": {k: rule[k] for k in ("verdict_band", "readable_from", "margin")}, "table": table}
    stated = {}
    for verdict in CONFIDENT_VERDICTS:
        counted = [(name, h["table"][verdict]["said"], h["table"][verdict]["right"]) for name, h in held_out.items()]
        enough = [(name, said, right) for name, said, right in counted if said >= min_said]
        if enough:
            name, said, right = min(enough, key=lambda item: item[2] / item[1])
            stated[verdict] = {"precision": round(right / said, 4), "right": right, "said": said, "set": name,
                               "basis": f"the lowest held-out precision over the sets where said >= {min_said} times"}
        else:
            said = sum(item[1] for item in counted)
            right = sum(item[2] for item in counted)
            stated[verdict] = {"precision": round(right / said, 4) if said else None, "right": right, "said": said,
                               "set": None, "basis": f"pooled over the held-out sets (none said it {min_said} times)"}
    return {"held_out": held_out, "stated": stated}


def loso_markdown(result: dict) -> str:
    """The leave-one-set-out table as docs/verdict.md shows it."""
    lines = ["| held-out set | edges chosen without it (band, readable_from, margin) | \"likely manipulated\": said, right "
             "| \"likely authentic\": said, right | forgeries caught |", "| --- | --- | --- | --- | --- |"]
    for name, held in result["held_out"].items():
        rule, table = held["rule"], held["table"]

        def cell(verdict):
            said, right = table[verdict]["said"], table[verdict]["right"]
            return f"{said}, {100 * right / said:.1f} %" if said else "0"

        caught = table.get("forgeries_caught")
        lines.append(f"| {name} | ({rule['verdict_band'][0]}, {rule['verdict_band'][1]}), {rule['readable_from']}, "
                     f"{rule['margin']} | {cell('likely manipulated')} | {cell('likely authentic')} | "
                     f"{'-' if caught is None else f'{100 * caught:.1f} %'} |")
    for verdict, stated in result["stated"].items():
        lines.append(f"\nStated for \"{verdict}\": {stated['precision']} ({stated['right']} of {stated['said']}"
                     + (f", {stated['set']}" if stated['set'] else "") + f"; {stated['basis']}).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--evaluations", nargs="+", metavar="SET.json",
                        help="wsloc evaluate reports of the default pipeline, one per set (named by file stem): "
                             "choose the band and readable_from by docs/verdict.md's rule")
    source.add_argument("--report", help="studies.evaluate_run report (RUN/eval_best.json): a model's own band")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), help="with --report: the sets to read")
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--min-count", type=int, default=5, help="with --report: photos each side needs")
    parser.add_argument("--guard", metavar="SET.json",
                        help="with --evaluations: an evaluate report of authentic photos (studies.resave_chains) on "
                             f"which \"likely manipulated\" may be said of at most {100 * GUARD_MAX_ACCUSED:.0f}%%")
    parser.add_argument("--margins", action="store_true",
                        help=f"with --evaluations: choose a readability margin among {MARGIN_CANDIDATES} too")
    parser.add_argument("--leave-one-out", action="store_true",
                        help="with --evaluations: also each set counted with the edges chosen on the others")
    args = parser.parse_args(argv)
    if args.evaluations:
        sets = {Path(path).stem: rows_from_evaluation(json.loads(Path(path).read_text()))
                for path in args.evaluations}
        guard = rows_from_evaluation(json.loads(Path(args.guard).read_text())) if args.guard else None
        margins = MARGIN_CANDIDATES if args.margins else (0.0,)
        result = choose_verdict_rule(sets, args.precision, guard=guard, margin_candidates=margins)
        if args.leave_one_out:
            result["leave_one_out"] = leave_one_set_out(sets, args.precision, guard=guard, margin_candidates=margins)
        print(json.dumps(result, indent=1))
        if args.leave_one_out:
            print(loso_markdown(result["leave_one_out"]))
        return
    scores, truth = scores_from_report(json.loads(Path(args.report).read_text()), args.sets)
    low, high = choose_band(scores, truth, args.precision, args.min_count)
    print(json.dumps({"verdict_band": [low, high], "sets": args.sets, "precision": args.precision,
                      "n": len(scores), "n_tampered": int(sum(truth))}))


if __name__ == "__main__":
    main()
