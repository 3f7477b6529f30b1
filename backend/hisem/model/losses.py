"""Training losses: caption CE + router CE + MoE balance + change-mask BCE & Dice.

Written without data-dependent branches (masks weight the per-sample terms), so a batch where no
sample has a mask, no caption or no known change flag gives that term exactly 0 with a valid graph
(a zero gradient), never the NaN of a mean over nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hisem.model.decoder import PAD_ID
from hisem.model.hisem import HiSemOutput


def _mean_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    """Cross-entropy averaged over the targets that are not ``ignore_index``; 0 when there is none.

    F.cross_entropy's "mean" divides by the number of kept targets, 0/0 = NaN for a batch without
    any; the sum over a count clamped at 1 is the same mean otherwise, and exactly 0 then.
    """
    # float(): a sum over thousands of tokens in fp16/bf16 (autocast) would lose the small terms.
    total = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum")
    return total / (target != ignore_index).sum().clamp(min=1)


def caption_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """logits (B, T, V) from tokens[:, :-1]; tokens (B, T + 1) full ids. <NULL> targets are ignored."""
    target = tokens[:, 1:]
    if logits.shape[1] != target.shape[1]:
        raise ValueError(f"logits cover {logits.shape[1]} steps but tokens[:, 1:] has {target.shape[1]}")
    return _mean_cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), PAD_ID)


def router_loss(router_logits: Tensor, changeflag: Tensor) -> Tensor:
    """Cross-entropy of the image-level router against the change flag (0 unchanged, 1 changed)."""
    return _mean_cross_entropy(router_logits, changeflag.long(), -1)  # -1: flag unknown


def mask_loss(mask_logits: Tensor, mask: Tensor, has_mask: Tensor) -> Tensor:
    """BCE + soft Dice, averaged over the samples that have a mask; 0 when none has.

    mask_logits (B, 1, S, S); mask (B, 1, S, S) or (B, S, S), 1 = changed; has_mask bool (B,).
    Dice keeps small changes from being drowned by the background, which BCE alone lets happen.
    """
    target = mask.reshape(mask_logits.shape).to(mask_logits.dtype)
    bce = F.binary_cross_entropy_with_logits(mask_logits, target, reduction="none").flatten(1).mean(1)  # (B,)
    prob = torch.sigmoid(mask_logits).flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (prob * t).sum(1) + 1) / (prob.sum(1) + t.sum(1) + 1)  # (B,), +1: empty masks are fine
    weight = has_mask.to(mask_logits.dtype)
    return ((bce + dice) * weight).sum() / weight.sum().clamp(min=1.0)


def total_loss(
    out: HiSemOutput, batch: dict[str, Tensor], router_weight: float, mask_weight: float = 1.0
) -> tuple[Tensor, dict[str, float]]:
    """Caption CE + router_weight x router CE + balance (weighted in the model) + mask_weight x mask.

    ``batch`` has ``tokens`` (B, T + 1) long, ``changeflag`` (B,), ``mask`` (B, [1,] S, S) and
    ``has_mask`` bool (B,); ``out.logits`` must come from ``tokens[:, :-1]``. ``router_weight``
    follows the caller's schedule (0 during warm-up). Returns the loss and its parts as floats.
    """
    if out.logits is None:
        raise ValueError("total_loss needs caption logits: call the model with tokens")
    caption = caption_loss(out.logits, batch["tokens"])
    router = router_loss(out.router_logits, batch["changeflag"])
    mask = (
        mask_loss(out.mask_logits, batch["mask"], batch["has_mask"])
        if out.mask_logits is not None
        else caption.new_zeros(())
    )
    loss = caption + router_weight * router + out.balance_loss + mask_weight * mask
    parts = {
        "loss": loss.item(),
        "caption": caption.item(),
        "router": router.item(),
        "balance": out.balance_loss.item(),
        "mask": mask.item(),
    }
    return loss, parts
