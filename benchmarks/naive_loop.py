"""The loop a user would write: per-window rasterio reads, the same network, tiles and threads, logits summed in
whole-raster arrays, one class GeoTIFF. The peer of `geovigie predict` in `inference_throughput.py`.

    python benchmarks/naive_loop.py RASTER OUT.tif [--tile 256] [--overlap 64] [--batch 8] [--threads 2]
        [--input-scale 0.0001]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from geovigie.models import NETWORK_BUNDLE, load_bundle


def naive_predict(raster: str, out: str, tile: int = 256, overlap: int = 64, batch: int = 8, threads: int = 2,
                  input_scale: float = 1.0) -> dict[str, float]:
    """Predict `raster` into a class GeoTIFF `out` the simple way; returns timings."""
    started = time.perf_counter()
    torch.set_num_threads(threads)
    bundle = load_bundle(NETWORK_BUNDLE)  # a PyTorch network (the default of predict is a pixel classifier)
    net = bundle.load_network("cpu")
    norm = bundle.card.normalisation
    mean = np.array(norm.mean, np.float32)[:, None, None]
    std = np.array(norm.std, np.float32)[:, None, None]
    with rasterio.open(raster) as src:
        height, width, profile = src.height, src.width, src.profile
        logits = np.zeros((bundle.card.num_classes, height, width), np.float32)
        stride = tile - overlap
        rows = list(range(0, max(height - tile, 0), stride)) + [max(height - tile, 0)]
        cols = list(range(0, max(width - tile, 0), stride)) + [max(width - tile, 0)]
        windows = [(r, c) for r in rows for c in cols]
        for i in range(0, len(windows), batch):
            chunk = windows[i : i + batch]
            x = np.stack([src.read(window=Window(c, r, tile, tile), out_dtype="float32") for r, c in chunk])
            x = (x * np.float32(input_scale * norm.scale) - mean) / std
            with torch.inference_mode():
                y = net(torch.from_numpy(x)).numpy()
            for (r, c), tile_logits in zip(chunk, y, strict=True):
                logits[:, r : r + tile, c : c + tile] += tile_logits
    classes = logits.argmax(axis=0).astype(np.uint8)
    profile.update(count=1, dtype="uint8", nodata=255, compress="deflate", tiled=True, blockxsize=256,
                   blockysize=256, predictor=1)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(classes, 1)
    return {"seconds": time.perf_counter() - started, "tiles": len(windows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raster")
    parser.add_argument("out")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--input-scale", type=float, default=1.0)
    args = parser.parse_args()
    print(naive_predict(args.raster, args.out, args.tile, args.overlap, args.batch, args.threads, args.input_scale))


if __name__ == "__main__":
    main()
