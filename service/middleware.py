"""Pure ASGI middleware: HEAD on every GET route, common headers, the public base URL, body size limits, request ids."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import uuid
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"),)
MAX_BODY_BYTES = 16 * 2**20
"""Largest request body the service reads (a GeoJSON territory of a few MB fits; a 200 MB upload does not)."""
FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port",
                                b"x-forwarded-prefix", b"x-forwarded-for"})
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("geovigie_request_id", default="-")
"""The id of the request being served (`-` outside a request), for log records."""


class HeadAsGet:
    """Answer HEAD as the GET route would, headers only (RFC 9110: a server must support HEAD where it has GET).

    The request reaches the app as a GET; every body chunk is dropped and one empty final chunk is sent, so the
    status and headers (content-length included) are those of the GET.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def send_headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False) and not finished:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class CommonHeaders:
    """Add `COMMON_HEADERS` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in COMMON_HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PublicBaseUrl:
    """Make every request look addressed to the configured public URL, whatever Host or X-Forwarded-* say.

    Starlette builds `request.base_url` (and so TiTiler's and stac-fastapi's absolute links) from the scope's
    scheme, server and Host header: they are replaced by those of `public_url`, its path becomes the app root of
    the links, and the forwarding headers are dropped so no inner middleware reads them.
    """

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        parts = urlsplit(public_url)
        self.scheme = parts.scheme
        self.host = (parts.hostname or "127.0.0.1").encode("latin-1")
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.netloc = parts.netloc.encode("latin-1")
        self.prefix = parts.path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = [(name, value) for name, value in scope.get("headers", [])
                   if name not in FORWARDING_HEADERS and name != b"host"]
        headers.append((b"host", self.netloc))
        scope = {**scope, "scheme": self.scheme if scope["type"] == "http" else scope["scheme"],
                 "server": (self.host.decode("latin-1"), self.port), "headers": headers}
        if self.prefix:
            scope["app_root_path"] = self.prefix + scope.get("root_path", "")
            scope["geovigie.public_prefix"] = self.prefix
        await self.app(scope, receive, send)


class BodyTooLargeError(Exception):
    """A request body over the limit (raised from `receive`, answered 413)."""


class BodySizeLimit:
    """Answer 413 to a request body over `max_bytes`: a Content-Length over it is refused before reading, a body
    without one is counted chunk by chunk as the app reads it (never buffered here)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> JSONResponse:
        return JSONResponse({"detail": f"request body too large (limit {self.max_bytes} bytes)"}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refusal()(scope, receive, send)
                    return
        received = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # answered here: the app may turn the exception into its own error (FastAPI: a 400)
                    if not started and not refused:
                        refused = True
                        await self._refusal()(scope, receive, send)
                    raise BodyTooLargeError
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is sent already
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(BodyTooLargeError):
            await self.app(scope, counted, tracked)


class RequestId:
    """Give every request an id (`X-Request-ID`, generated here: a client's is not trusted), set for log records
    through `REQUEST_ID` and sent back in the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Put the current request id on every log record (`%(request_id)s`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True
