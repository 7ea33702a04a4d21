"""Forest (pixel-classifier) bundle beside network bundles, in one process: model throughput on the same batch, and
`geovigie predict` end to end on the same raster.

Model: ONNX Runtime (`load_predictor(..., runtime="onnx")`) on a batch of 256² tiles cut from the real scene of the
bundle's sensor (reflected to size): Slovenia Sentinel-2 L1C (13 bands) or North Carolina Landsat 7 (6 bands, the
part without band 7 kept as nodata), normalised with each bundle's own card (its scene normalisation first, if any,
not timed); Mpx/s = pixels of the batch / seconds per call.
End to end: `predict` (tiles 256, overlap 32, one in-process Dask worker with 2 threads) on a 1024² mosaic of the
scene, from the second run (the first warms caches); whole-raster scene statistics included.

    python benchmarks/pixel_throughput.py [--seconds 6] [--batch 4] [--threads 2] [BUNDLE ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from geovigie.models import DEFAULT_BUNDLE, NETWORK_BUNDLE, load_bundle, load_predictor, normalise, normalise_scene

REPO = Path(__file__).resolve().parent.parent
SCENE = REPO / "data" / "s2-l1c-slovenia" / "reference_scene_2.tif"
NC_BANDS = [REPO / "data" / "landsat7-landcover-nc" / f"lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70)]
NODATA = -99999.0
NC_BUNDLE = REPO / "models" / "bundles" / "landcover-landsat7-nc-v2"
DEFAULT = [DEFAULT_BUNDLE, NETWORK_BUNDLE, NC_BUNDLE]  # the forest of `predict` beside the shipped U-Net; the NC forest


def read_scene(count: int) -> tuple[np.ndarray, dict, tuple]:
    """The real scene of a bundle with `count` bands: (bands, H, W) float32, its profile and band names."""
    if count == len(NC_BANDS):  # Landsat 7 NC: six single-band files, nodata made one value
        layers = []
        for path in NC_BANDS:
            with rasterio.open(path) as src:
                layers.append(src.read(1, masked=True).astype(np.float32).filled(NODATA))
                profile = src.profile
        names = ("B1", "B2", "B3", "B4", "B5", "B7")
        return np.stack(layers), {**profile, "count": 6, "dtype": "float32", "nodata": NODATA}, names
    with rasterio.open(SCENE) as src:
        return src.read().astype(np.float32), src.profile, tuple(src.descriptions)


def _mosaic(image: np.ndarray, size: int) -> np.ndarray:
    reps = (1, -(-size // image.shape[1]) + 1, -(-size // image.shape[2]) + 1)
    flipped = np.concatenate([image, image[:, ::-1]], axis=1)
    flipped = np.concatenate([flipped, flipped[:, :, ::-1]], axis=2)
    return np.tile(flipped, reps)[:, :size, :size].copy()


def model_throughput(bundle_dir: Path, image: np.ndarray, batch: int, seconds: float, threads: int) -> dict:
    bundle = load_bundle(bundle_dir)
    predictor = load_predictor(bundle, "cpu", runtime="onnx", threads=threads)
    image = normalise_scene(image, bundle.card.scene_normalisation)  # whole-scene statistics, as `predict` does
    tiles = normalise(bundle.card, np.stack([_mosaic(np.roll(image, k * 17, axis=2), 256) for k in range(batch)]))
    predictor(tiles)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor(tiles)
        calls += 1
    elapsed = (time.perf_counter() - started) / calls
    return {"bundle": bundle.id, "kind": bundle.card.kind, "model_mpx_s": round(tiles[:, 0].size / elapsed / 1e6, 3),
            "onnx_mb": round((bundle.path / bundle.card.onnx.file).stat().st_size / 1e6, 2)}


def end_to_end(bundle_dir: Path, raster: Path, out: Path, client: object) -> float:
    from geovigie.inference import PredictOptions, predict

    options = PredictOptions(tile_size=256, overlap=32, batch_size=4, device="cpu", runtime="onnx")
    level = load_bundle(bundle_dir).card.product_level
    predict(raster, out, options, bundle=bundle_dir, client=client, progress=False, product_level=level)
    started = time.perf_counter()
    result = predict(raster, out, options, bundle=bundle_dir, client=client, progress=False, product_level=level,
                     overwrite=True)
    seconds = time.perf_counter() - started
    return round(result.source.width * result.source.height / seconds / 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=1, threads_per_worker=args.threads, processes=False,
                         dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        for bundle_dir in args.bundles:
            count = len(load_bundle(bundle_dir).card.bands)
            image, profile, names = read_scene(count)
            raster = Path(tmp) / f"mosaic-{count}.tif"
            if not raster.exists():
                with rasterio.open(raster, "w", **{**profile, "width": 1024, "height": 1024}) as dst:
                    dst.write(_mosaic(image, 1024))
                    dst.descriptions = names
            row = model_throughput(bundle_dir, image, args.batch, args.seconds, args.threads)
            row["predict_mpx_s"] = end_to_end(bundle_dir, raster, Path(tmp) / bundle_dir.name, client)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
