"""A real `hisem serve` with the tiny test model, shared by the service tests of one session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_support import Server, start_server


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two workers, room for 32 jobs; loopback without a token, as an analyst runs it."""
    srv = start_server(tmp_path_factory.mktemp("serve"), tiny_model.parent, "--workers", "2", "--max-queue", "32")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()
