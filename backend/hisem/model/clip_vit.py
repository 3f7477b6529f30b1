"""The `paper` backbone: OpenAI CLIP's ViT image tower, loaded from a local file, never downloaded.

Module names mirror OpenAI's ``visual.*`` key layout (``conv1``, ``class_embedding``,
``transformer.resblocks.N.attn.in_proj_weight`` ...), so an OpenAI state dict loads strictly. The
shape (width, layers, patch, grid) is read from the weights the way OpenAI's ``build_model`` does,
and written back into the config so that a HiSem checkpoint rebuilds the tower without the file.
"""

from __future__ import annotations

import warnings
import zipfile
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hisem.model.config import EncoderConfig
from hisem.model.encoders import Backbone, Features, freeze_

REQUIRED_KEYS = (
    "conv1.weight",
    "class_embedding",
    "positional_embedding",
    "ln_pre.weight",
    "ln_post.weight",
    "transformer.resblocks.0.attn.in_proj_weight",
)


class QuickGELU(nn.Module):
    """OpenAI CLIP's GELU approximation; its weights were trained with it, so keep it."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(), c_proj=nn.Linear(4 * width, width)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Only a holder, so the keys read ``transformer.resblocks.N``."""

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))


class VisionTransformer(nn.Module):
    """CLIP's image tower without the final ``proj`` to the joint space (HiSem projects its own)."""

    def __init__(self, width: int, layers: int, patch: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads=max(1, width // 64))  # OpenAI: 64-d heads
        self.ln_post = nn.LayerNorm(width)

    def forward(self, images: Tensor, keep: int) -> tuple[Tensor, Tensor]:
        """Patch tokens after ``ln_post`` and after ``keep`` blocks, both (B, L, width), no CLS."""
        x = self.conv1(images).flatten(2).transpose(1, 2)  # (B, L, W)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, W)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)  # (B, 1 + L, W)
        early = x
        for i, block in enumerate(self.transformer.resblocks):
            x = block(x)
            if i + 1 == keep:
                early = x
        return self.ln_post(x[:, 1:]), early[:, 1:]


def _is_torchscript(path: Path) -> bool:
    """OpenAI ships TorchScript archives: zips with a ``code/`` folder and ``constants.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())


def load_clip_visual_state(path: str | Path) -> dict[str, Tensor]:
    """The ``visual.*`` weights of a local CLIP file (plain state dict or TorchScript), prefix removed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"CLIP weights not found: {path}. The `paper` encoder needs encoder.weights to point to a "
            "local OpenAI CLIP ViT-B/16 file (e.g. ViT-B-16.pt); it is never downloaded."
        )
    if _is_torchscript(path):
        # TorchScript is deprecated in PyTorch, but it is the format OpenAI published CLIP in.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a CLIP state dict")
    visual = {k.removeprefix("visual."): v.float() for k, v in state.items() if k.startswith("visual.")}
    missing = [k for k in REQUIRED_KEYS if k not in visual]
    if missing:
        found = ", ".join(list(state)[:5])
        raise ValueError(
            f"{path} does not have the OpenAI CLIP key layout: missing visual.{', visual.'.join(missing)} "
            f"(found e.g. {found})"
        )
    return visual


def infer_clip_shape(visual: dict[str, Tensor]) -> tuple[int, int, int, int]:
    """(width, layers, patch, grid) from the weights, as OpenAI's ``build_model`` reads them."""
    width, _, patch, _ = visual["conv1.weight"].shape
    layers = len({k.split(".")[2] for k in visual if k.startswith("transformer.resblocks.")})
    positions = visual["positional_embedding"].shape[0]
    grid = round((positions - 1) ** 0.5)
    if grid * grid + 1 != positions:
        raise ValueError(f"positional_embedding has {positions} rows, not 1 + a square grid")
    return int(width), layers, int(patch), grid


class ClipEncoder(Backbone):
    """Coarse = final patch tokens (ln_post); fine = tokens halfway up the tower, upsampled to S/8.

    A ViT has no higher-resolution stage; the halfway tokens keep more spatial detail than the last
    ones, and they sit below the trained blocks, so they stay cacheable when the top is fine-tuned.
    """

    def __init__(self, cfg: EncoderConfig, visual: dict[str, Tensor] | None = None) -> None:
        super().__init__()
        width, layers = cfg.vit_width, cfg.vit_layers
        if cfg.image_size != cfg.grid * cfg.vit_patch:
            raise ValueError(
                f"a ViT with {cfg.vit_patch}-px patches on a {cfg.grid}x{cfg.grid} grid takes "
                f"{cfg.grid * cfg.vit_patch} px images, not {cfg.image_size}"
            )
        self.visual = VisionTransformer(width, layers, cfg.vit_patch, cfg.grid)
        self.coarse_channels = self.fine_channels = width
        self.keep = max(1, layers // 2)
        self.fine_size = cfg.image_size // 8
        if visual is not None:
            self._load(visual)
        n_train = 0 if cfg.freeze else min(max(0, cfg.trainable_blocks), layers)
        tower = self.visual
        frozen_blocks = tower.transformer.resblocks[: layers - n_train]
        self._frozen: list[nn.Module] = [tower.conv1, tower.ln_pre, *frozen_blocks]
        for module in self._frozen:
            freeze_(module)
        tower.class_embedding.requires_grad_(False)
        tower.positional_embedding.requires_grad_(False)
        if cfg.freeze:
            freeze_(tower.ln_post)
            self._frozen.append(tower.ln_post)

    def _load(self, visual: dict[str, Tensor]) -> None:
        visual = {k: v for k, v in visual.items() if k != "proj"}  # joint-space projection: unused
        result = self.visual.load_state_dict(visual, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                "CLIP weights do not match the OpenAI ViT layout: "
                f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
            )

    def frozen_modules(self) -> list[nn.Module]:
        return self._frozen

    def forward(self, images: Tensor) -> Features:
        final, early = self.visual(images, self.keep)  # (B, L, W) each
        b, n, w = final.shape
        g = self.visual.grid
        coarse = final.transpose(1, 2).reshape(b, w, g, g)  # (B, W, g, g)
        early = early.transpose(1, 2).reshape(b, w, g, g)
        size = (self.fine_size, self.fine_size)
        fine = F.interpolate(early, size=size, mode="bilinear", align_corners=False)
        return Features(coarse, fine)  # fine (B, W, S/8, S/8)


def build_clip_encoder(cfg: EncoderConfig, load_weights: bool = True) -> tuple[ClipEncoder, EncoderConfig]:
    """The tower, and ``cfg`` with the ViT shape read from the file (so checkpoints rebuild it).

    ``load_weights=False`` (or ``pretrained=False``) builds a random tower of the shape in ``cfg``:
    what a HiSem checkpoint needs, since it carries the CLIP weights in its own state dict.
    """
    if not (cfg.pretrained and load_weights):
        return ClipEncoder(cfg), cfg
    if not cfg.weights:
        raise ValueError(
            "the `paper` encoder needs encoder.weights: a local OpenAI CLIP ViT-B/16 file (never downloaded)"
        )
    visual = load_clip_visual_state(cfg.weights)
    width, layers, patch, grid = infer_clip_shape(visual)
    if cfg.grid != grid or cfg.image_size != grid * patch:
        raise ValueError(
            f"{cfg.weights} is a {grid}x{grid}-patch ViT at {grid * patch} px; set encoder.grid={grid} and "
            f"encoder.image_size={grid * patch} (config has grid {cfg.grid}, image_size {cfg.image_size})"
        )
    cfg = replace(cfg, vit_width=width, vit_layers=layers, vit_patch=patch)
    return ClipEncoder(cfg, visual), cfg
