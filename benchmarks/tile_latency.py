"""Tile latency of geovigie's layer endpoint against a plain titiler.core app on the same COG, in the same run.

The real Gers NDVI (Theia L2A B8/B4) is published as a continuous layer; two uvicorn servers on 127.0.0.1, one
process each, serve it: geovigie's `create_app` (a bare tile URL: the layer's ramp and range are its defaults,
the tile cache on) and a plain `titiler.core` `TilerFactory` app (`?url=<the COG>&rescale=-1,1&colormap_name=rdylgn`:
the same rendering, no cache). One event loop (httpx.AsyncClient; uvloop when installed) requests both servers in
alternating rounds, concurrency 1 then 50, cold (tiles never requested before) then warm (the same tiles again),
each phase bounded in requests and in seconds. Latency is the whole HTTP request as the client sees it; errors
are non-200 answers; server CPU ms/tile is the server process's user + system CPU time during its rounds (/proc)
per request: what a tile costs whatever else runs on the machine, where latencies move with the load.

Run: `nice -n 5 .venv/bin/python benchmarks/tile_latency.py [--requests 120] [--seconds 30] [--http h11 --loop asyncio]`
(`--http`/`--loop`: uvicorn's HTTP parser and event loop for both servers; default auto: httptools and uvloop
when installed, as `uvicorn[standard]` does). The load average is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data" / "s2-l2a-theia-gers"
STEM = "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"
RENDER = {"rescale": "-1,1", "colormap_name": "rdylgn"}


def ndvi_cog(target: Path) -> Path:
    """The NDVI of the shipped Gers scene as a COG."""
    import rasterio

    from geovigie.cog import write_array_cog

    with rasterio.open(DATA / f"{STEM}_FRE_B4.tif") as red_src, rasterio.open(DATA / f"{STEM}_FRE_B8.tif") as nir:
        red, infra = red_src.read(1).astype("float32"), nir.read(1).astype("float32")
        profile = {"driver": "GTiff", "crs": red_src.crs, "transform": red_src.transform, "nodata": np.nan}
    ndvi = ((infra - red) / np.maximum(infra + red, 1.0)).astype("float32")
    return write_array_cog(target, ndvi[None], profile=profile)


def serve(kind: str, data_dir: Path, port: int, http: str = "auto", loop: str = "auto") -> None:
    """Run one server in this process (the benchmark starts two of these)."""
    import uvicorn
    from fastapi import FastAPI

    if kind == "geovigie":
        from geovigie.service import create_app
        from geovigie.settings import Settings

        app = create_app(Settings(data_dir=data_dir, stac_backend="static", port=port))
    else:
        from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
        from titiler.core.factory import TilerFactory

        app = FastAPI()
        app.include_router(TilerFactory().router, prefix="/cog")
        add_exception_handlers(app, DEFAULT_STATUS_CODES)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", http=http, loop=loop)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Phase:
    """One measured phase: latencies (ms) of the 200 answers, the count of the others, the server's CPU time."""

    times: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    def row(self) -> tuple[str, str, str, str, str]:
        if not self.times:
            return "–", "–", f"{self.errors}", "–", "–"
        p50, p99 = np.percentile(self.times, 50), np.percentile(self.times, 99)
        per_tile = self.cpu * 1000 / (len(self.times) + self.errors)
        return (f"{p50:.1f}", f"{p99:.1f}", f"{self.errors}", f"{len(self.times) / self.wall:.0f}",
                f"{per_tile:.1f}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_phase(client, urls: list[str], concurrency: int, seconds: float, png: bool = True,
                    phase: Phase | None = None) -> Phase:
    """Request `urls` with `concurrency` clients until done or `seconds` have passed (added to `phase`)."""
    phase, queue = phase or Phase(), list(reversed(urls))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while queue and time.perf_counter() < deadline:
            url = queue.pop()
            start = time.perf_counter()
            try:
                response = await client.get(url)
                ok = response.status_code == 200 and (not png or response.content[:4] == b"\x89PNG")
            except Exception:  # noqa: BLE001 - a failed request is counted, not raised
                ok = False
            if ok:
                phase.times.append((time.perf_counter() - start) * 1000)
            else:
                phase.errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall += time.perf_counter() - start
    return phase


async def run_pair(client, urls: dict[str, list[str]], pids: dict[str, int], concurrency: int,
                   seconds: float) -> dict[str, Phase]:
    """The same phase for every server, in alternating rounds (10 requests at one client, 60 at 50) so that a
    change of the machine's load falls on both alike; each server's CPU time is counted during its rounds."""
    size = 10 if concurrency == 1 else 60
    phases = {name: Phase() for name in urls}
    deadline = time.perf_counter() + seconds * len(urls)
    for first in range(0, max(len(u) for u in urls.values()), size):
        for name, todo in urls.items():
            left = deadline - time.perf_counter()
            if left <= 0:
                return phases
            before = cpu_seconds(pids[name])
            await run_phase(client, todo[first:first + size], concurrency, left / len(urls), phase=phases[name])
            phases[name].cpu += cpu_seconds(pids[name]) - before
    return phases


