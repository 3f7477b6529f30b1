"""The plugin's name and version, read from metadata.txt: the one source of both."""

from __future__ import annotations

import configparser
from functools import lru_cache
from pathlib import Path

METADATA_PATH = Path(__file__).resolve().parent / "metadata.txt"


@lru_cache(maxsize=1)
def plugin_metadata() -> dict[str, str]:
    """The [general] section of metadata.txt as a dict."""
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(METADATA_PATH, encoding="utf-8"):
        raise FileNotFoundError(f"plugin metadata not found: {METADATA_PATH}")
    return dict(parser["general"])


def plugin_name() -> str:
    return plugin_metadata()["name"]


def plugin_version() -> str:
    return plugin_metadata()["version"]
