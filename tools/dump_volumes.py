"""Site volumes on the shipped IGN LiDAR HD tiles: the demo's sites and each 50 × 50 m tile taken as one site.

    .venv/bin/python tools/dump_volumes.py [SCRATCH_DIR]

Prints, per site and per tile, the volume, its uncertainty, the measured share and any note: the figures quoted
when the volume method changes (run it before and after).
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import rasterio
from shapely.geometry import box

from geovigie.diagnostics import extract_sites, site_volumes
from geovigie.workflows import lidar_models

DATA = Path(__file__).resolve().parent.parent / "data"
COLUMNS = ("detection_id", "area_m2", "volume_m3", "volume_uncertainty_m3", "valid_fraction", "height_max_m",
           "volume_note")


def main(scratch: Path) -> None:
    dsm, dtm, standin = lidar_models(DATA, scratch)
    sites = extract_sites(standin, threshold=0.2, pass_date=date(2024, 5, 1), candidate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measured = site_volumes(sites, dsm, dtm)
    pd.set_option("display.width", 200)
    print(measured[[c for c in COLUMNS if c in measured.columns]].round(3).to_string())
    print(f"demo sites: {len(measured)}, null volumes: {int(measured['volume_m3'].isna().sum())}, "
          f"total {measured['volume_m3'].sum():.1f} m³")
    for path in sorted((DATA / "lidarhd-montpellier-ign" / "DSM").glob("*.tif")):
        terrain = path.parent.parent / "DTM" / path.name
        with rasterio.open(path) as surface, rasterio.open(terrain) as ground:
            gaps = int(((surface.read(1) == surface.nodata) | (ground.read(1) == ground.nodata)).sum())
            tile = gpd.GeoDataFrame({"detection_id": [path.name[10:22]]}, geometry=[box(*surface.bounds)],
                                    crs=surface.crs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row = site_volumes(tile, path, terrain).iloc[0]
        extra = {c: round(float(row[c]), 3) for c in ("volume_uncertainty_m3", "valid_fraction") if c in row}
        print(f"tile {path.name[10:22]}: {gaps} nodata px, volume {row['volume_m3']:.1f} m³ {extra} "
              f"{row['volume_note'] or ''}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="dump-volumes-")))
