"""Tile latency of the map service: one raster layer of the real Gers NDVI, the same XYZ tile requested N times
through the ASGI app (httpx TestClient, no network), p50/p99 of the whole request; and `LayerIndex.get` alone.

Run: `.venv/bin/python benchmarks/tile_latency.py [--backend static|pgstac] [--requests 300]`
(pgstac: the private PostgreSQL under a temporary data directory; PostgreSQL must be installed).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from fastapi.testclient import TestClient

from geovigie.cog import write_array_cog
from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex, LayerSpec, Provenance, publish_layer, results_store_for, stop_results_database

DATA = Path(__file__).resolve().parent.parent / "data" / "s2-l2a-theia-gers"
if not DATA.is_dir():  # run from /tmp before being copied into benchmarks/
    DATA = Path.cwd() / "data" / "s2-l2a-theia-gers"
STEM = "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"


def ndvi_cog(target: Path) -> Path:
    with rasterio.open(DATA / f"{STEM}_FRE_B4.tif") as red_src, rasterio.open(DATA / f"{STEM}_FRE_B8.tif") as nir:
        red, infra = red_src.read(1).astype("float32"), nir.read(1).astype("float32")
        profile = {"driver": "GTiff", "crs": red_src.crs, "transform": red_src.transform, "nodata": np.nan}
    ndvi = ((infra - red) / np.maximum(infra + red, 1.0)).astype("float32")
    return write_array_cog(target, ndvi[None], profile=profile)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="static")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    import morecantile

    folder = Path(tempfile.mkdtemp(prefix="geovigie-bench-tiles-"))
    folder.chmod(0o711)  # as root the server runs as `postgres`, which must reach it
    try:
        settings = Settings(data_dir=folder / "gv", stac_backend=args.backend)
        store = results_store_for(settings)
        publish_layer(store, ndvi_cog(folder / "ndvi.tif"), LayerSpec("ndvi", "NDVI", "continuous",
                      rescale=(-1.0, 1.0), colormap_name="rdylgn"), Provenance(inputs=[], lineage="bench"))
        with TestClient(create_app(settings)) as client:
            west, south, east, north = client.get("/layers/ndvi").json()["bounds"]
            tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 14)
            url = f"/layers/ndvi/tiles/{tile.z}/{tile.x}/{tile.y}.png"
            for _ in range(20):
                assert client.get(url).status_code == 200
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            index = LayerIndex(store)
            index.get("ndvi")
            lookups = []
            for _ in range(2000):
                start = time.perf_counter()
                index.get("ndvi")
                lookups.append((time.perf_counter() - start) * 1e6)
        print(f"backend {args.backend}: tile p50 {statistics.median(times):.2f} ms, p99 {percentile(times, 99):.2f} ms "
              f"({args.requests} requests); LayerIndex.get p50 {statistics.median(lookups):.1f} us, "
              f"p99 {percentile(lookups, 99):.1f} us")
    finally:
        stop_results_database(settings)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
