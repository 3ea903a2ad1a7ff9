"""The README's results table from ``wsloc evaluate`` reports, so that it is never typed by hand.

``python -m studies.results_table --default runs/verdict --paper runs/paper --ela runs/baselines
--fingerprint runs/baselines``

Each folder holds one report per set, ``SET.json`` (the ELA folder: ``SET-ela.json``; the fingerprint
folder: ``SET-fingerprint.json``), made by ``python -m wsloc_runtime -q evaluate --pairs
../shared/data/SET.csv --out DIR/SET.json [--fusion paper] [--map ela] [--map evidence:fingerprint]``.
The learned fingerprint's column is shown when its folder is given. A set missing from a folder is shown as "-"; the ELA and all-tampered columns fall back to
the free baselines the data's README measured (``KNOWN_BASELINES``) when no report is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

#: The eight visible sets, in the order the table shows them, and what each is, for a reader.
SETS = {
    "casia1-dev": "CASIA v1.0 JPEG splices, first save intact",
    "casia1-dev-swap": "the same, compression swapped between classes",
    "casia1-dev-resize75": "the same, resized to 75 % and re-saved (JPEG 90)",
    "casia2-samples": "CASIA v2.0 splices and copy-moves, mostly TIFF",
    "noso": "copy-moves (PNG)",
    "nist16-dev": "professional edits, resized and re-saved",
    "cocoglide-dev": "diffusion inpaintings (PNG)",
    "coverage-dev": "copy-moves whose originals hold real look-alikes (PNG)",
}
#: Pixel F1 at 0.5 / pixel AUC of the free baselines as ``shared/data/README.md`` gives them.
KNOWN_BASELINES = {
    "ones": {"casia1-dev": 0.139, "casia1-dev-swap": 0.139, "casia1-dev-resize75": 0.139, "casia2-samples": 0.134,
             "noso": 0.076, "nist16-dev": 0.128, "cocoglide-dev": 0.348, "coverage-dev": 0.215},
    "ela": {"casia1-dev": (0.165, 0.672), "casia2-samples": (0.293, 0.808), "noso": (0.079, 0.591),
            "nist16-dev": (0.079, 0.626), "coverage-dev": (0.116, 0.605)},
}


def _load(folder: Path | None, name: str) -> dict | None:
    path = folder / name if folder else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def _scores(report: dict | None, image: bool = True) -> str:
    if report is None:
        return "-"
    text = f"{report['pixel_f1']:.3f} / {report['pixel_auc']:.3f}"
    if image and report.get("image_auc") is not None:
        text += f", img {report['image_auc']:.3f}"
    return text


def _verdicts(report: dict | None) -> str:
    """The default pipeline's confident verdicts, recomputed from the report's scores with the shipped
    rule (a report made before the edges last changed still counts as the tool speaks today)."""
    if report is not None and report.get("per_image"):
        from studies.compare_evaluations import with_verdicts
        from wsloc_runtime.fusion import DEFAULT_SETTINGS as settings

        report = with_verdicts(report, tuple(settings.verdict_band), settings.readable_from, settings.verdict_margin)
    counts = (report or {}).get("verdicts")
    if not counts:
        return "-"
    cells = []
    for verdict, short in (("likely manipulated", "manip."), ("likely authentic", "auth.")):
        said, right = counts[verdict]["said"], counts[verdict]["right"]
        cells.append(f"{short} {right}/{said}" if said else f"{short} 0")
    return ", ".join(cells)


def results_table(default: Path, paper: Path | None, ela: Path | None, fingerprint: Path | None = None) -> str:
    """The markdown table: per set, the default pipeline, the paper's, the learned fingerprint alone
    (when ``fingerprint`` is given), the two free baselines, and how often each confident verdict of
    the default pipeline was right."""
    fingerprint_header = " learned fingerprint alone |" if fingerprint else ""
    lines = [f"| set | what it is | default: F1 / AUC | paper's pipeline |{fingerprint_header} ELA (free) | "
             "all-tampered (free) | confident verdicts right / said |",
             "| --- | --- | --- | --- |" + (" --- |" if fingerprint else "") + " --- | --- | --- |"]
    for name, what in SETS.items():
        report = _load(default, f"{name}.json")
        ela_report = _load(ela, f"{name}-ela.json")
        if ela_report is not None:
            ela_cell = _scores(ela_report, image=False)
        elif name in KNOWN_BASELINES["ela"]:
            ela_cell = "{:.3f} / {:.3f}".format(*KNOWN_BASELINES["ela"][name])
        else:
            ela_cell = "-"
        fingerprint_cell = f" {_scores(_load(fingerprint, f'{name}-fingerprint.json'))} |" if fingerprint else ""
        lines.append(f"| {name} | {what} | {_scores(report)} | {_scores(_load(paper, f'{name}.json'))} |"
                     f"{fingerprint_cell} {ela_cell} | {KNOWN_BASELINES['ones'][name]:.3f} / 0.500 | {_verdicts(report)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--default", type=Path, required=True, help="folder of the default pipeline's reports")
    parser.add_argument("--paper", type=Path, help="folder of the --fusion paper reports")
    parser.add_argument("--ela", type=Path, help="folder of the --map ela reports (SET-ela.json)")
    parser.add_argument("--fingerprint", type=Path,
                        help="folder of the --map evidence:fingerprint reports (SET-fingerprint.json)")
    args = parser.parse_args(argv)
    print(results_table(args.default, args.paper, args.ela, args.fingerprint))


if __name__ == "__main__":
    main()
