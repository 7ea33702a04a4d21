"""End-to-end tiled inference throughput and peak memory vs the bare model forward pass.

Builds a >= 4096² px, 13-band raster by tiling the shipped Slovenia L1C scene, predicts it with the
shipped bundle through the Dask pipeline (read, normalise, forward, blend, COG writing), then times
the model alone on random tensors of the same batch shape, in the same run, with the same threads.

    python benchmarks/inference_throughput.py [--size 2048 4096] [--tile 256] [--overlap 64] [--batch 8]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import rasterio
import torch

from geovigie.inference import PredictOptions, dask_client, predict
from geovigie.models import inference_context, load_bundle, resolve_device
from geovigie.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SCENE = REPO / "data" / "s2-l1c-slovenia" / "reference_scene_2.tif"


def make_mosaic(target: Path, size: int) -> Path:
    """Repeat the real scene into a size × size (at least) tiled GeoTIFF, written block row by block row."""
    with rasterio.open(SCENE) as src:
        scene, profile, descriptions = src.read(), src.profile, src.descriptions
    reps_y, reps_x = math.ceil(size / scene.shape[1]), math.ceil(size / scene.shape[2])
    height, width = reps_y * scene.shape[1], reps_x * scene.shape[2]
    profile.update(width=width, height=height, tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   predictor=3, BIGTIFF="YES")
    row_band = np.tile(scene, (1, 1, reps_x))
    with rasterio.open(target, "w", **profile) as dst:
        dst.descriptions = descriptions
        dst.update_tags(PROCESSING_LEVEL="L1C")
        for r in range(reps_y):
            dst.write(row_band, window=rasterio.windows.Window(0, r * scene.shape[1], width, scene.shape[1]))
    return target


class PeakRSS:
    """Samples the resident memory of this process and its children (Dask workers) every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def forward_throughput(batch: int, tile: int, threads: int, seconds: float = 20.0) -> float:
    """Tile megapixels per second of the bare network on random input (no I/O, no blending)."""
    torch.set_num_threads(threads)
    bundle = load_bundle()
    device = resolve_device("auto")
    net = bundle.load_network(device)
    x = torch.randn(batch, len(bundle.card.bands), tile, tile, device=device)
    with inference_context(device, amp=True):
        net(x)
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            net(x)
            n += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n * batch * tile * tile / 1e6 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs="+", default=[2048, 4096],
                        help="Raster sizes (px) to run in turn, to show memory does not grow with size.")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--processes", action="store_true", help="Dask workers as processes, not threads.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    reports = [run_one(args, size) for size in args.size]
    print(json.dumps(reports, indent=2))
    (args.out / "last_report.json").write_text(json.dumps(reports, indent=2))


def run_one(args: argparse.Namespace, size: int) -> dict[str, object]:
    """Predict one mosaic of `size` px and time the bare forward pass right after."""
    raster = args.out / f"mosaic_{size}.tif"
    if not raster.exists():
        make_mosaic(raster, size)
    with rasterio.open(raster) as src:
        width, height = src.width, src.height
    settings = Settings(data_dir=args.out, tile_size=args.tile, overlap=args.overlap, batch_size=args.batch,
                        dask_workers=args.workers, dask_threads_per_worker=args.threads,
                        dask_processes=args.processes)
    with dask_client(settings) as client:
        client.run(lambda: None)  # workers started before the clock runs
        baseline = psutil.Process().memory_info().rss + sum(
            c.memory_info().rss for c in psutil.Process().children(recursive=True))
        with PeakRSS() as memory:
            result = predict(raster, args.out / "pred", PredictOptions.from_settings(settings), client=client,
                             overwrite=True)
    stride = args.tile - args.overlap
    tiles_px = result.tiles * args.tile * args.tile / 1e6
    pipeline_tile_mpx = tiles_px / result.seconds
    torch_threads = max(1, (os.cpu_count() or 1) // (args.workers * args.threads))
    forward_mpx = forward_throughput(args.batch, args.tile, threads=torch_threads * args.workers * args.threads)
    report = {
        "raster": f"{width} x {height} px, 13 bands float32 ({width * height / 1e6:.1f} Mpx)",
        "tiling": f"tile {args.tile}, overlap {args.overlap} (stride {stride}), batch {args.batch}, "
                  f"{result.tiles} tiles",
        "dask": f"LocalCluster {args.workers} worker(s) x {args.threads} threads "
                f"({'processes' if args.processes else 'threads of one process'})",
        "device": str(resolve_device("auto")),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "end_to_end_seconds": round(result.seconds, 1),
        "of_which_tiles_read_predicted_blended_s": round(result.seconds_predicting, 1),
        "of_which_cog_overviews_s": round(result.seconds - result.seconds_predicting, 1),
        "end_to_end_raster_mpx_per_s": round(width * height / 1e6 / result.seconds, 3),
        "end_to_end_tile_mpx_per_s": round(pipeline_tile_mpx, 3),
        "model_forward_tile_mpx_per_s": round(forward_mpx, 3),
        "efficiency_tile_mpx_ratio": round(pipeline_tile_mpx / forward_mpx, 3),
        "rss_mib_before_predict": round(baseline / 2**20),
        "peak_rss_mib_driver_plus_workers": round(memory.peak / 2**20),
        "gdal_cachemax": os.environ.get("GDAL_CACHEMAX", "GDAL default (5% of RAM)"),
        "whole_output_float32_logits_mib_if_allocated": round(width * height * 5 * 4 / 2**20),
    }
    return report


if __name__ == "__main__":
    main()
