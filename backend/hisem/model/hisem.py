"""HiSem assembled: siamese backbone -> projection + 2-D positions -> BDAM -> HASD -> decoder / mask head.

The network is cut in three so that training can cache the frozen part and export can trace the
rest: ``extract`` (backbone, per image), ``encode`` (everything between the two dates), ``decode``
(captions from the memory).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from hisem.model.bdam import BDAM
from hisem.model.clip_vit import build_clip_encoder
from hisem.model.config import EncoderConfig, HiSemConfig, preset
from hisem.model.decoder import CaptionDecoder
from hisem.model.decoding import greedy_decode
from hisem.model.encoders import Backbone, Features, LiteEncoder, TinyCNN
from hisem.model.hasd import HASD, PlainFusion
from hisem.model.mask_head import ChangeMaskHead
from hisem.model.positions import LearnedPosition2D


class HiSemOutput(NamedTuple):
    memory: Tensor  # (B, L, D) decoder memory
    router_logits: Tensor  # (B, 2) 0 = unchanged, 1 = changed; zeros when HASD is off
    mask_logits: Tensor | None  # (B, 1, S, S) change logits at input resolution; None without mask head
    balance_loss: Tensor  # scalar MoE balance loss, already times cfg.hasd.balance_weight; 0 without HASD
    logits: Tensor | None = None  # (B, T, V) caption logits when tokens were given


def build_backbone(cfg: EncoderConfig, load_weights: bool = True) -> tuple[Backbone, EncoderConfig]:
    """The encoder preset's backbone and its config (the `paper` one learns its ViT shape from the file)."""
    if cfg.name == "tiny":
        return TinyCNN(cfg), cfg
    if cfg.name == "lite":
        return LiteEncoder(cfg, load_weights), cfg
    if cfg.name == "paper":
        return build_clip_encoder(cfg, load_weights)
    raise ValueError(f"unknown encoder {cfg.name!r}; choose tiny, lite or paper")


class HiSem(nn.Module):
    """Change captioning of an image pair, plus a change mask.

    Images are (B, 3, S, S), normalised with ``cfg.encoder.mean/std``, S = ``cfg.encoder.image_size``,
    both dates on the same grid. Tokens are (B, T) long ids, <NULL>=0, <START>=2, <END>=3.
    """

    def __init__(self, cfg: HiSemConfig, load_weights: bool = True) -> None:
        super().__init__()
        backbone, encoder_cfg = build_backbone(cfg.encoder, load_weights)
        self.cfg = replace(cfg, encoder=encoder_cfg)
        dim, grid = cfg.dim, cfg.encoder.grid
        self.backbone = backbone
        self.project = nn.Sequential(nn.Linear(backbone.coarse_channels, dim), nn.LayerNorm(dim))
        self.positions = LearnedPosition2D(grid, dim)
        self.bdam = BDAM(dim, grid, cfg.bdam) if cfg.bdam.enabled else None
        self.hasd = HASD(dim, grid, cfg.hasd, choice_bias=cfg.flag_bias) if cfg.hasd.enabled else None
        self.fusion = None if cfg.hasd.enabled else PlainFusion(dim, grid, cfg.hasd)
        self.mask_head = (
            ChangeMaskHead(dim, backbone.fine_channels, grid, cfg.encoder.image_size, cfg.mask_head.channels)
            if cfg.mask_head.enabled
            else None
        )
        self.decoder = CaptionDecoder(dim, cfg.vocab_size, cfg.decoder)

    def extract(self, images: Tensor) -> Features:
        """Backbone features of one date; with ``encoder.freeze`` a pure function of the image."""
        return self.backbone(images)

    def _tokens(self, coarse: Tensor) -> Tensor:
        x = self.project(coarse.flatten(2).transpose(1, 2))  # (B, Cc, g, g) -> (B, L, D)
        return x + self.positions()  # the same position weights for both dates

    def encode(self, before: Features, after: Features, route: Tensor | None = None) -> HiSemOutput:
        """Both dates' features -> memory, router logits, mask logits, balance loss (no captions).

        ``route`` (B,) long teacher-forces the HASD path per sample (0 unchanged, 1 changed);
        None follows the router's top-1 choice.
        """
        fb, fa = self._tokens(before.coarse), self._tokens(after.coarse)  # (B, L, D) each
        if self.bdam is not None:
            fb, fa = self.bdam(fb, fa)
        if self.hasd is not None:
            memory, router_logits, balance = self.hasd(fb, fa, route)
            balance = balance * self.cfg.hasd.balance_weight
        else:
            memory = self.fusion(fb, fa)
            router_logits = memory.new_zeros(memory.shape[0], 2)
            balance = memory.new_zeros(())
        mask = self.mask_head(fa - fb, before.fine, after.fine) if self.mask_head is not None else None
        return HiSemOutput(memory, router_logits, mask, balance)

    def decode(self, memory: Tensor, tokens: Tensor) -> Tensor:
        """memory (B, L, D), tokens (B, T) -> logits (B, T, V); position t sees tokens <= t only."""
        return self.decoder(memory, tokens)

    def forward(
        self, before: Tensor, after: Tensor, tokens: Tensor | None = None, route: Tensor | None = None
    ) -> HiSemOutput:
        """Images (B, 3, S, S) of both dates -> outputs; caption logits when ``tokens`` (B, T) is given."""
        # Two backbone calls rather than one on the concatenated batch: a training backbone then sees
        # the same per-date BatchNorm batches as the cached-feature path (and it is no slower on CPU).
        out = self.encode(self.extract(before), self.extract(after), route)
        if tokens is not None:
            out = out._replace(logits=self.decode(out.memory, tokens))
        return out

    @torch.no_grad()
    def generate(
        self, before: Tensor, after: Tensor, max_len: int | None = None, start_id: int = 2, end_id: int = 3
    ) -> tuple[Tensor, HiSemOutput]:
        """Greedy captions, the paper's decoding; the router decides the path.

        Returns ids (B, T) without <START>: words, then <END> where one was produced, then <NULL>;
        T <= max_len - 1 (max_len counts <START> and <END>, capped at ``cfg.decoder.max_len``).
        """
        out = self.forward(before, after)
        return greedy_decode(self, out.memory, max_len, start_id, end_id), out

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def build_model(cfg: HiSemConfig | str, *, load_weights: bool = True, **overrides: Any) -> HiSem:
    """A model from a config or a preset name (``build_model("tiny", vocab_size=40)``).

    ``load_weights=False`` skips the backbone's pretrained weights (random init of the same shape):
    for rebuilding from a checkpoint, which carries them.
    """
    if isinstance(cfg, str):
        cfg = preset(cfg, **overrides)
    elif overrides:
        cfg = replace(cfg, **overrides)
    return HiSem(cfg, load_weights=load_weights)
