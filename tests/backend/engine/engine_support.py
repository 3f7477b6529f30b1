"""Helpers shared by the engine tests (a plain module: conftest files are not importable by name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hisem.data.readers import PairRecord


@dataclass(frozen=True)
class TrainedModel:
    data: Path
    run: Path
    model_dir: Path


def load_tiles(records: list[PairRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Before/after images of ``records`` as the engine takes them: uint8 (B, 3, S, S)."""

    def load(path: Path) -> np.ndarray:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB")).transpose(2, 0, 1)  # (S, S, 3) -> (3, S, S)

    return np.stack([load(r.before) for r in records]), np.stack([load(r.after) for r in records])
