"""Peak memory and time of the change detectors block by block vs the whole-array path, on large real-based passes.

Usage: OMP_NUM_THREADS=1 python benchmarks/change_blocks.py [--size 4000] [--whole-size 2000] [--block 1024]
       [--only appearance|change] [--gdal-cache-mb 64]

Builds, in a temporary folder, two pairs of `--size` × `--size` px passes from the shipped rasters mirrored and
tiled (no new data): the Slovenia Sentinel-2 scenes 3 -> 2 (blue, green, red, NIR, SWIR, float32), the later one
with a SYNTHETIC 10 × 10 px bare patch per 100 × 101 px tile; and the merged Montpellier LiDAR HD surface, the
later pass with a SYNTHETIC 405 m³ mound per 300 × 200 px tile and 5 cm of SYNTHETIC noise. Each case runs in a
fresh process that prints its own peak RSS (`ru_maxrss`) and wall time: blocks of `--block` px, and the
whole-array path (one block covering the raster) on `--whole-size` (its memory grows with the raster: at
`--size` it may not fit). Prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import rasterio
from rasterio.merge import merge
from rasterio.windows import Window

DATA = Path(__file__).resolve().parents[1] / "data"
S2 = DATA / "s2-l1c-slovenia"
BANDS = ("B02", "B03", "B04", "B08", "B11")
SOIL = np.array([0.11, 0.12, 0.14, 0.21, 0.30])  # B02 B03 B04 B08 B11, TOA: bare soil


def _mirrored(tile: np.ndarray) -> np.ndarray:
    """The tile and its mirror images, 2 × 2: tiled, no edge jumps."""
    top = np.concatenate([tile, tile[..., ::-1]], axis=-1)
    return np.concatenate([top, top[..., ::-1, :]], axis=-2)


def _write_tiled(path: Path, tile: np.ndarray, size: int, profile: dict, names: tuple[str, ...] | None) -> Path:
    """`tile` (bands × h × w) mirrored and repeated to size × size px, written block row by block row."""
    unit = _mirrored(tile)
    profile = {**profile, "driver": "GTiff", "width": size, "height": size, "count": unit.shape[0],
               "dtype": "float32", "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, 1024):
            rows = min(1024, size - row)
            r = (np.arange(row, row + rows) % unit.shape[1])
            strip = unit[:, r][:, :, np.arange(size) % unit.shape[2]]
            dst.write(strip.astype(np.float32), window=Window(0, row, size, rows))
        if names:
            dst.descriptions = names
    return path


def build(folder: Path, size: int) -> dict[str, Path]:
    with rasterio.open(S2 / "reference_scene_3.tif") as src:
        index = [src.descriptions.index(b) + 1 for b in BANDS]
        before, profile = src.read(index), src.profile
    with rasterio.open(S2 / "reference_scene_2.tif") as src:
        after = src.read(index)
    rng = np.random.default_rng(0)
    after[:, 40:50, 60:70] = SOIL[:, None, None] * np.clip(1 + 0.35 * rng.standard_normal((10, 10)), 0.3, 2.0)
    surface, transform = merge(sorted((DATA / "lidarhd-montpellier-ign" / "DSM").glob("*.tif")))
    dsm = np.where(surface[0] > -9000, surface[0], np.nan).astype(np.float64)
    rows, cols = np.indices(dsm.shape)
    radius = np.hypot((cols + 0.5 - 150) * 0.5, (rows + 0.5 - 100) * 0.5)
    mound = np.clip((8.0 - radius) / 3.0, 0.0, 1.0) * 3.0
    dsm_after = dsm + mound + rng.normal(0.0, 0.05, dsm.shape)
    dsm_profile = {"crs": "EPSG:2154", "transform": transform, "nodata": np.nan}
    return {"s2_before": _write_tiled(folder / "s2_before.tif", before, size, profile, BANDS),
            "s2_after": _write_tiled(folder / "s2_after.tif", after, size, profile, BANDS),
            "dsm_before": _write_tiled(folder / "dsm_before.tif", dsm[None], size, dsm_profile, None),
            "dsm_after": _write_tiled(folder / "dsm_after.tif", dsm_after[None], size, dsm_profile, None)}


def run_one(kind: str, before: str, after: str, block: int) -> None:
    """One detection in this process; prints seconds, peak RSS and what was found as JSON."""
    import warnings

    from geovigie.diagnostics import appearance_change_candidates, height_change_candidates

    warnings.simplefilter("ignore")
    started = time.perf_counter()
    if kind == "appearance":
        found = appearance_change_candidates(before, after, pass_date=date(2015, 9, 9), block_px=block).candidates
        extra = float(found["area_m2"].sum())
    else:
        found = height_change_candidates(before, after, pass_date=date(2024, 5, 1), block_px=block).candidates
        extra = float(found["volume_m3"].sum())
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "candidates": len(found), "total": extra}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--whole-size", type=int, default=2000)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--only", choices=("appearance", "change"), help="run one command only")
    parser.add_argument("--gdal-cache-mb", type=int, help="GDAL_CACHEMAX of the runs (default GDAL's: 5 %% of RAM)")
    parser.add_argument("--run", nargs=4, metavar=("KIND", "BEFORE", "AFTER", "BLOCK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(args.run[0], args.run[1], args.run[2], int(args.run[3]))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="geovigie-change-bench-") as tmp:
        for size in sorted({args.whole_size, args.size}):
            files = build(Path(tmp) / str(size), size) if (Path(tmp) / str(size)).mkdir() is None else {}
            for kind, prefix in (("appearance", "s2"), ("change", "dsm")):
                if args.only not in (None, kind):
                    continue
                paths = (str(files[f"{prefix}_before"]), str(files[f"{prefix}_after"]))
                for label, block in ((f"blocks {args.block}", args.block), ("whole array", size)):
                    if label == "whole array" and size != args.whole_size:
                        continue
                    env = {**os.environ, **({"GDAL_CACHEMAX": str(args.gdal_cache_mb)} if args.gdal_cache_mb else {})}
                    out = subprocess.run([sys.executable, __file__, "--run", kind, *paths, str(block)],
                                         capture_output=True, text=True, check=True, env=env)
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    rows.append((f"dumps-{kind}", f"{size} x {size}", label, result))
    print(f"{'command':<18} {'raster px':<13} {'path':<13} {'seconds':>8} {'peak RSS MB':>12} {'candidates':>10}"
          f" {'area m2 / volume m3':>20}")
    for command, size_text, label, r in rows:
        print(f"{command:<18} {size_text:<13} {label:<13} {r['seconds']:>8.1f} {r['peak_mb']:>12.0f} "
              f"{r['candidates']:>10} {r['total']:>20.1f}")


if __name__ == "__main__":
    main()
