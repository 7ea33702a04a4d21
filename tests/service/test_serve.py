"""`geovigie serve --workers N`: several processes behind one port sharing the tile cache folder, metrics added
up across them, JSON log lines with request ids."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import morecantile

from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer
from tests._support.layers import CLASSES, class_cog

GEOVIGIE = str(Path(sys.executable).parent / "geovigie")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_with_two_workers(tmp_path: Path) -> None:
    data_dir = tmp_path / "gv"
    publish_layer(Settings(data_dir=data_dir).results_dir, class_cog(tmp_path / "c.tif"),
                  LayerSpec("lc", "Land cover", "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))
    port = _free_port()
    env = {**os.environ, "GEOVIGIE_DATA_DIR": str(data_dir), "GEOVIGIE_STAC_BACKEND": "static"}
    process = subprocess.Popen([GEOVIGIE, "serve", "--workers", "2", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        assert httpx.get(f"{base}/healthz").json()["layers"] == 1
        west, south, east, north = httpx.get(f"{base}/layers/lc").json()["bounds"]
        tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 14)
        url = f"{base}/layers/lc/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
        answers = [httpx.get(url) for _ in range(6)]  # connections land on either worker
        assert {a.status_code for a in answers} == {200} and len({a.content for a in answers}) == 1
        assert list((data_dir / "tile-cache").glob("*/*"))  # the folder the workers share
        metrics = httpx.get(f"{base}/metrics").text
        counts = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
                  for line in metrics.splitlines() if line.startswith("geovigie_tile_cache_total{")}
        assert counts['result="hit"'] + counts['result="miss"'] == 6  # every worker's samples
        assert 1 <= counts['result="miss"'] <= 2  # at most one render per worker: the others read the folder
    finally:
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "geovigie.service.access"]
    assert any("/layers/lc/tiles/" in line["message"] for line in access)
    assert all(len(line["request_id"]) == 16 for line in access)
