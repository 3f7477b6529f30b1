"""Guess a layer's acquisition date, so that the analyst only has to check it, not type it.

Sources, most trusted first: the layer metadata's temporal extent, the layer's fixed temporal range,
then a date in the layer's name or file name (YYYY-MM-DD, YYYY_MM_DD, YYYYMMDD, or a bare YYYY).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from qgis.core import QgsMapLayer
from qgis.PyQt.QtCore import QDateTime, Qt

_BOUND = r"(?<!\d){}(?!\d)"
_YEAR = r"((?:19|20)\d{2})"
_FULL_SEPARATED = re.compile(_BOUND.format(_YEAR + r"[-_.](\d{2})[-_.](\d{2})"))
_FULL_COMPACT = re.compile(_BOUND.format(_YEAR + r"(\d{2})(\d{2})"))
_YEAR_ONLY = re.compile(_BOUND.format(_YEAR))


def date_from_text(text: str) -> str:
    """The first plausible date in ``text`` as ISO ("2019-05-01", or "2019" for a bare year); "" if none."""
    for pattern in (_FULL_SEPARATED, _FULL_COMPACT):
        for match in pattern.finditer(text):
            try:
                return dt.date(*(int(g) for g in match.groups())).isoformat()
            except ValueError:  # 2019-13-45 or a run of digits that is not a date
                continue
    match = _YEAR_ONLY.search(text)
    return match.group(1) if match else ""


def _iso(value: QDateTime) -> str:
    return value.date().toString(Qt.DateFormat.ISODate) if value.isValid() else ""


def guess_date(layer: QgsMapLayer | None) -> str:
    """The layer's date as ISO text, or "" when nothing tells (the field stays for the user to fill)."""
    if layer is None:
        return ""
    for extent in layer.metadata().extent().temporalExtents():
        if date := _iso(extent.begin()) or _iso(extent.end()):
            return date
    temporal = layer.temporalProperties()
    fixed = temporal is not None and temporal.isActive() and hasattr(temporal, "fixedTemporalRange")
    if fixed and (date := _iso(temporal.fixedTemporalRange().begin())):
        return date
    if date := date_from_text(layer.name()):
        return date
    source = layer.source().split("|")[0]
    return date_from_text(Path(source).name) if source else ""
