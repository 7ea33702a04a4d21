"""The heat-island workflow on the real Münster summer scene: layers published, per-zone figures consistent."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from geovigie.catalog.samples import MUENSTER
from geovigie.catalog.stac import CatalogClient
from geovigie.errors import DiagnosticsWarning
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex
from geovigie.workflows import heat_islands
from tests.conftest import DATA

EXTRA = DATA / "landsat-lst-muenster-extra"


def test_heat_islands_publishes_intensity_hot_spots_and_zones(catalog_dir: Path, tmp_path: Path) -> None:
    summer = next(i for i in CatalogClient.open(catalog_dir).search(collections=[MUENSTER]).items()
                  if "20240813" in i.id)
    settings = Settings(data_dir=tmp_path / "gv")
    urban = gpd.read_file(EXTRA / "muenster_urban_core.geojson")
    with pytest.warns(DiagnosticsWarning, match="partial"):  # grid cells cut by the scene's edge
        result = heat_islands(summer, settings, urban=urban, place="muenster",
                              rural_mask=EXTRA / "classification_rf_derived.tif", rural_classes=[3, 4])
    partial = result.zones[result.zones["status"] == "partial"]
    assert len(partial) >= 1 and partial["mean"].isna().all() and (partial["covered_fraction"] < 0.5).all()
    index = LayerIndex(settings.results_dir)
    assert {"uhi-muenster-20240813", "uhi-hotspots-muenster-20240813", "uhi-zones-muenster-20240813"} <= set(
        index.ids())
    assert "median land surface temperature" in index.get("uhi-muenster-20240813").description
    # per-zone means agree with a plain numpy mean over a fully covered cell
    with rasterio.open(index.get("uhi-muenster-20240813").path) as src:
        intensity = src.read(1, masked=True)
        cell = result.zones.dropna(subset=["mean"]).sort_values("mean").iloc[-1]
        window = src.window(*cell.geometry.bounds)
        values = src.read(1, window=window, masked=True)
    assert cell["covered_fraction"] == pytest.approx(1.0) and cell["status"] == "covered"
    assert abs(float(values.mean()) - cell["mean"]) < 0.5  # cell edges fall inside 30 m pixels
    # the city centre is warmer than the average of all cells (an urban heat island exists on this scene)
    assert cell["mean"] > float(np.ma.median(intensity)) + 2
    assert result.summary.mean_intensity_c > 2