def tiles_of(bounds: tuple[float, float, float, float], zooms: tuple[int, ...]) -> list[tuple[int, int, int]]:
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    # inside the raster's footprint (the EPSG:4326 bounds of a UTM raster hold corners with no data)
    dx, dy = (bounds[2] - bounds[0]) * 0.1, (bounds[3] - bounds[1]) * 0.1
    inner = (bounds[0] + dx, bounds[1] + dy, bounds[2] - dx, bounds[3] - dy)
    return [(t.z, t.x, t.y) for z in zooms for t in tms.tiles(*inner, zooms=[z])]


async def measure(ours: str, plain: str, cog: Path, tiles: list[tuple[int, int, int]], requests: int,
                  seconds: float, pids: dict[str, int]) -> list[tuple[str, int, str, Phase]]:
    from urllib.parse import urlencode

    import httpx

    query = urlencode({"url": str(cog), **RENDER})
    servers = {"geovigie": lambda z, x, y: f"{ours}/layers/ndvi/tiles/WebMercatorQuad/{z}/{x}/{y}.png",
               "titiler.core": lambda z, x, y: f"{plain}/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?{query}"}
    rng = np.random.default_rng(0)
    order = [tiles[i] for i in rng.permutation(len(tiles))]
    sets = {1: order[:requests], 50: order[requests:2 * requests]}
    results = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for url in servers.values():  # warm-up: open the COG and the connection pool once
            await run_phase(client, [url(*order[-1])] * 5, 1, 10)
        for concurrency in (1, 50):
            for state in ("cold", "warm"):
                urls = {name: [url(*tile) for tile in sets[concurrency]] for name, url in servers.items()}
                phases = await run_pair(client, urls, pids, concurrency, seconds)
                results += [(name, concurrency, state, phase) for name, phase in phases.items()]
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=120, help="requests per phase (distinct tiles)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit of each phase")
    parser.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto", help="uvicorn HTTP parser")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="uvicorn event loop")
    parser.add_argument("--serve", choices=["geovigie", "titiler"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.data_dir, args.port, args.http, args.loop)
        return
    from geovigie.settings import Settings
    from geovigie.tiles import LayerIndex, LayerSpec, Provenance, publish_layer

    folder = Path(tempfile.mkdtemp(prefix="geovigie-bench-tiles-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(data_dir=folder / "gv", stac_backend="static")
        publish_layer(settings.results_dir, ndvi_cog(folder / "ndvi.tif"), LayerSpec(
            "ndvi", "NDVI", "continuous", rescale=(-1.0, 1.0), colormap_name="rdylgn"),
            Provenance(inputs=[], lineage="bench"))
        layer = LayerIndex(settings.results_dir).get("ndvi")
        ports = {"geovigie": _free_port(), "titiler": _free_port()}
        env = {**os.environ, "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
        for kind, port in ports.items():
            processes.append(subprocess.Popen([sys.executable, __file__, "--serve", kind, "--data-dir",
                                               str(settings.data_dir), "--port", str(port), "--http", args.http,
                                               "--loop", args.loop], env=env))
        _wait([f"http://127.0.0.1:{port}/docs" for port in ports.values()])
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        tiles = tiles_of(layer.bounds, (15, 16, 17))
        if len(tiles) < 2 * args.requests:
            raise SystemExit(f"only {len(tiles)} tiles in the layer: use --requests {len(tiles) // 2} or fewer")
        results = _run(measure(f"http://127.0.0.1:{ports['geovigie']}",
                                      f"http://127.0.0.1:{ports['titiler']}", layer.path, tiles, args.requests,
                                      args.seconds, {"geovigie": processes[0].pid,
                                                     "titiler.core": processes[1].pid}))
        print(f"COG {layer.path.stat().st_size / 2**20:.1f} MiB, {len(tiles)} tiles at z15-17; "
              f"{args.requests} requests a phase (distinct tiles), {args.seconds:.0f} s limit; {os.cpu_count()} CPUs; "
              f"uvicorn http={_resolved(args.http, 'httptools')} loop={_resolved(args.loop, 'uvloop')}; "
              f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
              f"{time.perf_counter() - started:.0f} s measuring")
        print("| server | clients | tiles | p50 ms | p99 ms | errors | tiles/s | server CPU ms/tile |")
        print("|---|---|---|---|---|---|---|---|")
        for name, concurrency, state, phase in results:
            print(f"| {name} | {concurrency} | {state} | " + " | ".join(phase.row()) + " |")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _run(main: Any) -> Any:
    """Run the client's coroutine on uvloop when installed (the client shares the CPUs with the servers: the less
    it spends per request, the less it delays them), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _resolved(choice: str, fast: str) -> str:
    """What uvicorn's `auto` picks: the fast implementation when its package is installed."""
    import importlib.util

    if choice != "auto":
        return choice
    slow = {"httptools": "h11", "uvloop": "asyncio"}[fast]
    return fast if importlib.util.find_spec(fast) is not None else slow


def _wait(urls: list[str]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    for url in urls:
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer")
            time.sleep(0.2)


if __name__ == "__main__":
    main()
