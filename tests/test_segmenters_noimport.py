"""The ONNX-backed segmenters run with torch and TensorFlow impossible to import.

A subprocess installs a ``sys.meta_path`` finder that raises ImportError for ``torch``
and ``tensorflow`` (and their submodules) before importing wsloc_runtime, then builds
and runs every model-backed segmenter on files the torch exporters wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from tests.segmenter_fixtures import photo, semantic_exports, tiny_sam, tiny_sam_dir, tiny_sam_export  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import json, sys

    BLOCKED = ("torch", "tensorflow", "torchvision", "segment_anything", "keras")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())
    import numpy as np
    from wsloc_runtime.segmenters import create_segmenter

    image = np.load(sys.argv[1])
    report = {}
    for name, model_dir, params in (
        ("sam", sys.argv[2], {"points_per_side": 8, "pred_iou_thresh": 0.1, "stability_score_thresh": 0.85}),
        ("deeplab", sys.argv[3], {}),
        ("pspnet", sys.argv[3], {}),
    ):
        segmenter = create_segmenter(name, model_dir=model_dir, **params)
        regions = segmenter.segment(image)
        report[name] = {"shape": list(regions.masks.shape), "timings": segmenter.last_timings}
    report["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps(report))
    """
)


def test_segmenters_run_without_torch_or_tensorflow(tiny_sam_dir, semantic_exports, tmp_path):
    image = photo()
    np.save(tmp_path / "image.npy", image)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), WSLOC_PROVIDERS="CPUExecutionProvider")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "image.npy"), str(tiny_sam_dir), str(semantic_exports["dir"])],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    for name in ("sam", "deeplab", "pspnet"):
        assert report[name]["shape"][1:] == list(image.shape[:2]), name
        assert report[name]["shape"][0] >= 1, name
