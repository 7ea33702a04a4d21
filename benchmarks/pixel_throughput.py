"""Forest (pixel-classifier) bundle beside network bundles, in one process: model throughput on the same batch, and
`geovigie predict` end to end on the same raster.

Model: ONNX Runtime (`load_predictor(..., runtime="onnx")`) on a batch of 256² tiles cut from the real Slovenia scene
(reflected to size), normalised with each bundle's own card (its scene normalisation first, if any, not timed);
Mpx/s = pixels of the batch / seconds per call.
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
DEFAULT = [DEFAULT_BUNDLE, NETWORK_BUNDLE]  # the forest of `predict` beside the shipped U-Net


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
    predict(raster, out, options, bundle=bundle_dir, client=client, progress=False, product_level="L1C")
    started = time.perf_counter()
    result = predict(raster, out, options, bundle=bundle_dir, client=client, progress=False, product_level="L1C",
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
    with rasterio.open(SCENE) as src:
        image, profile = src.read().astype(np.float32), src.profile
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=1, threads_per_worker=args.threads, processes=False,
                         dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        raster = Path(tmp) / "mosaic.tif"
        big = _mosaic(image, 1024)
        with rasterio.open(raster, "w", **{**profile, "width": 1024, "height": 1024}) as dst:
            dst.write(big)
            dst.descriptions = tuple(rasterio.open(SCENE).descriptions)
        for bundle_dir in args.bundles:
            row = model_throughput(bundle_dir, image, args.batch, args.seconds, args.threads)
            row["predict_mpx_s"] = end_to_end(bundle_dir, raster, Path(tmp) / bundle_dir.name, client)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
