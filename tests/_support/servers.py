"""Servers the tests start on 127.0.0.1: an ASGI app under uvicorn, or an http.server handler, in a thread; the
pieces of a STAC API stand-in (JSON answers, a landing page)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def served(app: Any, port: int | None = None) -> Iterator[str]:
    """`app` under uvicorn on 127.0.0.1 (`port`, else a free one) in a thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print the clients' dropped connections."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers JSON (`send_json`)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_json(self, payload: object, status: int = 200, **headers: str) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler], on_close: Callable[[], None] | None = None,
                **attributes: Any) -> Iterator[str]:
    """`handler`, with `attributes` set on a subclass of it, on a threading HTTP server on 127.0.0.1 in a thread;
    yields its base URL (no trailing slash). `on_close` runs before the server shuts down (release waiting
    handlers)."""
    server = QuietServer(("127.0.0.1", 0), type(handler.__name__, (handler,), attributes))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if on_close is not None:
            on_close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/"


STAC_CORE = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
             "https://api.stacspec.org/v1.0.0/collections"]
"""Conformance classes of a STAC API 1.0.0 with collections and item search."""


def landing_page(base: str, conforms: list[str] | None = None, catalog_id: str = "loopback",
                 get_search: bool = False) -> dict:
    """A STAC API landing page rooted at `base` (ending with /): search by POST (and GET when `get_search`)."""
    searches = [{"rel": "search", "href": base + "search", "method": method, "type": "application/geo+json"}
                for method in ("POST", "GET")[: 1 + get_search]]
    return {"type": "Catalog", "id": catalog_id, "stac_version": "1.1.0", "description": f"{catalog_id} API",
            "conformsTo": conforms or STAC_CORE,
            "links": [{"rel": "self", "href": base}, {"rel": "root", "href": base}, *searches,
                      {"rel": "data", "href": base + "collections", "type": "application/json"}]}
