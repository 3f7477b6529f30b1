"""CUDA's autocast rules where they differ from the CPU's, for tests that can only run on a CPU.

Under CUDA autocast LayerNorm runs in fp32 (it is on CUDA's fp32 list) while Linear layers return
fp16; CPU autocast runs LayerNorm in the low precision too, which hides every place where an fp32
LayerNorm output meets a half-precision Linear output. ``cuda_layer_norm_rule`` makes CPU autocast
behave like CUDA's for LayerNorm, so a CPU test meets the dtypes a GPU run meets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor


@contextmanager
def cuda_layer_norm_rule(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """F.layer_norm in fp32 (inputs and result) whenever CPU autocast is on, as CUDA autocast does."""
    original = F.layer_norm

    def layer_norm(x: Tensor, shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
        if not torch.is_autocast_enabled("cpu"):
            return original(x, shape, weight, bias, eps)
        with torch.autocast("cpu", enabled=False):
            return original(
                x.float(), shape, None if weight is None else weight.float(),
                None if bias is None else bias.float(), eps,
            )

    with monkeypatch.context() as patch:
        patch.setattr(F, "layer_norm", layer_norm)
        yield
