"""Upload size limit as ASGI middleware: 413 before the body is parsed or spooled to disk.

The ``Content-Length`` header is checked first; a chunked body without one is counted as it
arrives and cut off at the limit (the exception raised from ``receive`` is an HTTPException, which
FastAPI's body parser lets through, so the client gets the same 413).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from hisem.service.guards import reject


class BodySizeLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"upload too large: the server accepts at most {self.max_bytes / 2**20:g} MiB per request " \
               "(hisem serve --max-upload-mb); send a smaller AOI or read it at a coarser GSD"

    async def _reject(self, send: Any) -> None:
        await reject(send, 413, self._message(), cap="max_upload_mb", limit=self.max_bytes / 2**20)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            declared = None
        if declared is not None and declared > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await self._reject(send)
