"""Cost of publishing the n-th layer: the item store against rewriting the whole static catalog (the old way).

Usage: python benchmarks/publish_cost.py [--layers 100]
Prints the median seconds per publish for the first and the last ten layers, for both, measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
from affine import Affine

from geovigie.classes import ClassInfo
from geovigie.cog import write_array_cog
from geovigie.tiles import LayerSpec, Provenance, publish_layer

CLASSES = [ClassInfo(value=0, name="a", color="#0000ff"), ClassInfo(value=1, name="b", color="#00ff00")]


def _whole_catalog_rewrite(root: Path, count: int) -> list[float]:
    """The pattern the store replaced: load the catalog, add one item, normalise and save everything."""
    times = []
    catalog = pystac.Catalog(id="results", description="peer")
    collection = pystac.Collection(id="layers", description="peer", license="other",
                                   extent=pystac.Extent(pystac.SpatialExtent([[0, 0, 1, 1]]),
                                                        pystac.TemporalExtent([[datetime.now(UTC), None]])))
    catalog.add_child(collection)
    catalog.normalize_and_save(str(root), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    for index in range(count):
        started = time.perf_counter()
        loaded = pystac.Catalog.from_file(str(root / "catalog.json"))
        target = loaded.get_child("layers")
        target.add_item(pystac.Item(f"layer-{index}", {"type": "Point", "coordinates": [0, 0]}, [0, 0, 0, 0],
                                    datetime.now(UTC), {}))
        loaded.normalize_and_save(str(root), catalog_type=pystac.CatalogType.SELF_CONTAINED)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = np.zeros((1, 256, 256), np.uint8)
        data[:, :, 128:] = 1
        cog = write_array_cog(folder / "c.tif", data, profile={
            "driver": "GTiff", "crs": "EPSG:2154", "transform": Affine(10, 0, 470000, 0, -10, 6290000), "nodata": 255})
        store_times = []
        for index in range(args.layers):
            started = time.perf_counter()
            publish_layer(folder / "results", cog, LayerSpec(f"layer-{index}", f"Layer {index}", "classes",
                                                             classes=CLASSES), Provenance(inputs=[], lineage="bench"))
            store_times.append(time.perf_counter() - started)
        peer_times = _whole_catalog_rewrite(folder / "peer", args.layers)
    for name, times in (("item store (publish_layer)", store_times), ("whole-catalog rewrite", peer_times)):
        first, last = statistics.median(times[:10]), statistics.median(times[-10:])
        print(f"{name:28s} first 10: {first * 1000:7.1f} ms   last 10: {last * 1000:7.1f} ms   "
              f"ratio {last / first:5.2f}")


if __name__ == "__main__":
    main()
