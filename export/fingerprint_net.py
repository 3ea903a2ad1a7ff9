"""The processing-fingerprint network and its checkpoints (torch): shared by the trainer
(:mod:`training.fingerprint`) and the exporter (:mod:`export.fingerprint_export`).

Luminance ``(N, 1, H, W)`` (H, W multiples of ``space_to_depth``) -> space-to-depth (lossless:
the ``s x s`` pixel phases become channels) -> ``layers - 1`` 3x3 convolutions with BatchNorm and
ReLU -> a 1x1 convolution to ``dim``: a dense embedding at output stride ``space_to_depth``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

VERSION = "fingerprint-1"


class FingerprintNet(nn.Module):
    """Luminance ``(N, 1, H, W)`` (H, W multiples of ``space_to_depth``) -> ``(N, dim, H/s, W/s)``."""

    def __init__(self, channels: int = 32, layers: int = 6, dim: int = 16, space_to_depth: int = 4):
        super().__init__()
        self.space_to_depth = space_to_depth
        blocks: list[nn.Module] = []
        width_in = space_to_depth * space_to_depth
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(width_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            width_in = channels
        blocks.append(nn.Conv2d(width_in, dim, 1))
        self.body = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.space_to_depth > 1:
            x = F.pixel_unshuffle(x, self.space_to_depth)
        return self.body(x)


def receptive_field(layers: int, space_to_depth: int) -> int:
    """Pixels one output position sees: ``layers - 1`` 3x3 convolutions at stride ``space_to_depth``."""
    return space_to_depth * (2 * (layers - 1) + 1)


def build_net(settings: dict) -> FingerprintNet:
    return FingerprintNet(settings["channels"], settings["layers"], settings["dim"], settings["space_to_depth"])


def load_checkpoint(run_dir: Path) -> dict:
    return torch.load(Path(run_dir) / "last.pt", map_location="cpu", weights_only=False)


def load_net(run_dir: Path) -> tuple[FingerprintNet, dict]:
    """The trained network of a run directory (eval mode) and its settings."""
    ckpt = load_checkpoint(run_dir)
    net = build_net(ckpt["settings"])
    net.load_state_dict(ckpt["model"])
    net.eval()
    return net, ckpt


