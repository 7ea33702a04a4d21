"""Rendered tiles kept by layer version, cold tiles rendered with bounded concurrency, 503 when too many wait.

`TileCache` is ASGI middleware in front of TiTiler's tile endpoint. A tile's key is its layer's id and version
(`Layer.version`: it changes when the layer is republished, so old tiles are never served again), the path and
the query; the same key is its ETag, so a conditional GET is answered 304 without rendering. Tiles live in a
bounded in-memory LRU and, optionally, in a folder shared by every worker process (bounded too, oldest first
out). Rendering runs in worker threads (TiTiler's endpoint is synchronous) at most `max_renders` at a time; when
`max_waiting` requests already wait for a slot the next is answered 503 with Retry-After instead of queueing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geovigie.errors import LayerNotFoundError
from geovigie.service.metrics import Metrics
from geovigie.tiles import LayerIndex

TILE_PATH = re.compile(r"^/layers/(?P<id>[^/]+)/tiles/(?:(?P<tms>[A-Za-z][A-Za-z0-9_]*)/)?"
                       r"(?P<z>\d+)/(?P<x>\d+)/(?P<y>\d+)(?P<ext>\.[a-z0-9]+)?$")
KEPT_HEADERS = (b"content-type", b"content-bbox", b"content-crs")
CACHE_CONTROL = b"public, max-age=60"
DEFAULT_TMS = "WebMercatorQuad"


class _Lru:
    """A thread-safe LRU of tiles bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[str, tuple[list[tuple[bytes, bytes]], bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if len(body) > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (headers, body)
            self.size += len(body)
            while self.size > self.max_bytes and self._items:
                _, (_, old) = self._items.popitem(last=False)
                self.size -= len(old)


class _DiskCache:
    """Tiles as files under `folder` (one per key, written atomically), shared by worker processes; when the
    files this process wrote pass `max_bytes` the oldest files of the folder are removed."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._written = 0
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def get(self, key: str) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        try:
            raw = self._path(key).read_bytes()
            head, body = raw.split(b"\n", 1)
            headers = [(name.encode(), value.encode()) for name, value in json.loads(head)]
        except (OSError, ValueError):
            return None
        return headers, body

    def put(self, key: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        head = json.dumps([(name.decode(), value.decode()) for name, value in headers]).encode()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(head + b"\n" + body)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            return
        with self._lock:
            self._written += len(body)
            over = self._written > self.max_bytes
            if over:
                self._written = 0
        if over:
            self.prune()

    def prune(self) -> None:
        """Remove the oldest tiles until the folder holds at most half of `max_bytes`."""
        files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in self.folder.glob("*/*") if p.is_file())
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes // 2:
                break
            path.unlink(missing_ok=True)
            total -= size


class TileCache:
    """ASGI middleware: cached, conditional, bounded tile rendering (see the module docstring).

    Also maps the older tile URL `/layers/{id}/tiles/{z}/{x}/{y}.png` to the WebMercatorQuad one.
    """

    def __init__(self, app: ASGIApp, index: LayerIndex, metrics: Metrics, *, memory_bytes: int = 64 * 2**20,
                 disk_dir: Path | None = None, disk_bytes: int = 512 * 2**20, max_renders: int | None = None,
                 max_waiting: int = 64) -> None:
        self.app = app
        self.index = index
        self.metrics = metrics
        self.memory = _Lru(memory_bytes)
        self.disk = _DiskCache(disk_dir, disk_bytes) if disk_dir is not None else None
        self.max_renders = max_renders or max(2, 2 * (os.cpu_count() or 1))
        self.max_waiting = max_waiting
        self._slots: asyncio.Semaphore | None = None
        self._waiting = 0
        # labelled children looked up once (`labels()` costs ~10 µs a call, a cache hit ~50 µs in all)
        self._counters = {result: (metrics.tile_cache.labels(result), metrics.tile_latency.labels(result))
                          for result in ("hit", "miss")}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = TILE_PATH.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        if match["tms"] is None:  # the older URL: /layers/{id}/tiles/{z}/{x}/{y}.png
            path = f"/layers/{match['id']}/tiles/{DEFAULT_TMS}/{match['z']}/{match['x']}/{match['y']}" + (
                match["ext"] or ".png")
            scope = {**scope, "path": path, "raw_path": path.encode()}
        try:  # from memory and file checks when possible; a database lookup goes to a worker thread
            layer = self.index.peek(match["id"])
            if layer is None:
                layer = await run_in_threadpool(self.index.get, match["id"])
        except LayerNotFoundError:
            await self.app(scope, receive, send)  # the endpoint answers the 404
            return
        query = "&".join(sorted(scope.get("query_string", b"").decode("latin-1").split("&")))
        key = hashlib.sha256(f"{layer.id}\n{layer.version}\n{scope['path']}\n{query}".encode()).hexdigest()
        etag = f'"{key[:32]}"'.encode()
        if etag in [tag.strip().encode() for tag in Headers(scope=scope).get("if-none-match", "").split(",")]:
            await Response(status_code=304, headers={"etag": etag.decode(), "cache-control": CACHE_CONTROL.decode()})(
                scope, receive, send)
            self._observe("hit", start)
            return
        cached = self.memory.get(key)
        if cached is None and self.disk is not None:
            cached = await run_in_threadpool(self.disk.get, key)
            if cached is not None:
                self.memory.put(key, *cached)
        if cached is not None:
            await self._send(send, 200, cached[0], cached[1], etag)
            self._observe("hit", start)
            return
        await self._render(scope, receive, send, key, etag)
        self._observe("miss", start)

    def _observe(self, result: str, start: float) -> None:
        count, latency = self._counters[result]
        count.inc()
        latency.observe(time.perf_counter() - start)

    async def _render(self, scope: Scope, receive: Receive, send: Send, key: str, etag: bytes) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_renders)
        if self._slots.locked() and self._waiting >= self.max_waiting:
            self.metrics.shed.inc()
            await JSONResponse({"detail": "too many tiles being rendered: retry shortly"}, status_code=503,
                               headers={"Retry-After": "1"})(scope, receive, send)
            return
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            start: Message | None = None
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                nonlocal start
                if message["type"] == "http.response.start":
                    start = message
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await self.app(scope, receive, capture)
        finally:
            self._slots.release()
        if start is None:
            return
        body = b"".join(chunks)
        if start["status"] != 200:
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        headers = [(name, value) for name, value in start.get("headers", []) if name in KEPT_HEADERS]
        self.memory.put(key, headers, body)
        if self.disk is not None:
            await run_in_threadpool(self.disk.put, key, headers, body)
        await self._send(send, 200, headers, body, etag)

    @staticmethod
    async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, etag: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode()), (b"etag", etag),
                                (b"cache-control", CACHE_CONTROL)]})
        await send({"type": "http.response.body", "body": body, "more_body": False})


class EntityTags:
    """ETag and conditional GET (304) on JSON and XML answers of `prefixes` (layer metadata, TileJSON, WMTS):
    the tag is a digest of the body, which is buffered only for those small answers."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = ("/layers",), max_bytes: int = 4 * 2**20) -> None:
        self.app = app
        self.prefixes = prefixes
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        buffering = False

        async def tagged(message: Message) -> None:
            nonlocal start, buffering
            if message["type"] == "http.response.start":
                headers = Headers(raw=message.get("headers", []))
                kind = headers.get("content-type", "")
                buffering = (message["status"] == 200 and "etag" not in headers
                             and ("json" in kind or "xml" in kind)
                             and int(headers.get("content-length", self.max_bytes + 1)) <= self.max_bytes)
                if not buffering:
                    await send(message)
                start = message
                return
            if not buffering:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            assert start is not None
            matches = etag in [tag.strip() for tag in Headers(scope=scope).get("if-none-match", "").split(",")]
            raw = [(name, value) for name, value in start.get("headers", [])
                   if not (matches and name == b"content-length")]
            raw.append((b"etag", etag.encode()))
            if matches:
                await send({"type": "http.response.start", "status": 304, "headers": raw})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send({**start, "headers": raw})
                await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, tagged)
