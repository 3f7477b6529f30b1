"""The release's two training schedules, scaled to any number of epochs.

The HiSem release trains 50 epochs. Its router loss sends no gradient for the first 4 epochs, then
ramps up on a half-cosine to the end; the HASD path follows the ground-truth change flag (teacher
forcing) up to epoch 41 of 50 and the router's own choice after. With fewer epochs we keep the same
fractions, so that a 10-epoch run has the same shape as the paper's 50.
"""

from __future__ import annotations

import math

PAPER_EPOCHS = 50
PAPER_WARMUP_EPOCHS = 4
PAPER_TEACHER_FORCED_EPOCHS = 41
ROUTER_LOSS_WEIGHT = 0.8


def router_warmup_epochs(total_epochs: int) -> int:
    """Epochs during which the router loss is off (4 of 50 in the release)."""
    return round(total_epochs * PAPER_WARMUP_EPOCHS / PAPER_EPOCHS)


def router_weight(epoch: int, total_epochs: int, max_weight: float = ROUTER_LOSS_WEIGHT) -> float:
    """Router-loss weight for a 0-based ``epoch``: 0 during warm-up, then a half-cosine to max_weight.

    The ramp reaches ``max_weight`` at the last epoch: 0.5 * (1 - cos(pi * progress)).
    """
    if total_epochs <= 0:
        raise ValueError("total_epochs must be positive")
    warmup = router_warmup_epochs(total_epochs)
    if epoch < warmup:
        return 0.0
    ramp_epochs = max(total_epochs - warmup, 1)
    progress = min((epoch - warmup + 1) / ramp_epochs, 1.0)
    return max_weight * 0.5 * (1.0 - math.cos(math.pi * progress))


def teacher_forced(epoch: int, total_epochs: int) -> bool:
    """Whether the HASD path follows the ground-truth change flag in this 0-based epoch."""
    cutoff = round(total_epochs * PAPER_TEACHER_FORCED_EPOCHS / PAPER_EPOCHS)
    return epoch < cutoff


LR_SCHEDULES = ("constant", "cosine")


def learning_rate(step: int, total_steps: int, base_lr: float, schedule: str) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of ``total_steps``.

    ``constant``: the release's recipe. ``cosine``: from ``base_lr`` down to 0 at ``total_steps``,
    the fine-tuning default (a short run that should not jump away from its parent's weights at the
    end). A function of the step alone, so a resumed run needs no scheduler state.
    """
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        progress = min(step / max(total_steps, 1), 1.0)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {LR_SCHEDULES}")
