"""API keys: created by `geovigie keys create`, stored hashed, required for every write; per-key rate limits.

A key is `gvk_<id>_<secret>`: `id` (8 hex digits) is shown by `keys list`, `secret` is 32 random bytes
(URL-safe base64). The database keeps only the SHA-256 of the whole key, compared in constant time. Clients send it
as `Authorization: Bearer <key>` or `X-API-Key: <key>`. No key on a write: 401; an unknown, wrong or revoked key, or
a read-only key on a write: 403; over the key's rate: 429 with `Retry-After`. Reads are public unless
`read_requires_key` is set (then `KeyGate` keys every read but the page, its static files and the health probes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from geovigie.errors import GeovigieError, InputNotFoundError, InvalidInputError
from geovigie.records import connect
from geovigie.settings import Settings

NO_NUL = r"^[^\x00]*$"
"""Pattern of free text that reaches PostgreSQL (which refuses NUL characters in text)."""
SCOPES = ("read", "write")
"""A write key also reads."""
KEY_PATTERN = re.compile(r"^gvk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
PUBLIC_PATHS = ("/", "/healthz", "/readyz", "/docs", "/openapi.json", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


@dataclass(frozen=True)
class ApiKey:
    """A key as `keys list` shows it (never its secret)."""

    id: str
    owner: str
    scopes: tuple[str, ...]
    created: datetime
    revoked: datetime | None = None
    last_used: datetime | None = None

    def allows(self, scope: str) -> bool:
        """Whether the key may do `scope` (a write key also reads)."""
        return scope in self.scopes or (scope == "read" and "write" in self.scopes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"id": self.id, "owner": self.owner, "scopes": list(self.scopes), "created": _iso(self.created),
                "revoked": _iso(self.revoked), "last_used": _iso(self.last_used)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _row_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(row["id"], row["owner"], tuple(row["scopes"]), row["created"], row["revoked"], row["last_used"])


def create_key(settings: Settings, owner: str, scope: str = "write") -> tuple[ApiKey, str]:
    """A new key for `owner`; returns it and its secret form (shown once, never stored).

    Raises:
        InvalidInputError: empty owner or unknown scope.
    """
    owner = owner.strip()
    if not owner or len(owner) > 200 or "\x00" in owner:
        raise InvalidInputError("key owner: give a name (1-200 characters), e.g. --owner 'service environnement'")
    if scope not in SCOPES:
        raise InvalidInputError(f"key scope {scope!r}: use one of {', '.join(SCOPES)}")
    token = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    with connect(settings) as conn:
        while True:
            key_id = secrets.token_hex(4)
            secret = f"gvk_{key_id}_{token}"
            row = conn.execute("INSERT INTO geovigie.api_keys (id, owner, scopes, sha256) VALUES (%s, %s, %s, %s) "
                               "ON CONFLICT (id) DO NOTHING RETURNING *",
                               (key_id, owner, [scope], _digest(secret))).fetchone()
            if row is not None:
                return _row_key(row), secret


def list_keys(settings: Settings) -> list[ApiKey]:
    """Every key, oldest first (revoked ones included)."""
    with connect(settings) as conn:
        return [_row_key(row) for row in conn.execute("SELECT * FROM geovigie.api_keys ORDER BY created, id")]


def revoke_key(settings: Settings, key_id: str) -> ApiKey:
    """Revoke key `key_id` (its requests get 403 from now on); revoking twice keeps the first date.

    Raises:
        InputNotFoundError: no such key.
    """
    with connect(settings) as conn:
        row = conn.execute("UPDATE geovigie.api_keys SET revoked = coalesce(revoked, now()) WHERE id = %s "
                           "RETURNING *", (key_id.strip(),)).fetchone()
    if row is None:
        raise InputNotFoundError(f"no API key {key_id!r} (see `geovigie keys list`)")
    return _row_key(row)


def verify_key(settings: Settings, presented: str) -> ApiKey | None:
    """The active key `presented` is, or None (malformed, unknown, wrong secret or revoked)."""
    match = KEY_PATTERN.match(presented.strip())
    if match is None:
        return None
    with connect(settings) as conn:
        row = conn.execute("SELECT * FROM geovigie.api_keys WHERE id = %s", (match.group(1),)).fetchone()
        # compare even when the id is unknown, so timing tells nothing about which ids exist
        stored = row["sha256"] if row is not None else b"\0" * 32
        if not hmac.compare_digest(bytes(stored), _digest(presented.strip())) or row is None or row["revoked"]:
            return None
        conn.execute("UPDATE geovigie.api_keys SET last_used = now() WHERE id = %s AND "
                     "(last_used IS NULL OR last_used < now() - interval '1 minute')", (row["id"],))
    return _row_key(row)


class RateLimiter:
    """A token bucket per key, in this process: `per_minute` requests a minute, bursts of as many."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """0 when the request may go, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI error response: JSON `{"detail": ...}` (whatever the endpoint's own media type)."""
    schema = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error_response("No API key, and `read_requires_key` is set."),
    403: error_response("Unknown, wrong or revoked API key."),
    422: error_response("Invalid request (the reason in `detail`)."),
    429: error_response("The key's rate limit is reached: retry after `Retry-After` seconds."),
    503: error_response("The database is unavailable."),
}
"""OpenAPI `responses` of every endpoint of the keys, jobs, feedback and features modules."""
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **READ_RESPONSES, 401: error_response("No API key (`Authorization: Bearer <key>` or `X-API-Key`)."),
    403: error_response("Unknown, wrong or revoked API key, or a read-only key."),
}
"""OpenAPI `responses` of the endpoints that write."""

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer gvk_...` (an API key)")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key, as a header")


class Access:
    """Who may do what in one service: key checks and rate limits for `settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_per_minute)

    @staticmethod
    def presented(headers: Any) -> str | None:
        """The key a request carries (`Authorization: Bearer` first, then `X-API-Key`), or None."""
        authorization = headers.get("authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return (headers.get("x-api-key") or "").strip() or None

    def check(self, presented: str | None, scope: str) -> ApiKey:
        """The key allowed to do `scope`, else an HTTPException (401, 403 or 429)."""
        if presented is None:
            raise HTTPException(401, "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key`",
                                headers={"WWW-Authenticate": "Bearer"})
        key = verify_key(self.settings, presented)
        if key is None:
            raise HTTPException(403, "invalid or revoked API key")
        if not key.allows(scope):
            raise HTTPException(403, f"API key {key.id} may not {scope} (scopes: {', '.join(key.scopes)})")
        wait = self.limiter.take(key.id)
        if wait > 0:
            raise HTTPException(429, f"rate limit of API key {key.id}: {self.settings.rate_limit_per_minute} "
                                "requests a minute", headers={"Retry-After": str(math.ceil(wait))})
        return key

    def writer(self) -> Any:
        """A dependency giving the request's write key (401/403/429 otherwise)."""

        def dependency(request: Request,
                       bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
                       header: Annotated[str | None, Depends(_header)] = None) -> ApiKey:
            return self.check(self.presented(request.headers), "write")

        return dependency


class KeyGate:
    """ASGI middleware: a write key for writes to the STAC API (transactions), a read key for every read when
    `read_requires_key` (except the page, static files, docs and health probes)."""

    def __init__(self, app: ASGIApp, access: Access, stac_prefix: str = "/api/stac") -> None:
        self.app = app
        self.access = access
        self.stac_prefix = stac_prefix

    def _scope_needed(self, method: str, path: str) -> str | None:
        if method not in ("GET", "HEAD", "OPTIONS"):
            stac = path == self.stac_prefix or path.startswith(self.stac_prefix + "/")
            search = method == "POST" and path.rstrip("/").endswith("/search")  # a read sent as POST
            return "write" if stac and not search and self.access.settings.stac_api_transactions else None
        if method == "OPTIONS" or not self.access.settings.read_requires_key:
            return None
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        return "read"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            needed = self._scope_needed(scope["method"], scope["path"])
            if needed is not None:
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                try:
                    await run_in_threadpool(self.access.check, Access.presented(headers), needed)
                except HTTPException as refused:
                    response = JSONResponse({"detail": refused.detail}, status_code=refused.status_code,
                                            headers=refused.headers)
                    await response(scope, receive, send)
                    return
                except GeovigieError as err:  # no database to check keys against: refuse rather than open up
                    await JSONResponse({"detail": str(err)}, status_code=503)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
