"""An up-to-date rerun of `predict`: the input file and the weights hashed again (as before `geovigie.digests`)
against their digests remembered in the cache folder.

Usage: python benchmarks/rerun_digest.py [--tile 10] [--runs 5]
Writes the shipped 100 × 101 Slovenia scene tiled `--tile` × `--tile` times as uncompressed float64 (105 MB at 10)
into a temporary folder, predicts it once, then times each rerun (outputs up to date) with the process memo cleared,
with and without the cache folder's entries. Prints the median, min and max seconds of each.
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

from geovigie import digests
from geovigie.inference import PredictOptions, predict

SCENE = Path(__file__).resolve().parents[1] / "data/s2-l1c-slovenia/reference_scene_2.tif"


def _big_scene(out: Path, tile: int) -> Path:
    with rasterio.open(SCENE) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    big = np.tile(data, (1, tile, tile)).astype("float64")
    profile.update(width=big.shape[2], height=big.shape[1], dtype="float64", compress=None, tiled=False)
    profile.pop("blockxsize", None)
    profile.pop("blockysize", None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(big)
        dst.descriptions = names
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tile", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scene = _big_scene(folder / "big.tif", args.tile)
        options = PredictOptions(device="cpu", digest_cache=folder / "cache")
        predict(scene, folder / "out", options, progress=False, product_level="L1C")
        seconds: dict[str, list[float]] = {"hashed again": [], "remembered": []}
        for _ in range(args.runs):
            for mode, values in seconds.items():
                digests._MEMO.clear()  # as in a new process
                if mode == "hashed again":
                    shutil.rmtree(folder / "cache" / "sha256", ignore_errors=True)
                start = time.perf_counter()
                assert predict(scene, folder / "out", options, progress=False, product_level="L1C").skipped
                values.append(time.perf_counter() - start)
        size = scene.stat().st_size / 1e6
        for mode, values in seconds.items():
            print(f"{size:.0f} MB input, {mode}: median {statistics.median(values):.3f} s "
                  f"(min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
