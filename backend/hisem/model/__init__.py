"""The HiSem network: build it from a config or preset, train it, save and load it."""

from hisem.model.checkpoint import load_checkpoint, save_checkpoint
from hisem.model.config import PRESETS, HiSemConfig, preset
from hisem.model.encoders import Features
from hisem.model.hisem import HiSem, HiSemOutput, build_model
from hisem.model.losses import total_loss

__all__ = [
    "PRESETS",
    "Features",
    "HiSem",
    "HiSemConfig",
    "HiSemOutput",
    "build_model",
    "load_checkpoint",
    "preset",
    "save_checkpoint",
    "total_loss",
]
