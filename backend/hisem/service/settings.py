"""How a server is configured (``hisem serve`` flags), and the rule on hosts and tokens."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "HISEM_TOKEN"


def default_jobs_dir() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "hisem" / "jobs"


@dataclass
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    max_upload_mb: float = 512.0
    max_queue: int = 16
    workers: int = 1
    jobs_dir: Path | None = None  # None: $XDG_STATE_HOME/hisem/jobs
    result_ttl_s: float = 24 * 3600.0
    threads: int | None = None  # ONNX Runtime threads per worker (default: cores / workers)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def check(self) -> None:
        """ValueError (with what to do) for settings that must not start a server."""
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.max_queue < 1:
            raise ValueError(f"--max-queue must be at least 1, got {self.max_queue}")
        if self.max_upload_mb <= 0:
            raise ValueError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if not is_loopback(self.host) and not self.token:
            raise ValueError(f"refusing to listen on {self.host} without a token: anyone who can reach it could "
                             f"use this machine; give --token TOKEN (or set {TOKEN_ENV}), or keep --host 127.0.0.1")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost"; anything else (0.0.0.0, a LAN address, a name) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
