"""What one training step consumes: image batches, or cached backbone features, on one device."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hisem.data.dataset import ChangeCaptionDataset
from hisem.model import Features, HiSem, HiSemOutput
from hisem.training.feature_cache import FeatureCache


class CachedPairsDataset(Dataset):
    """The base dataset's targets with the cached features in place of the images.

    Items carry ``before_coarse``/``before_fine``/``after_coarse``/``after_fine`` instead of
    ``before``/``after``; the targets (tokens, change flag, mask) come from the base dataset without
    decoding the images again.
    """

    def __init__(self, base: ChangeCaptionDataset, cache: FeatureCache) -> None:
        if len(base) != len(cache):
            raise ValueError(f"feature cache holds {len(cache)} pairs, the dataset {len(base)}")
        self.base = base
        self.cache = cache

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base.targets(index)
        before, after = self.cache.pair(index)
        item.update(
            before_coarse=before.coarse, before_fine=before.fine,
            after_coarse=after.coarse, after_fine=after.fine,
        )
        return item


def batch_features(batch: dict[str, Tensor]) -> tuple[Features, Features] | None:
    """The cached features of a batch, or None for an image batch."""
    if "before_coarse" not in batch:
        return None
    return (
        Features(batch["before_coarse"], batch["before_fine"]),
        Features(batch["after_coarse"], batch["after_fine"]),
    )


class TrainStep(nn.Module):
    """One forward pass for either kind of batch, as a module so that DDP can wrap it."""

    def __init__(self, model: HiSem) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor], route: Tensor | None = None) -> HiSemOutput:
        tokens_in = batch["tokens"][:, :-1]  # (B, T-1): the decoder predicts tokens[:, 1:]
        feats = batch_features(batch)
        if feats is None:
            return self.model(batch["before"], batch["after"], tokens_in, route=route)
        out = self.model.encode(feats[0], feats[1], route=route)
        return out._replace(logits=self.model.decode(out.memory, tokens_in))


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}
