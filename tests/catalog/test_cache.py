"""The asset cache against a real HTTP server on 127.0.0.1 that fails on purpose (503s, a dropped connection)."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from geovigie.catalog.imagery import AssetCache, AssetChecksumError, AssetDownloadError, fetch_asset
from tests.conftest import GERS_DIR

PAYLOAD = (GERS_DIR / "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9_FRE_B2.tif").read_bytes()
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Serves PAYLOAD at /<anything>; `plan` lists what to do for each request: 'ok', 503, 404, 'truncate'."""

    def __init__(self) -> None:
        self.plan: list[object] = []
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.requests.append({"path": self.path, "range": self.headers.get("Range", "")})
                action = outer.plan.pop(0) if outer.plan else "ok"
                if isinstance(action, int):
                    body = b"failing on purpose"
                    self.send_response(action)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                start = 0
                ranged = self.headers.get("Range")
                if ranged:
                    start = int(ranged.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD) - start))
                self.end_headers()
                if action == "truncate":  # announce everything, send a third, hang up
                    self.wfile.write(PAYLOAD[start:start + len(PAYLOAD) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(PAYLOAD[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def visible_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_retries_503_then_serves_and_caches(server: Server, tmp_path: Path) -> None:
    server.plan = [503, 503, "ok"]
    cache = AssetCache(tmp_path / "cache", backoff=0.01)
    path = cache.fetch(f"{server.url}/tiles/B02.tif")
    assert len(server.requests) == 3
    assert path.suffix == ".tif" and path.read_bytes() == PAYLOAD
    sidecar = path.with_name(path.name + ".sha256").read_text().split()
    assert sidecar == [DIGEST, f"{server.url}/tiles/B02.tif"]
    assert cache.fetch(f"{server.url}/tiles/B02.tif") == path  # a hit: no new request
    assert len(server.requests) == 3
    assert visible_files(tmp_path / "cache") == [path, path.with_name(path.name + ".sha256")]


def test_dropped_connection_resumes_with_range(server: Server, tmp_path: Path) -> None:
    server.plan = ["truncate", "ok"]
    path = AssetCache(tmp_path / "cache", backoff=0.01).fetch(f"{server.url}/B02.tif", sha256=DIGEST)
    assert path.read_bytes() == PAYLOAD
    assert [r["range"] for r in server.requests] == ["", f"bytes={len(PAYLOAD) // 3}-"]


def test_checksum_mismatch_leaves_nothing(server: Server, tmp_path: Path) -> None:
    with pytest.raises(AssetChecksumError, match="does not match the expected"):
        AssetCache(tmp_path / "cache", backoff=0.01).fetch(f"{server.url}/B02.tif", sha256="0" * 64)
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert leftovers == []


def test_stac_multihash_checksum_accepted(server: Server, tmp_path: Path) -> None:
    path = AssetCache(tmp_path / "cache").fetch(f"{server.url}/B02.tif", sha256="1220" + DIGEST)
    assert path.read_bytes() == PAYLOAD


def test_http_404_is_not_retried(server: Server, tmp_path: Path) -> None:
    server.plan = [404]
    with pytest.raises(AssetDownloadError, match=r"HTTP 404 \(not found"):
        AssetCache(tmp_path / "cache", backoff=0.01).fetch(f"{server.url}/missing.tif")
    assert len(server.requests) == 1
    assert visible_files(tmp_path / "cache") == []


def test_expired_signature_is_explained(server: Server, tmp_path: Path) -> None:
    server.plan = [403]
    with pytest.raises(AssetDownloadError, match="expired or missing signature"):
        AssetCache(tmp_path / "cache").fetch(f"{server.url}/B02.tif?se=2020-01-01&sig=x")


def test_gives_up_after_the_retries(server: Server, tmp_path: Path) -> None:
    server.plan = [503] * 10
    with pytest.raises(AssetDownloadError, match="HTTP 503; gave up after 3 attempts"):
        AssetCache(tmp_path / "cache", retries=2, backoff=0.01).fetch(f"{server.url}/B02.tif")
    assert len(server.requests) == 3
    assert visible_files(tmp_path / "cache") == []


def test_corrupt_cache_entry_is_downloaded_again(server: Server, tmp_path: Path) -> None:
    cache = AssetCache(tmp_path / "cache")
    path = cache.fetch(f"{server.url}/B02.tif")
    path.write_bytes(b"damaged")
    assert cache.fetch(f"{server.url}/B02.tif").read_bytes() == PAYLOAD
    assert len(server.requests) == 2


def test_connection_refused_is_named(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(AssetDownloadError, match="connection refused"):
        AssetCache(tmp_path / "cache", retries=1, backoff=0.01).fetch(f"http://127.0.0.1:{port}/B02.tif")


def test_fetch_asset_uses_the_settings_data_dir(server: Server, settings) -> None:
    path = fetch_asset(f"{server.url}/B02.tif", settings=settings)
    assert path.is_relative_to(settings.data_dir / "cache")
    local = GERS_DIR / "COMMUNE_32xxx.geojson"
    assert fetch_asset(str(local), settings=settings) == local  # local files are used in place
