"""Static files served on the event loop.

The console's assets are few (a stylesheet, a script, htmx, plotly.js), so they are
read once, kept in memory with their ETag and answered without a thread or a
middleware stack. `collectstatic` output (STATIC_ROOT) is preferred; the app
directories and STATICFILES_DIRS are searched otherwise, as in development.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders


class StaticFiles:
    def __init__(self) -> None:
        self.prefix = "/" + settings.STATIC_URL.strip("/") + "/"
        self.root = Path(settings.STATIC_ROOT)
        self._cache: dict[str, tuple[bytes, bytes, bytes] | None] = {}

    def _load(self, name: str) -> tuple[bytes, bytes, bytes] | None:
        if ".." in Path(name).parts:
            return None
        candidate = self.root / name
        path = candidate if candidate.is_file() else None
        if path is None:
            found = finders.find(name)
            path = Path(found) if found else None
        if path is None or not path.is_file():
            return None
        body = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in {"application/javascript", "text/javascript"}:
            content_type += "; charset=utf-8"
        etag = ('"' + hashlib.sha256(body).hexdigest()[:32] + '"').encode()
        return body, content_type.encode(), etag

    async def __call__(self, scope, receive, send) -> None:
        name = scope["path"][len(self.prefix) :]
        if name not in self._cache or settings.DEBUG:
            self._cache[name] = await asyncio.to_thread(self._load, name)
        entry = self._cache[name]
        if entry is None or scope["method"] not in ("GET", "HEAD"):
            status = 404 if entry is None else 405
            await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Not found" if status == 404 else b"Method not allowed"})
            return
        body, content_type, etag = entry
        headers = [
            (b"etag", etag),
            (b"cache-control", b"public, max-age=3600"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if dict(scope["headers"]).get(b"if-none-match") == etag:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
