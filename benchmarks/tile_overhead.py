"""CPU time per tile request inside the process, without HTTP: geovigie's app against a plain titiler.core app.

The ASGI apps are called directly (no sockets, no client), so the figures are the apps' own cost and move little
with the machine's load, unlike latencies. Cold: distinct z15-17 tiles of the Gers NDVI COG (as in
`tile_latency.py`), the two apps alternating tile by tile, each request's process CPU time (render threads
included); warm: one tile already in geovigie's cache, requested again and again (a hit: middleware, layer lookup,
cache).

Run: `nice -n 5 .venv/bin/python benchmarks/tile_overhead.py [--cold 300] [--warm 3000]`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from tile_latency import RENDER, ndvi_cog, tiles_of


async def call(app: Any, path: str, query: bytes = b"") -> None:
    """One GET through the app's whole ASGI stack; fails on anything but 200."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000), "state": {}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"{path}: HTTP {sent[0]['status']}")


async def measure(ours: Any, plain: Any, cog: Path, tiles: list[tuple[int, int, int]], warm: int) -> dict[str, Any]:
    query = urlencode({"url": str(cog), **RENDER}).encode()
    paths = {"geovigie": lambda z, x, y: (f"/layers/ndvi/tiles/WebMercatorQuad/{z}/{x}/{y}.png", b""),
             "titiler.core": lambda z, x, y: (f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png", query)}
    apps = {"geovigie": ours, "titiler.core": plain}
    for name, app in apps.items():  # open the COG once
        await call(app, *paths[name](*tiles[-1]))
    cold: dict[str, list[float]] = {name: [] for name in apps}
    for i, tile in enumerate(tiles[:-1]):
        for name in list(apps)[:: 1 if i % 2 else -1]:
            start = time.process_time()
            await call(apps[name], *paths[name](*tile))
            cold[name].append(time.process_time() - start)
    start = time.process_time()
    for _ in range(warm):
        await call(ours, *paths["geovigie"](*tiles[-1]))
    return {"cold": cold, "warm": (time.process_time() - start) / warm}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", type=int, default=300, help="distinct tiles rendered by each app")
    parser.add_argument("--warm", type=int, default=3000, help="cache hits timed")
    args = parser.parse_args()
    os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    from fastapi import FastAPI
    from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from titiler.core.factory import TilerFactory

    from geovigie.service import create_app
    from geovigie.settings import Settings
    from geovigie.tiles import LayerIndex, LayerSpec, Provenance, publish_layer

    folder = Path(tempfile.mkdtemp(prefix="geovigie-bench-overhead-"))
    try:
        settings = Settings(data_dir=folder / "gv", stac_backend="static")
        publish_layer(settings.results_dir, ndvi_cog(folder / "ndvi.tif"), LayerSpec(
            "ndvi", "NDVI", "continuous", rescale=(-1.0, 1.0), colormap_name="rdylgn"),
            Provenance(inputs=[], lineage="bench"))
        layer = LayerIndex(settings.results_dir).get("ndvi")
        plain = FastAPI()
        plain.include_router(TilerFactory().router, prefix="/cog")
        add_exception_handlers(plain, DEFAULT_STATUS_CODES)
        tiles = tiles_of(layer.bounds, (15, 16, 17))[: args.cold + 1]
        load = os.getloadavg()[0]
        found = asyncio.run(measure(create_app(settings), plain, layer.path, tiles, args.warm))
        print(f"{len(tiles) - 1} cold tiles each, {args.warm} warm hits; load average {load:.1f}")
        print("| app | cold CPU ms/tile, median | mean | warm hit µs |")
        print("|---|---|---|---|")
        for name, times in found["cold"].items():
            warm = f"{found['warm'] * 1e6:.0f}" if name == "geovigie" else "– (no cache)"
            print(f"| {name} | {np.median(times) * 1000:.2f} | {np.mean(times) * 1000:.2f} | {warm} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
