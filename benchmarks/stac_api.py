"""STAC API benchmark: start-up of the private PostgreSQL + pgstac, and item-search latency under load.

1. Start from nothing (initdb + start + CREATE DATABASE + PostGIS + `pypgstac migrate`), stop, start again from the
   existing cluster (start + version check only).
2. 10 000 GENERATED items (synthetic: the footprint of the real Gers scene shifted over a grid across France, one
   date per item over 2018-2024, a random `eo:cloud_cover`; no real imagery behind them) written with
   `PgstacItemStore.upsert_many`, then the geovigie service with the STAC API served by uvicorn on 127.0.0.1
   (one worker) answers GET /search with a random 1-degree bbox, a one-year datetime, `limit=10`, and the same
   with the CQL2 filter `eo:cloud_cover < 20`, from 1 and from 20 concurrent clients (threads with httpx).

Run: `.venv/bin/python benchmarks/stac_api.py [--items 10000] [--requests 400]`.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pystac
import uvicorn

from geovigie.catalog.stac import PgstacItemStore
from geovigie.postgres import PrivatePostgres
from geovigie.service import create_app
from geovigie.service.stac_api import STAC_API_PREFIX, mount_stac_api
from geovigie.settings import Settings

COLLECTION = "bench-generated"


def generated_items(count: int, seed: int = 0) -> list[pystac.Item]:
    """Synthetic items over France (see the module docstring)."""
    rng = random.Random(seed)
    items = []
    start = datetime(2018, 1, 1, tzinfo=UTC)
    for index in range(count):
        west, south = rng.uniform(-4.5, 7.5), rng.uniform(42.5, 50.5)
        east, north = west + 0.11, south + 0.07  # the size of the shipped Gers scene
        when = start + timedelta(hours=rng.randrange(7 * 365 * 24))
        geometry = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                        [west, south]]]}
        item = pystac.Item(f"gen-{index:05d}", geometry, [west, south, east, north], when,
                           {"eo:cloud_cover": round(rng.uniform(0, 100), 1), "platform": "sentinel-2b"},
                           collection=COLLECTION)
        item.add_asset("data", pystac.Asset(f"https://example.invalid/{index}.tif", media_type=pystac.MediaType.COG))
        items.append(item)
    return items


def time_start(root: Path) -> tuple[float, float]:
    """Seconds to start from nothing, then from the existing cluster (stopped in between)."""
    cluster = PrivatePostgres(root / "postgres")
    begin = time.perf_counter()
    cluster.start()
    fresh = time.perf_counter() - begin
    cluster.stop()
    begin = time.perf_counter()
    cluster.start()
    existing = time.perf_counter() - begin
    cluster.stop()
    return fresh, existing


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_test(url: str, clients: int, requests: int, cql2: bool, seed: int = 1) -> dict[str, float]:
    """Latencies (ms) of `requests` GET /search calls spread over `clients` threads."""
    rng = random.Random(seed)
    queries = []
    for _ in range(requests):
        west, south = rng.uniform(-4.5, 6.5), rng.uniform(42.5, 49.5)
        year = rng.randrange(2018, 2025)
        params = {"bbox": f"{west},{south},{west + 1},{south + 1}", "datetime": f"{year}-01-01T00:00:00Z/"
                  f"{year}-12-31T23:59:59Z", "collections": COLLECTION, "limit": "10"}
        if cql2:
            params |= {"filter": "eo:cloud_cover < 20", "filter-lang": "cql2-text"}
        queries.append(params)
    local = threading.local()

    def one(params: dict[str, str]) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        begin = time.perf_counter()
        response = local.client.get(f"{url}/search", params=params)
        response.raise_for_status()
        return (time.perf_counter() - begin) * 1000

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, queries[: clients * 2]))  # warm-up
        begin = time.perf_counter()
        latencies = list(pool.map(one, queries))
        wall = time.perf_counter() - begin
    return {"p50": statistics.median(latencies), "p99": _percentile(latencies, 0.99), "rps": requests / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="geovigie-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # as root the server runs as `postgres`, which must reach it
        fresh, existing = time_start(root / "startup")
        print(f"start from nothing: {fresh:.2f} s; from an existing cluster: {existing:.2f} s")
        data_dir = root / "gv"
        cluster = PrivatePostgres(data_dir / "postgres")
        url = cluster.start()
        items = generated_items(args.items)
        collection = pystac.Collection(COLLECTION, "Generated items (benchmark)", pystac.Extent(
            pystac.SpatialExtent([[-5.0, 42.0, 8.0, 51.0]]), pystac.TemporalExtent([[None, None]])))
        begin = time.perf_counter()
        with PgstacItemStore(url, data_dir / "results") as store:
            for start in range(0, len(items), 1000):
                store.upsert_many(items[start:start + 1000], collection)
        print(f"{len(items)} generated items written in {time.perf_counter() - begin:.1f} s")
        app = create_app(Settings(data_dir=data_dir, stac_backend="static"))  # the API is mounted here, started eagerly
        mount_stac_api(app, data_dir=data_dir, transactions=False, eager=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        api = f"http://127.0.0.1:{port}{STAC_API_PREFIX}"
        try:
            for cql2 in (False, True):
                for clients in (1, 20):
                    result = load_test(api, clients, args.requests, cql2)
                    label = "bbox+datetime" + (" + CQL2 eo:cloud_cover < 20" if cql2 else "")
                    print(f"{label}, {clients:2d} client(s), {args.requests} requests: p50 {result['p50']:.1f} ms, "
                          f"p99 {result['p99']:.1f} ms, {result['rps']:.0f} req/s")
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            cluster.stop()


if __name__ == "__main__":
    main()
