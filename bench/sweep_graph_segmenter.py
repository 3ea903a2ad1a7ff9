"""Oracle IoU of the graph segmenter's regions on the development sets, per parameter setting.

For every tampered image, the best IoU between any region and the reference mask: an
upper bound on what the region-selection step can reach with that segmenter.

    python bench/sweep_graph_segmenter.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsloc_runtime.evaluate import read_mask, read_pairs  # noqa: E402
from wsloc_runtime.imageio import load_image  # noqa: E402
from wsloc_runtime.segmenters.graph import GraphSegmenter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    parser.add_argument("--out", default="bench/results/graph_segmenter_sweep.json")
    args = parser.parse_args()
    data_dir = Path(args.data)
    pairs = [p for name in ("casia2-samples.csv", "noso.csv") for p in read_pairs(data_dir / name) if p.mask]
    samples = [(load_image(p.image), read_mask(p.mask)) for p in pairs]
    rows = []
    settings = [((400.0,), 384), ((400.0,), 256), ((200.0, 800.0), 256), ((300.0, 1000.0), 384),
                ((200.0, 500.0, 1500.0), 256)]
    for (scales, side), min_fraction in itertools.product(settings, (0.002, 0.005)):
        segmenter = GraphSegmenter(scales=scales, min_area_fraction=min_fraction, max_side=side)
        ious, counts, start = [], [], time.perf_counter()
        for rgb, truth in samples:
            masks = segmenter.segment(rgb).masks
            inter = (masks & truth).sum(axis=(1, 2))
            union = (masks | truth).sum(axis=(1, 2))
            ious.append(float((inter / np.maximum(union, 1)).max()))
            counts.append(len(masks))
        row = {"scales": scales, "max_side": side, "min_area_fraction": min_fraction,
               "oracle_iou": round(float(np.mean(ious)), 4), "regions": round(float(np.mean(counts)), 1),
               "seconds_per_image": round((time.perf_counter() - start) / len(samples), 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"images": len(samples), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
