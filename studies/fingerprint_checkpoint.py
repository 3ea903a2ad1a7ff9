"""Score one fingerprint training checkpoint alone on the learning-curve subsets.

    python -m studies.fingerprint_checkpoint --checkpoint runs/fp2/last.pt --out runs/fpeval/fp2_final

Exports the checkpoint (``export.fingerprint_export``, with its parity check) to ``OUT/fingerprint.onnx``,
then scores its map alone (``wsloc evaluate --map evidence:fingerprint``) on the first tampered photos of
three sets: cocoglide-dev (60 inpaintings), casia1-dev-resize75 (40 splices), nist16-dev (60), the
subsets of the model card's learning curves. Prints one line per subset (pixel AUC, F1 at 0.5) and the
mean AUC, the quantity the eleventh fusion study (docs/fusion.md) decides the model on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from training.synth import default_data_root

#: (set, how many of its tampered photos, in the file's order).
SUBSETS = (("cocoglide-dev", 60), ("casia1-dev-resize75", 40), ("nist16-dev", 60))


def subset_csv(data: Path, name: str, count: int, out: Path) -> Path:
    """The first ``count`` tampered rows of ``data/name.csv``, with absolute paths, as ``out``."""
    lines = (data / f"{name}.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:] if line.strip()]
    tampered = [(image, mask) for image, mask in rows if mask.strip()][:count]
    out.write_text("\n".join([lines[0]] + [f"{data / image},{data / mask}" for image, mask in tampered]) + "\n")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a last.pt of training.fingerprint")
    parser.add_argument("--out", type=Path, required=True, help="folder for the ONNX file and the reports")
    parser.add_argument("--data", type=Path, default=default_data_root())
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        parser.error(f"no checkpoint at {args.checkpoint}")
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.checkpoint, args.out / "last.pt")  # the exporter reads RUN_DIR/last.pt
    subprocess.run([sys.executable, "-m", "export.fingerprint_export", "--run", str(args.out),
                    "--out", str(args.out / "fingerprint.onnx"), "--no-checksums"], check=True,
                   stdout=subprocess.DEVNULL)
    environment = dict(os.environ, WSLOC_MODELS=str(args.out))  # the evidence finds this model first
    aucs = []
    for name, count in SUBSETS:
        pairs = subset_csv(args.data, name, count, args.out / f"{name}-{count}.csv")
        report = args.out / f"{name}-{count}.json"
        subprocess.run([sys.executable, "-m", "wsloc_runtime", "-q", "evaluate", "--pairs", str(pairs),
                        "--map", "evidence:fingerprint", "--threads", "1", "--out", str(report)],
                       check=True, env=environment, stdout=subprocess.DEVNULL)
        scores = json.loads(report.read_text())
        aucs.append(scores["pixel_auc"])
        print(f"{name} ({count}): pixel AUC {scores['pixel_auc']:.3f}, F1 {scores['pixel_f1']:.3f}")
    print(f"mean pixel AUC {sum(aucs) / len(aucs):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
