"""The plugin's Processing provider: the dock's pipeline as algorithms for batch, Model Builder and qgis_process."""

from __future__ import annotations

from pathlib import Path

ICON_PATH = Path(__file__).resolve().parent.parent / "icon.svg"
