"""Predicting a STAC item whose asset lives on an HTTP server (GDAL /vsicurl/ with range requests).

A loopback server with HTTP range support serves a shipped Slovenia scene and items pointing to it; the remote
prediction must equal the local one, reruns must be idempotent, and broken servers give one clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.warp

from geovigie.errors import RemoteSourceError
from geovigie.inference import PredictOptions, predict
from tests.conftest import SLOVENIA_SCENE

S2_13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print the clients' dropped connections."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


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
    server = QuietServer(("127.0.0.1", 0), type("Handler", (FileServer,), {"files": files, "requests": requests}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    with file_server() as running:
        yield running


def _options() -> PredictOptions:
    return PredictOptions(tile_size=64, overlap=16, batch_size=4, device="cpu")


def _item(base: str, asset: str, item_id: str, **fields: object) -> pystac.Item:
    return pystac.Item.from_dict(remote_item(base, asset, item_id, **fields))


def test_server_honours_ranges(served) -> None:
    """The test double itself: a ranged GET returns exactly those bytes (GDAL relies on it)."""
    import urllib.request

    base, files, _ = served
    request = urllib.request.Request(base + "/scene.tif", headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 206 and answer.read() == files["/scene.tif"][10:20]


def test_remote_item_predicts_like_the_local_file(served, dask_client, tmp_path: Path) -> None:
    base, files, requests = served
    item = _item(base, "/scene.tif", "slovenia-remote")
    remote = predict(item, tmp_path / "remote", _options(), client=dask_client, progress=False)
    local = predict(SLOVENIA_SCENE, tmp_path / "local", _options(), client=dask_client, progress=False,
                    product_level="L1C")
    assert any("/scene.tif" in r and "bytes=" in r for r in requests)  # read through range requests
    with rasterio.open(remote.classes_path) as a, rasterio.open(local.classes_path) as b:
        classes = a.read(1)
        assert np.array_equal(classes, b.read(1))
        assert a.crs == b.crs and a.transform == b.transform
    assert (classes != 255).all()
    # an item that declares no checksum or size: its id and href identify it, and a rerun is skipped
    assert predict(item, tmp_path / "remote", _options(), client=dask_client, progress=False).skipped


def test_remote_rerun_is_idempotent_and_follows_declared_identity(served, dask_client, tmp_path: Path) -> None:
    base, files, _ = served
    digest = "1220" + hashlib.sha256(files["/scene.tif"]).hexdigest()  # multihash, as the file extension writes it
    item = _item(base, "/scene.tif", "slovenia-remote-2", **{"file:checksum": digest})
    first = predict(item, tmp_path, _options(), client=dask_client, progress=False)
    stamp = first.classes_path.stat().st_mtime_ns
    again = predict(item, tmp_path, _options(), client=dask_client, progress=False)
    assert again.skipped and not first.skipped and first.classes_path.stat().st_mtime_ns == stamp
    # the same item declaring another checksum (the file was replaced) is predicted again
    changed = _item(base, "/scene.tif", "slovenia-remote-2", **{"file:checksum": "1220" + "0" * 64})
    assert not predict(changed, tmp_path, _options(), client=dask_client, progress=False).skipped


def test_remote_item_json_file_read_over_http(served, dask_client, tmp_path: Path) -> None:
    """The item JSON itself on disk, its asset href on the server: the CLI path (`geovigie predict item.json`)."""
    base, _, _ = served
    path = tmp_path / "item.json"
    path.write_text(json.dumps(remote_item(base, "/scene.tif", "slovenia-remote-3")))
    result = predict(path, tmp_path / "out", _options(), client=dask_client, progress=False)
    assert result.source.bands[0].href == f"/vsicurl/{base}/scene.tif"


@pytest.mark.parametrize(("asset", "words"), [
    ("/missing.tif", "HTTP 404"),
    ("/close.tif", "closed the connection"),
    ("/text.tif", "not a raster"),
])
def test_broken_remote_assets_give_one_clear_error(served, tmp_path: Path, asset: str, words: str) -> None:
    base, _, _ = served
    item = _item(base, asset, "broken")
    with pytest.raises(RemoteSourceError) as caught:
        predict(item, tmp_path / "out", _options(), progress=False)
    message = str(caught.value)
    assert base + asset in message and words in message, message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()
