"""Installed models: folders holding ``model.json`` and the ONNX graphs (see engine.modelfiles).

Searched in this order, the first folder holding an id winning (so a user can override a shipped model):
``$HISEM_MODELS_DIR`` (one or more folders, ``os.pathsep``-separated), the user's
``$XDG_DATA_HOME/hisem/models`` (``~/.local/share/hisem/models``), and the repository's
``resources/models`` (where the default model ships).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hisem.engine.modelfiles import MODEL_CARD, available_precisions, read_model_card

log = logging.getLogger(__name__)

ENV_VAR = "HISEM_MODELS_DIR"
DEFAULT_MODEL_ID = "hisem-lite-hybrid-v2"
# engine/registry.py -> engine -> hisem -> backend -> repository root
REPO_MODELS_DIR = Path(__file__).resolve().parents[3] / "resources" / "models"


@dataclass(frozen=True)
class ModelInfo:
    """What a listing shows of a model, read from its model.json (no ONNX file is opened)."""

    id: str
    path: Path
    preset: str
    tile_size: int
    gsd_m: float
    bands: str
    precisions: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dir(cls, path: Path) -> ModelInfo:
        """Read ``path/model.json``; ValueError if it is not a usable HiSem model folder."""
        card = read_model_card(path)
        precisions = available_precisions(path)
        if not precisions:
            raise ValueError(f"{path}: {MODEL_CARD} but no complete pair of ONNX graphs")
        try:
            return cls(
                id=str(card["model_id"]), path=path, preset=str(card["preset"]),
                tile_size=int(card["tile_size"]), gsd_m=float(card["gsd_m"]), bands=str(card["bands"]),
                precisions=precisions, metrics=dict(card.get("metrics") or {}), card=card,
            )
        except KeyError as exc:
            raise ValueError(f"{path / MODEL_CARD}: missing {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "preset": self.preset, "tile_size": self.tile_size,
                "gsd_m": self.gsd_m, "bands": self.bands, "precisions": list(self.precisions),
                "metrics": self.metrics, "training_data": self.card.get("training_data")}


def model_dirs() -> list[Path]:
    """The folders searched for models, most specific first."""
    dirs = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    dirs.append(Path(data_home) / "hisem" / "models")
    dirs.append(REPO_MODELS_DIR)
    return dirs


def list_models() -> list[ModelInfo]:
    """Every readable model, each id once (the first folder wins); broken folders are logged, skipped."""
    found: dict[str, ModelInfo] = {}
    for root in model_dirs():
        if not root.is_dir():
            continue
        for card in sorted(root.glob(f"*/{MODEL_CARD}")):
            try:
                info = ModelInfo.from_dir(card.parent)
            except (OSError, ValueError) as exc:
                log.warning("skipping %s: %s", card.parent, exc)
                continue
            if info.id in found:
                log.debug("%s: id %s already found in %s", card.parent, info.id, found[info.id].path)
                continue
            found[info.id] = info
    return list(found.values())


def default_model_id(models: list[ModelInfo] | None = None) -> str | None:
    """The shipped default when installed, else the first model found; None when there is none."""
    models = list_models() if models is None else models
    ids = [m.id for m in models]
    if DEFAULT_MODEL_ID in ids:
        return DEFAULT_MODEL_ID
    return ids[0] if ids else None


def resolve_model(id_or_path: str | Path | None = None) -> ModelInfo:
    """A model folder path, an installed model's id, or None for the default model."""
    if id_or_path is not None and (Path(id_or_path) / MODEL_CARD).is_file():
        return ModelInfo.from_dir(Path(id_or_path))
    models = list_models()
    wanted = default_model_id(models) if id_or_path is None else str(id_or_path)
    searched = ", ".join(str(d) for d in model_dirs())
    if wanted is None:
        raise FileNotFoundError(f"no model installed (searched {searched}); export one with `hisem export`")
    for info in models:
        if info.id == wanted:
            return info
    known = ", ".join(m.id for m in models) or "none"
    raise FileNotFoundError(f"no model {wanted!r} (installed: {known}; searched {searched})")
