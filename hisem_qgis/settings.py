"""The plugin's own settings, kept in QgsSettings under ``hisem/``.

The access token is never stored here: it lives encrypted in QGIS's authentication database, and
these settings keep only the id of that authentication configuration (``authcfg``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, fields

from qgis.core import QgsSettings

PREFIX = "hisem/"
DEFAULT_URL = "http://127.0.0.1:8765"


def default_hisem_path() -> str:
    """The `hisem` command on PATH, or "" so that the settings ask the user for it."""
    return shutil.which("hisem") or ""


@dataclass
class PluginSettings:
    """Everything the dock remembers between sessions; ``load()`` fills defaults for what is missing."""

    backend_url: str = DEFAULT_URL
    authcfg: str = ""
    hisem_path: str = ""
    output_dir: str = ""
    model: str = ""
    tile_size: int = 0  # 0: the model's
    overlap: int = -1  # -1: the backend's default (tile / 8)
    beam: int = 3
    threshold: float = 0.5
    max_tiles: int = 10_000

    @classmethod
    def load(cls, settings: QgsSettings | None = None) -> PluginSettings:
        """Read every field, falling back to the defaults above (and `hisem` on PATH)."""
        settings = settings or QgsSettings()
        values = {}
        for field in fields(cls):
            default = default_hisem_path() if field.name == "hisem_path" else field.default
            kind = type(field.default)
            raw = settings.value(PREFIX + field.name, default)
            if raw is None or (raw == "" and kind is not str):
                values[field.name] = default
                continue
            try:
                values[field.name] = kind(raw)
            except (TypeError, ValueError):  # a hand-edited or older settings file
                values[field.name] = default
        if not values["hisem_path"]:
            values["hisem_path"] = default_hisem_path()
        if not values["backend_url"]:
            values["backend_url"] = DEFAULT_URL
        return cls(**values)

    def save(self, settings: QgsSettings | None = None) -> None:
        settings = settings or QgsSettings()
        for field in fields(self):
            settings.setValue(PREFIX + field.name, getattr(self, field.name))
