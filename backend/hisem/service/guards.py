"""ASGI guards that answer before the request body is read: foreign Host or Origin, and the token.

Why ASGI and not FastAPI dependencies: FastAPI parses (and spools to disk) a multipart body before
it runs a route's dependencies, so an anonymous 100 MB POST was stored before its 401. These wrap
the whole app and never call ``receive``; an unread body is dropped with the connection.

Browsers are the reason for the Host and Origin rules. A web page can make a browser send requests
to 127.0.0.1 (CSRF: a cross-origin form POST needs no permission), or point its own name at
127.0.0.1 (DNS rebinding: the page then reads the answers). The first carries the page's Origin,
the second its Host name; both are refused here. Clients that are not browsers send no Origin.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from hisem.service.settings import is_loopback

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
PUBLIC_PATHS = ("/v1/health",)


async def reject(send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = (),
                 **fields: Any) -> None:
    """A complete JSON error response, ``{"detail": ..., **fields}``, closing the connection (the body is unread)."""
    body = json.dumps({"detail": detail, **fields}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _host_name(host: str) -> str:
    """The name part of a Host header (or of an Origin's netloc): lower case, no port, no IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostOriginGuard:
    """403 for a Host this server does not answer to, or an Origin other than its own or an allowed one."""

    def __init__(self, app: Any, allowed_hosts: frozenset[str], allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.hosts = allowed_hosts
        self.origins = {o.strip().rstrip("/").lower() for o in allowed_origins}

    def host_allowed(self, host: str | None) -> bool:
        if host is None:  # HTTP/1.0 without Host: not a browser
            return True
        name = _host_name(host)
        return "*" in self.hosts or name in self.hosts or is_loopback(name)

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """The server's own origin (same host and port as the request's Host), or one of ``--allow-origin``."""
        origin = origin.strip().rstrip("/").lower()
        if "*" in self.origins or origin in self.origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and host is not None and parts.netloc == host.strip().lower()

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] == "http":
            host, origin = _header(scope, b"host"), _header(scope, b"origin")
            if not self.host_allowed(host):
                await reject(send, 403, f"Host {host!r} is not allowed: this server answers to loopback names"
                             " and those given with hisem serve --allow-host")
                return
            if origin is not None and not self.origin_allowed(origin, host):
                await reject(send, 403, f"Origin {origin!r} is not allowed: a web page may use this server only "
                             "if it was started with hisem serve --allow-origin ORIGIN")
                return
        await self.app(scope, receive, send)


class TokenGuard:
    """401 without ``Authorization: Bearer TOKEN`` on everything but health (and OPTIONS, which CORS needs)."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def authorised(self, scope: Scope) -> bool:
        header = _header(scope, b"authorization") or ""
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("latin-1"), self.token or b"")

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if self.token is not None and scope["type"] == "http" and scope["method"] != "OPTIONS" \
                and scope["path"] not in PUBLIC_PATHS and not self.authorised(scope):
            await reject(send, 401, "missing or wrong token: send the header Authorization: Bearer TOKEN",
                         [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)
