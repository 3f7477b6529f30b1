"""What the service answers when it refuses something, and the rule that no answer names a server path.

``ApiError`` is raised by handlers and by the upload check; its body is ``ErrorBody``: ``detail``
(one sentence) and, when a server cap was hit, ``cap`` (the setting's name) and ``limit``.
``scrub_paths`` is applied to every message that comes from GDAL, a worker or the upload check:
the server's folders are nobody's business, and a message about ``/jobs/<id>/before.tif`` means
the ``before`` upload to the client.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

# An absolute path inside a message: a slash not preceded by a word character (so "m/s" and URLs'
# schemes are left alone), then at least one more path segment.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/-])/(?:[\w.+-]+/)+[\w.+-]*")


class ApiError(Exception):
    """A 4xx answer: ``{"detail": ..., "cap": ..., "limit": ...}`` (cap and limit only for a server cap)."""

    def __init__(self, status: int, detail: str, cap: str | None = None, limit: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.cap = cap
        self.limit = limit
        self.headers = headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail}
        if self.cap is not None:
            body.update(cap=self.cap, limit=self.limit)
        return body


def scrub_paths(message: str, named: Mapping[str, str | Path] | None = None, root: str | Path | None = None) -> str:
    """``message`` with each path of ``named`` replaced by its name, and every other absolute path by its
    file name (``root``'s own path, the jobs folder, is replaced first so that no part of it survives)."""
    for name, path in (named or {}).items():
        for form in {str(Path(path).resolve()), str(path)}:
            message = message.replace(form, name)
    if root is not None:
        for form in {str(Path(root).resolve()), str(root)}:
            message = message.replace(form + "/", "").replace(form, "the jobs folder")
    return _ABSOLUTE_PATH.sub(lambda m: PurePath(m.group(0)).name or "a server path", message)


def client_file_name(name: str | None, default: str) -> str:
    """The client's file name as it may appear in a result: its last part, printable, at most 255 characters."""
    base = PurePath((name or "").replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable())[:255]
    return cleaned or default


def describe_exit(code: int | None) -> str:
    """"killed by SIGKILL" or "exit code 3": how a child process ended."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
