"""Peak memory and speed of `predict` with a two-date bundle (the input and its previous pass, read window by
window from both files) at 1x and 4x the area, beside the one-date default on the same input.

The two-date bundle is the trials config's `forest_3x3_median_mad_2dates` fitted with scene 2 held out (in a temporary
folder); the inputs are mosaics of Slovenia scene 2 (target) and scene 3 (previous pass), reflected to size. Each
size runs in a fresh process (peak RSS = its ru_maxrss): tiles 256, overlap 32, one in-process Dask worker with 2
threads, ONNX Runtime; the mosaics are written by the parent process beforehand.

    python benchmarks/multidate_memory.py [--sizes 1024 2048]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "s2-l1c-slovenia"
TRIALS = REPO / "training" / "configs" / "landcover-s2l1c-slovenia-trials.toml"
CANDIDATE = "forest_3x3_median_mad_2dates"


def _mosaic(image: np.ndarray, size: int) -> np.ndarray:
    flipped = np.concatenate([image, image[:, ::-1]], axis=1)
    flipped = np.concatenate([flipped, flipped[:, :, ::-1]], axis=2)
    reps = (1, -(-size // flipped.shape[1]), -(-size // flipped.shape[2]))
    return np.tile(flipped, reps)[:, :size, :size].copy()


def _write_mosaic(scene: int, size: int, path: Path) -> Path:
    with rasterio.open(DATA / f"reference_scene_{scene}.tif") as src:
        image, profile, names = src.read(), src.profile, src.descriptions
    with rasterio.open(path, "w", **{**profile, "width": size, "height": size}) as dst:
        dst.write(_mosaic(image, size))
        dst.descriptions = names
    return path


def _child(size: int, bundle: str, folder: Path, two_dates: bool) -> None:
    from distributed import Client, LocalCluster

    from geovigie.inference import PredictOptions, predict

    target = folder / f"target-{size}.tif"
    previous = folder / f"previous-{size}.tif" if two_dates else None
    options = PredictOptions(tile_size=256, overlap=32, batch_size=4, device="cpu", runtime="onnx")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0",
                      worker_dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        started = time.perf_counter()
        predict(target, folder / f"out-{size}-{two_dates}", options, bundle=bundle or None, client=client,
                progress=False, product_level="L1C", previous=previous)
        seconds = time.perf_counter() - started
    print(json.dumps({"size": size, "dates": 2 if two_dates else 1, "seconds": round(seconds, 1),
                      "mpx_s": round(size * size / seconds / 1e6, 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}), flush=True)


def _bundle(folder: Path) -> Path:
    from geovigie.training import load_config, run_experiment

    config = load_config(TRIALS)
    config.candidates = [c for c in config.candidates if c.name == CANDIDATE]
    config.split.holdout = "scene-2"
    run_experiment(config, folder / "run", device="cpu", progress=False, bundle_dir=folder / "bundle")
    return folder / "bundle"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[1024, 2048])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size, bundle, folder, dates = args.child
        _child(int(size), bundle, Path(folder), dates == "2")
        return
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _bundle(Path(tmp))
        for size in args.sizes:  # written here: the children's peak memory is the prediction's alone
            _write_mosaic(2, size, Path(tmp) / f"target-{size}.tif")
            _write_mosaic(3, size, Path(tmp) / f"previous-{size}.tif")
            for dates, which in ((2, str(bundle)), (1, "")):  # "": the default bundle (one date)
                subprocess.run([sys.executable, __file__, "--child", str(size), which, tmp, str(dates)], check=True)


if __name__ == "__main__":
    main()
