"""Greedy caption decoding on a memory, for PyTorch models (the ONNX engine has its own runner).

Kept apart from the model so that the same loop serves images (``HiSem.generate``) and cached
features (validation during training).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hisem.model.decoder import PAD_ID

if TYPE_CHECKING:
    from hisem.model.hisem import HiSem

START_ID = 2
END_ID = 3


@torch.no_grad()
def greedy_decode(
    model: HiSem, memory: Tensor, max_len: int | None = None, start_id: int = START_ID, end_id: int = END_ID
) -> Tensor:
    """memory (B, L, D) -> ids (B, T) without <START>: words, <END> where produced, then <NULL>.

    T <= max_len - 1; max_len counts <START> and <END> and is capped at ``cfg.decoder.max_len``.
    The whole prefix is re-decoded every step: at 1 layer and ~20 steps this costs less than a
    key/value cache would in code, and it exports as the plain decoder graph.
    """
    limit = min(max_len or model.cfg.decoder.max_len, model.cfg.decoder.max_len)
    batch = memory.shape[0]
    seq = torch.full((batch, 1), start_id, dtype=torch.long, device=memory.device)
    done = torch.zeros(batch, dtype=torch.bool, device=memory.device)
    for _ in range(limit - 1):
        nxt = model.decode(memory, seq)[:, -1].argmax(dim=-1)  # (B,)
        nxt = nxt.masked_fill(done, PAD_ID)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        done |= nxt == end_id
        if bool(done.all()):
            break
    return seq[:, 1:]
