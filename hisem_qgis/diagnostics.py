"""A plain-text report of versions and backend state, for the user to paste into a bug report.

Most "it does not work" reports come down to a version, a provider or a backend that is not running:
one copy-paste answers all three. The report never holds the token.
"""

from __future__ import annotations

import platform
import sys

from osgeo import gdal, osr
from qgis.core import Qgis
from qgis.PyQt.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

from .backend import BackendClient, BackendError
from .metadata_info import plugin_name, plugin_version

HEALTH_FIELDS = ("version", "model", "execution_provider", "providers", "device", "workers", "jobs_queued",
                 "jobs_running", "auth_required")


def _versions() -> list[tuple[str, str]]:
    proj = ".".join(str(f()) for f in (osr.GetPROJVersionMajor, osr.GetPROJVersionMinor, osr.GetPROJVersionMicro))
    return [
        (plugin_name(), plugin_version()),
        ("QGIS", f"{Qgis.QGIS_VERSION} ({Qgis.QGIS_DEV_VERSION})"),
        ("Qt", QT_VERSION_STR),
        ("PyQt", PYQT_VERSION_STR),
        ("Python", sys.version.split()[0]),
        ("GDAL", gdal.VersionInfo("RELEASE_NAME")),
        ("PROJ", proj),
        ("OS", platform.platform()),
    ]


def _backend(url: str, client: BackendClient | None) -> list[tuple[str, str]]:
    lines = [("Backend URL", url)]
    try:
        client = client or BackendClient(url, timeout_ms=5000)
        health = client.health()
    except BackendError as exc:
        return [*lines, ("Backend health", f"error: {exc}")]
    lines.append(("Backend health", str(health.get("status", "?"))))
    lines += [(f"  {key}", ", ".join(map(str, value)) if isinstance(value, list) else str(value))
              for key, value in health.items() if key in HEALTH_FIELDS]
    try:
        models = client.models()
        lines.append(("Backend models", ", ".join(f"{m['id']} ({m.get('gsd_m', '?')} m)" for m in models) or "none"))
    except BackendError as exc:  # a 401 here is itself a useful fact
        lines.append(("Backend models", f"error: {exc}"))
    lines.append(("Token", "set (authentication configuration)" if client.authcfg else "none"))
    return lines


def diagnostics_report(url: str, client: BackendClient | None) -> str:
    """Versions of everything the plugin runs on, then the backend's health (or why it has none)."""
    rows = _versions() + [("", "")] + _backend(url, client)
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}".rstrip() if key else "" for key, value in rows) + "\n"
