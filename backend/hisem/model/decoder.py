"""Caption decoder: word embedding + sinusoidal positions -> causal transformer decoder -> vocabulary.

Token ids: <NULL>=0 (padding), <UNK>=1, <START>=2, <END>=3. Training feeds tokens[:, :-1] and
predicts tokens[:, 1:].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hisem.model.config import DecoderConfig
from hisem.model.positions import sinusoidal_positions

PAD_ID = 0


class CaptionDecoder(nn.Module):
    def __init__(self, dim: int, vocab_size: int, cfg: DecoderConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        # Fixed table, not saved: the checkpoint holds only what was learned.
        self.register_buffer("positions", sinusoidal_positions(cfg.max_len, dim), persistent=False)
        self.dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerDecoderLayer(
            dim, cfg.heads, dim_feedforward=cfg.ffn_mult * dim, dropout=cfg.dropout, batch_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, memory: Tensor, tokens: Tensor) -> Tensor:
        """memory (B, L, D), tokens (B, T) long with T <= max_len -> logits (B, T, V)."""
        t = tokens.shape[1]
        x = self.dropout(self.embed(tokens) + self.positions[:t])  # (B, T, D)
        # A bool mask on both sides (True = blocked): mixing float and bool masks is deprecated.
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tokens.device), diagonal=1)
        # tgt_is_causal=True as well: saves PyTorch from inspecting the mask's values (data-dependent,
        # which breaks torch.export) to find out that it is causal.
        x = self.decoder(
            x, memory, tgt_mask=causal, tgt_is_causal=True, tgt_key_padding_mask=tokens == PAD_ID
        )
        return self.head(x)
