"""Remote sources that tests point geovigie at: a range-serving file server with STAC items whose asset lives on it,
and a STAC API that fails in every way a remote can."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import rasterio
import rasterio.warp

from tests._support.servers import JsonHandler, http_server, landing_page
from tests.conftest import SLOVENIA_SCENE

S2_13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
RANGE = re.compile(r"bytes=(\d+)-(\d*)")
SLOW_SECONDS = 20.0
"""How long the never-answering endpoint of `MisbehavingApi` waits (far beyond the 2 s timeout the tests use)."""


class FileServer(BaseHTTPRequestHandler):
    """GET and HEAD with single byte ranges (RFC 9110 206 answers) over a few fixed paths.

    `/scene.tif` the real scene; `/text.tif` a text body; `/close.tif` closes the connection without answering;
    `/*.json` the STAC items of `items`; anything else 404.
    """

    files: dict[str, bytes]
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        self.requests.append(f"{self.command} {self.path} {self.headers.get('Range', '')}")
        if self.path == "/close.tif":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        status, start, end = 200, 0, len(body) - 1
        match = RANGE.fullmatch(self.headers.get("Range", "").strip())
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else len(body) - 1, len(body) - 1)
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/json" if self.path.endswith(".json") else "image/tiff")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        self.end_headers()
        if not head:
            self.wfile.write(body[start : end + 1])


def remote_item(base: str, asset: str, item_id: str, **fields: object) -> dict:
    """A STAC item whose one data asset, with the 13 band names, is `base + asset`."""
    with rasterio.open(SLOVENIA_SCENE) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return {
        "type": "Feature", "stac_version": "1.1.0", "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                         [west, north], [west, south]]]},
        "bbox": [west, south, east, north],
        "properties": {"datetime": "2017-06-01T10:00:00Z", "processing:level": "L1C"},
        "links": [],
        "assets": {"image": {"href": base + asset, "type": "image/tiff; application=geotiff", "roles": ["data"],
                             "eo:bands": [{"name": name} for name in S2_13], **fields}},
    }


@contextlib.contextmanager
def file_server() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """Serve the scene and, under /<id>.json, any item added to the yielded `files`."""
    files = {"/scene.tif": SLOVENIA_SCENE.read_bytes(), "/text.tif": b"this is not a GeoTIFF\n" * 100}
    requests: list[str] = []
    with http_server(FileServer, files=files, requests=requests) as base:
        yield base, files, requests


class MisbehavingApi(JsonHandler):
    """Each first path segment is one way of failing; `/flaky/` fails twice with 503, then answers."""

    hits: dict[str, int]
    stop: threading.Event

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        kind = self.path.strip("/").split("/")[0]
        self.hits[kind] = self.hits.get(kind, 0) + 1
        base = f"http://{self.headers['Host']}/{kind}/"
        if kind == "html":
            self._send(200, b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
        elif kind == "error500":
            self._send(500, b'{"detail": "database is down"}')
        elif kind == "error502":
            self._send(502, b"bad gateway")
        elif kind == "busy":
            self._send(429, b"slow down", Retry_After="1")
        elif kind == "garbage":
            self._send(200, bytes(range(128, 256)) * 8)
        elif kind == "notstac":
            self._send(200, json.dumps({"hello": "world", "items": [1, 2, 3]}).encode())
        elif kind == "loop":
            self._send(302, b"", Location=f"/loop/{self.hits[kind]}")
        elif kind == "slow":
            self.stop.wait(SLOW_SECONDS)
            self._send(200, json.dumps(landing_page(base, catalog_id="flaky")).encode())
        elif kind == "flaky" and self.hits[kind] <= 2:
            self._send(503, b"busy")
        elif kind == "flaky" and self.path.rstrip("/").endswith("search"):
            self._send(404, b'{"detail": "no search here"}')
        elif kind == "flaky" and self.path.rstrip("/").endswith("collections"):
            self._send(200, json.dumps({"collections": [], "links": []}).encode())
        elif kind == "flaky":
            self._send(200, json.dumps(landing_page(base, catalog_id="flaky")).encode())
        else:
            self._send(404, b'{"detail": "not found"}')

    do_GET = _route  # noqa: N815 - the names http.server dispatches to
    do_POST = _route  # noqa: N815


@contextlib.contextmanager
def misbehaving_server() -> Iterator[tuple[str, dict[str, int]]]:
    """Serve `MisbehavingApi` on a free loopback port; yield its base URL and the hit counter."""
    stop = threading.Event()
    hits: dict[str, int] = {}
    with http_server(MisbehavingApi, on_close=stop.set, hits=hits, stop=stop) as base:
        yield base, hits
