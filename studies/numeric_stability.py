"""Do results flip on float noise? The examples and the visible sets, analysed under two numeric
configurations of the same installed packages, compared photo by photo.

    python -m studies.numeric_stability --out runs/stability            # all eight sets (~30 min)
    python -m studies.numeric_stability --out runs/stability --limit 20 # the first 20 of each

The two configurations:

* ``reference``: the environment as it is;
* ``other``: what another processor of the same kind would compute: OpenBLAS forced onto another
  kernel (``OPENBLAS_CORETYPE``, set in that command alone), numpy without its AVX-512 loops
  (``NPY_DISABLE_CPU_FEATURES=X86_V4``), OpenCV without its AVX-512 code paths
  (``OPENCV_CPU_DISABLE``) and onnxruntime on one thread instead of the default.

Each runs ``wsloc localize assets/examples`` (its stdout kept as ``examples.txt``) and ``wsloc
evaluate --masks-out`` on every visible set under ``OUT/CONFIG/``; then ``studies.compare_evaluations
--masks`` compares them, every verdict recomputed from its score with the shipped rule, and the closing lines say whether issue 33's targets hold: the same verdict
on >= 99.5% of the photos, masks agreeing at F1 >= 0.98 on >= 99%, and the examples' lines
identical as printed. Exit status 1 when one does not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from studies import compare_evaluations

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
#: The eight visible sets (``DATA/SET.csv``).
VISIBLE_SETS = ("casia1-dev", "casia1-dev-swap", "casia1-dev-resize75", "casia2-samples", "noso",
                "nist16-dev", "cocoglide-dev", "coverage-dev")
#: OpenBLAS kernel of the "other" configuration: AVX without FMA, unlike the Haswell and SkylakeX
#: kernels that current x86 machines pick, so it differs from whatever this machine runs.
OTHER_OPENBLAS_CORE = "Sandybridge"
CONFIGURATIONS = {
    "reference": ({}, []),
    "other": ({"OPENBLAS_CORETYPE": OTHER_OPENBLAS_CORE,
               "NPY_DISABLE_CPU_FEATURES": "X86_V4",
               "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-CLX,AVX512-CNL,AVX512-ICL,AVX512-COMMON"},
              ["--threads", "1"]),
}
SAME_VERDICT_TARGET = 0.995
MASK_TARGET = 0.99


def _run(command: list[str], env_changes: dict[str, str], stdout=None, cwd: Path = REPO_ROOT) -> None:
    env = {**os.environ, **env_changes,
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    print("  $", " ".join(f"{k}={v}" for k, v in env_changes.items()), " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", "wsloc_runtime", *command], env=env, cwd=cwd, check=True,
                   stdout=stdout)


def run_configuration(name: str, out: Path, data: Path, sets: list[str], limit: int) -> None:
    env_changes, extra = CONFIGURATIONS[name]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"== {name}", flush=True)
    # The examples as the README runs them, in a folder of their own holding a link to assets/, so
    # the printed paths are the same in both configurations and the outputs stay out of the checkout.
    examples = folder / "examples"
    examples.mkdir(exist_ok=True)
    if not (examples / "assets").exists():
        (examples / "assets").symlink_to(REPO_ROOT / "assets", target_is_directory=True)
    with open(folder / "examples.txt", "w", encoding="utf-8") as stdout:
        _run(["localize", "assets/examples", "--out", "out/", *extra], env_changes, stdout, cwd=examples)
    for set_name in sets:
        report = folder / f"{set_name}.json"
        if report.is_file():  # resumable: a finished set is kept
            continue
        _run(["-q", "evaluate", "--pairs", str(data / f"{set_name}.csv"), "--out", str(report),
              "--masks-out", str(folder / "masks" / set_name), *(["--limit", str(limit)] if limit else []),
              *extra], env_changes)


def _shipped_rule() -> tuple[tuple[float, float], float, float]:
    """The default fusion's verdict rule, ``(band, readable_from, margin)``: both configurations'
    verdicts are recomputed from their scores with it, so that edits of the edges between the runs
    do not count as flips."""
    from wsloc_runtime.fusion import DEFAULT_SETTINGS

    return tuple(DEFAULT_SETTINGS.verdict_band), DEFAULT_SETTINGS.readable_from, DEFAULT_SETTINGS.verdict_margin


def summarize(out: Path) -> bool:
    """Print the comparison and whether each target holds; True when all do."""
    reference, other = out / "reference", out / "other"
    compared = compare_evaluations.compare_folders(reference, other, masks=True, rule=_shipped_rule())
    print("\n".join(compared["lines"]))
    totals = compared["totals"]
    photos, masks = totals["photos"], totals["masks"]
    print(f"same verdict: {totals['same_verdict']}/{photos} photos; masks agreeing (F1 >= "
          f"{compare_evaluations.MASK_AGREEMENT}): {totals['masks_agree']}/{masks}")
    examples_same = (reference / "examples.txt").read_text() == (other / "examples.txt").read_text()
    checks = {
        f"same verdict on >= {SAME_VERDICT_TARGET:.1%} of photos":
            photos > 0 and totals["same_verdict"] / photos >= SAME_VERDICT_TARGET,
        f"masks agree (F1 >= {compare_evaluations.MASK_AGREEMENT}) on >= {MASK_TARGET:.0%}":
            masks > 0 and totals["masks_agree"] / masks >= MASK_TARGET,
        "examples' lines identical as printed": examples_same,
    }
    for label, held in checks.items():
        print(f"{'held' if held else 'NOT held'}: {label}")
    return all(checks.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for both configurations' outputs")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the SET.csv files")
    parser.add_argument("--sets", nargs="+", default=list(VISIBLE_SETS))
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos of each set")
    parser.add_argument("--compare-only", action="store_true", help="compare what OUT already holds")
    parser.add_argument("--examples-only", action="store_true",
                        help="run only the examples in both configurations (again), then compare all")
    args = parser.parse_args(argv)
    missing = [s for s in args.sets if not (args.data / f"{s}.csv").is_file()]
    if missing and not args.compare_only:
        parser.error(f"not found in {args.data}: {', '.join(f'{s}.csv' for s in missing)}")
    if not args.compare_only:
        for name in CONFIGURATIONS:
            run_configuration(name, args.out, args.data, [] if args.examples_only else args.sets, args.limit)
    return 0 if summarize(args.out) else 1


if __name__ == "__main__":
    sys.exit(main())
