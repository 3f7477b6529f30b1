"""How a server is configured (``hisem serve`` flags): the rule on hosts and tokens, and the server's caps.

Every cap is a setting named as its flag (``max_tiles`` is ``--max-tiles``): a request beyond one
gets a 4xx whose body names it (``"cap": "max_tiles"``), and ``GET /v1/health`` lists them all.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path

TOKEN_ENV = "HISEM_TOKEN"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# The numbers a client may be refused for; health reports them. Names are the settings' (and flags').
CAPS = ("max_upload_mb", "max_queue", "max_tiles", "min_gsd_m", "max_gsd_m", "max_tile_megapixels",
        "max_block_mb", "max_raster_megapixels", "check_cpu_s", "check_memory_mb")


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
    # Browsers: Host names answered besides loopback (and --host), Origins allowed besides the server's own.
    allow_hosts: tuple[str, ...] = ()
    allow_origins: tuple[str, ...] = ()
    # Caps on what one job may cost, whatever its params say.
    max_tiles: int = 10_000  # tiles per job
    min_gsd_m: float = 0.01  # working GSD bounds
    max_gsd_m: float = 100.0
    max_tile_megapixels: float = 16.0  # source pixels (per band, per date) warped into one tile
    max_block_mb: float = 64.0  # one decoded block of an upload, all bands
    max_raster_megapixels: float = 10_000.0  # declared width x height of an upload
    check_cpu_s: float = 60.0  # the upload check (a child process): CPU time ...
    check_memory_mb: float = 2048.0  # ... and address space
    check_concurrency: int = field(default=2, repr=False)  # upload checks at once (memory: this x the above)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def caps(self) -> dict[str, float]:
        """The caps by name, as health reports them (``max_beam`` is the contract's own)."""
        from hisem.pipeline.options import MAX_BEAM

        return {**{name: getattr(self, name) for name in CAPS}, "max_beam": MAX_BEAM}

    def check(self) -> None:
        """ValueError (with what to do) for settings that must not start a server."""
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.max_queue < 1:
            raise ValueError(f"--max-queue must be at least 1, got {self.max_queue}")
        numeric = {f.name for f in fields(self)} & set(CAPS)
        for name in sorted(numeric):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if self.min_gsd_m > self.max_gsd_m:
            raise ValueError(f"--min-gsd-m {self.min_gsd_m} is above --max-gsd-m {self.max_gsd_m}")
        if not is_loopback(self.host) and not self.token:
            raise ValueError(f"refusing to listen on {self.host} without a token: anyone who can reach it could "
                             f"use this machine; give --token TOKEN (or set {TOKEN_ENV}), or keep --host 127.0.0.1")

    def allowed_hosts(self) -> frozenset[str]:
        """Host header values (lower case, no port) this server answers to; "*" in it allows any.

        Loopback names always; the bound address when it is one address; with a wildcard bind
        (0.0.0.0, ::), this machine's name and addresses; and every ``--allow-host``.
        """
        names = {"localhost", "127.0.0.1", "::1", *(h.lower() for h in self.allow_hosts)}
        if self.host not in WILDCARD_HOSTS:
            names.add(self.host.lower())
        elif not is_loopback(self.host):
            names |= _own_names()
        return frozenset(names)


def raster_limits(caps: dict[str, float]) -> dict[str, int]:
    """``hisem.geo.raster.RasterLimits`` keyword arguments from the caps (plain ints: they cross processes)."""
    return {"max_block_bytes": int(caps["max_block_mb"] * 2**20),
            "max_pixels": int(caps["max_raster_megapixels"] * 1e6)}


def _own_names() -> set[str]:
    """This machine's host name, FQDN and addresses (best effort: a resolver may know none)."""
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            names.add(str(info[4][0]).lower())
    except OSError:
        pass
    return names


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost"; anything else (0.0.0.0, a LAN address, a name) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
