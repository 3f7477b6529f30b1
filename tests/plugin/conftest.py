"""Fixtures of the plugin tests: QGIS's authentication database, unlocked for the test profile."""

from __future__ import annotations

from typing import Any

import pytest
from qgis.core import QgsApplication

# The test profile's authentication database is created with this master password on first use.
MASTER_PASSWORD = "hisem-tests-master"


@pytest.fixture()
def auth_manager(qgis_app: Any) -> Any:
    manager = QgsApplication.authManager()
    assert not manager.isDisabled(), manager.disabledMessage()
    assert manager.setMasterPassword(MASTER_PASSWORD, True), "the test profile's auth DB has another master password"
    return manager
