"""A real `hisem serve` with the tiny test model, shared by the service tests of one session.

Every answer its clients receive is recorded; at the end of the session none may contain the
server's own folders (the jobs folder lives there): no response names a server path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_support import Server, start_server


class RecordingServer(Server):
    """The session's server; its clients keep every response body in ``bodies``."""

    bodies: list[str]

    def client(self, token: str | None = "default", timeout: float = 60.0) -> httpx.Client:
        client = super().client(token, timeout)
        client.event_hooks["response"].append(self._record)
        return client

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.bodies.append(response.text)


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two workers, room for 32 jobs; loopback without a token, as an analyst runs it."""
    srv = start_server(tmp_path_factory.mktemp("serve"), tiny_model.parent, "--workers", "2", "--max-queue", "32")
    recording = RecordingServer(srv.url, srv.process, srv.log, srv.token)
    recording.bodies = []
    yield recording
    folder = str(srv.log.parent)  # holds the jobs folder
    leaks = [body[:300] for body in recording.bodies if folder in body]
    assert recording.bodies and not leaks, leaks
    assert srv.stop() == 0, srv.log.read_text()
