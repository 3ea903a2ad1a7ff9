"""A compact PSPNet (Zhao et al., CVPR 2017) on a torchvision ResNet, for export to ONNX.

The paper this project follows used the Keras PSPNet of ``image-segmentation-keras``
trained on ADE20K. That stack is TensorFlow 1-era Keras; this module is the same
architecture in torch:

* a dilated ResNet (layers 3 and 4 dilated by 2 and 4, output stride 8), built from
  torchvision's ResNet so ImageNet backbone weights fit;
* a pyramid pooling module with bins (1, 2, 3, 6), each a 1x1 convolution to
  ``C / 4`` channels, upsampled bilinearly and concatenated with the features;
* a 3x3 convolution head (512 channels, dropout) and a 1x1 classifier, upsampled to the
  input size.

Checkpoints it accepts: a ``state_dict`` of this module (optionally wrapped in
``{"state_dict": ...}`` or ``{"model": ...}``, keys optionally prefixed ``module.``), as
written by ``torch.save(PSPNet(...).state_dict(), path)``. Parameter names follow
hszhao/semseg (``layer0..4``, ``ppm.features.i``, ``cls``, ``aux``) so a converted
semseg checkpoint needs only the stem mapped; semseg's deep 3-convolution stem itself
is not this module's (torchvision's single 7x7 stem), so its checkpoints do not load as is.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")


def _dilate(layer: nn.Module, dilation: int) -> None:
    """Turn a ResNet stage's stride into dilation (the semseg recipe, for both block types)."""
    for name, module in layer.named_modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            module.dilation, module.padding, module.stride = (dilation, dilation), (dilation, dilation), (1, 1)
        elif isinstance(module, nn.Conv2d) and "downsample" in name:
            module.stride = (1, 1)


def adaptive_avg_pool2d_unrolled(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` as explicit slices and means.

    ONNX has no adaptive pooling, and torch's exporter refuses output sizes that do not
    divide the input (bins 3 and 6 of a 60x60 map, say). At export the spatial size is
    fixed, so the bin edges (torch's: floor(i*n/b) to ceil((i+1)*n/b)) are constants.
    """
    height, width = int(x.shape[-2]), int(x.shape[-1])
    rows = []
    for i in range(bins):
        y0, y1 = (i * height) // bins, -((-(i + 1) * height) // bins)
        cols = []
        for j in range(bins):
            x0, x1 = (j * width) // bins, -((-(j + 1) * width) // bins)
            cols.append(x[:, :, y0:y1, x0:x1].mean(dim=(2, 3), keepdim=True))
        rows.append(torch.cat(cols, dim=3))
    return torch.cat(rows, dim=2)


class PyramidPooling(nn.Module):
    """Average-pool to each bin size, reduce, upsample, and concatenate with the input."""

    def __init__(self, in_dim: int, reduction_dim: int, bins: tuple[int, ...]) -> None:
        super().__init__()
        self.bins = tuple(bins)
        self.features = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(bin_size),
                nn.Conv2d(in_dim, reduction_dim, kernel_size=1, bias=False),
                nn.BatchNorm2d(reduction_dim),
                nn.ReLU(inplace=True),
            )
            for bin_size in bins
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = []
        for bin_size, feature in zip(self.bins, self.features):
            if torch.onnx.is_in_onnx_export():
                # Same numbers as the AdaptiveAvgPool2d in feature[0], in ops ONNX has.
                y = feature[1:](adaptive_avg_pool2d_unrolled(x, bin_size))
            else:
                y = feature(x)
            pooled.append(F.interpolate(y, size, mode="bilinear", align_corners=True))
        return torch.cat([x, *pooled], dim=1)


class PSPNet(nn.Module):
    """PSPNet: ``float32 (B, 3, H, W)`` ImageNet-normalised RGB -> ``(B, num_classes, H, W)`` logits.

    Args:
        num_classes: output classes (150 for ADE20K).
        backbone: one of :data:`BACKBONES`.
        bins: pyramid bin sizes.
        dropout: before the classifier.
        aux: build the auxiliary head on layer 3 (training only; not exported).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", bins: tuple[int, ...] = (1, 2, 3, 6),
                 dropout: float = 0.1, aux: bool = False) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        resnet = getattr(torchvision.models, backbone)(weights=None)
        self.backbone_name = backbone
        self.layer0 = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        _dilate(self.layer3, 2)
        _dilate(self.layer4, 4)
        feature_dim = 2048 if backbone in ("resnet50", "resnet101") else 512
        self.ppm = PyramidPooling(feature_dim, feature_dim // len(bins), tuple(bins))
        self.cls = nn.Sequential(
            nn.Conv2d(feature_dim * 2, 512, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(512),
            nn.ReLU(inplace=True),
            nn.Dropout2d(p=dropout),
            nn.Conv2d(512, num_classes, kernel_size=1),
        )
        self.aux = (
            nn.Sequential(
                nn.Conv2d(feature_dim // 2, 256, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(256),
                nn.ReLU(inplace=True),
                nn.Dropout2d(p=dropout),
                nn.Conv2d(256, num_classes, kernel_size=1),
            )
            if aux
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.layer0(x)))))
        x = self.cls(self.ppm(x))
        return F.interpolate(x, size, mode="bilinear", align_corners=True)
