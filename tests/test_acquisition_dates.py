"""Layers and inputs dated by their imagery (or their edition), not by the day they were published (issue 20).

On shipped data: the Slovenia scenes (acquisition times from eo-learn's TestEOPatch, see data/README.md), NDVI and
vegetation per commune of the Gers scene, the Admin Express base map, the heat-island method of a Münster scene.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio

from geovigie.catalog.samples import SLOVENIA
from geovigie.catalog.stac import SearchQuery, StaticItemStore
from geovigie.errors import DiagnosticsWarning
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION, results_store_for, validate_offline
from tests.conftest import GERS_DIR

DATA = Path(__file__).resolve().parents[1] / "data"
GERS_WHEN = datetime(2018, 10, 23, 10, 51, 7, 455000, tzinfo=UTC)


def _items(catalog_dir: Path, collection: str) -> list[pystac.Item]:
    return list(StaticItemStore(catalog_dir).search(SearchQuery(collections=(collection,), max_items=None)))


def test_slovenia_scenes_have_their_own_dates_and_odc_stac_stacks_them(catalog_dir: Path) -> None:
    import odc.stac

    items = {item.id: item for item in _items(catalog_dir, SLOVENIA)}
    shipped = json.loads((DATA / "s2-l1c-slovenia" / "acquisitions.json").read_text())
    for scene in ("reference_scene_0", "reference_scene_1", "reference_scene_2", "reference_scene_3"):
        item = items[f"slovenia-{scene.replace('_', '-')}"]
        assert item.datetime == datetime.fromisoformat(shipped[scene]["datetime"].replace("Z", "+00:00"))
        assert "start_datetime" not in item.properties and "geovigie:note" not in item.properties
        validate_offline(item)
    assert len({item.datetime for item in items.values()}) == 4
    # four dates of one place: four time steps, in time order, each the scene of that date
    loaded = odc.stac.load(list(items.values()), bands=["B04"], chunks={})
    assert loaded.sizes["time"] == 4
    times = [np.datetime64(item.datetime.replace(tzinfo=None), "us") for item in items.values()]
    assert list(loaded.time.values) == sorted(times)
    first = min(items.values(), key=lambda item: item.datetime)
    with rasterio.open(first.assets["data"].get_absolute_href()) as src:
        np.testing.assert_array_equal(loaded["B04"].isel(time=0).values, src.read(4))


def test_vegetation_per_commune_is_dated_by_its_ndvi_scene(catalog_dir: Path, tmp_path: Path) -> None:
    from geovigie.workflows import ndvi, vegetation_by_zone

    settings = Settings(data_dir=tmp_path / "gv", stac_backend="static")
    (gers,) = _items(catalog_dir, "s2-l2a-theia-gers")
    layer = ndvi(gers, settings)
    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson").rename(
        columns={"INSEE_COM": "zone_id", "NOM_COM": "zone_name"})
    with pytest.warns(DiagnosticsWarning, match="partial"):  # the 8 km crop sees 3 of the 19 communes whole
        result = vegetation_by_zone(layer.id, settings, zones=communes, place="gers")
    item = results_store_for(settings).get(RESULTS_COLLECTION, result.layers[0].id)
    assert item.datetime == GERS_WHEN  # the scene's, not the publication's
    assert datetime.fromisoformat(item.properties["created"].replace("Z", "+00:00")).year >= 2025
    assert item.properties.get("eo:cloud_cover") == gers.properties["eo:cloud_cover"]  # inherited through the NDVI
    validate_offline(item)


def test_base_map_is_dated_by_its_edition(tmp_path: Path) -> None:
    from geovigie.demo import ADMIN_EXPRESS_EDITION
    from geovigie.workflows import boundaries

    settings = Settings(data_dir=tmp_path / "gv", stac_backend="static")
    source = DATA / "admin-express" / "departements_simplified_1km.geojson"
    dated = boundaries(settings, source, layer_id="base-departements", title="Départements", code_field="code",
                       name_field="nom", edition=ADMIN_EXPRESS_EDITION)
    item = results_store_for(settings).get(RESULTS_COLLECTION, dated.id)
    assert item.datetime is None
    assert (item.common_metadata.start_datetime, item.common_metadata.end_datetime) == ADMIN_EXPRESS_EDITION
    validate_offline(item)
    undated = boundaries(settings, GERS_DIR / "COMMUNE_32xxx.geojson", layer_id="base-communes", title="Communes",
                         code_field="INSEE_COM", name_field="NOM_COM")
    item = results_store_for(settings).get(RESULTS_COLLECTION, undated.id)
    assert item.datetime is not None and "publication" in item.properties["geovigie:note"]  # said, not hidden


def test_heat_island_method_names_the_scene_and_its_date(catalog_dir: Path, tmp_path: Path) -> None:
    import warnings

    from geovigie.workflows import heat_islands

    settings = Settings(data_dir=tmp_path / "gv", stac_backend="static")
    summer = next(i for i in _items(catalog_dir, "landsat-lst-muenster") if "20240813" in i.id)
    urban = gpd.read_file(DATA / "landsat-lst-muenster-extra" / "muenster_urban_core.geojson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partial zones on the grid's edge
        result = heat_islands(summer, settings, urban=urban, place="ms", cell_m=2000.0)
    method = result.summary.method
    assert f"scene {summer.id} (2024-08-13)" in method and "lst_celsius" not in method
