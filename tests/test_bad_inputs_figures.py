"""Bad input to the diagnostics (`geovigie diagnose ...`, `geovigie report`, `geovigie catalog add`): one `error:`
line, exit code 2, no traceback, nothing left behind under the data directory.

Every input is made here from the shipped data: IGN communes written as a shapefile without its .prj, the odeon
class maps stacked into two bands, the Münster Landsat scene given without its date or unit, zones with null,
empty or out-of-range geometries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Polygon, box

from tests._support.figures import AFTER, BEFORE, DSM, EXTRA, LST, URBAN, assert_fails_cleanly
from tests.conftest import GERS_DIR


def _gers_communes() -> gpd.GeoDataFrame:
    return gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson")


def _make_inputs(folder: Path) -> None:
    communes = _gers_communes()
    assert communes.crs.to_epsg() == 2154
    communes.to_file(folder / "communes_noprj.shp")
    (folder / "communes_noprj.prj").unlink()  # a French shapefile without its .prj: Lambert-93 coordinates
    base = communes[["INSEE_COM", "NOM_COM", "geometry"]].head(3).copy()
    nulls = base.copy()
    nulls.loc[1, "geometry"] = None
    nulls.to_file(folder / "null_geometry.geojson")
    empty = base.copy()
    empty.loc[2, "geometry"] = Polygon()
    empty.to_file(folder / "empty_geometry.geojson")
    huge = gpd.GeoDataFrame({"INSEE_COM": ["x"], "NOM_COM": ["huge"]}, geometry=[box(1e9, 1e9, 2e9, 2e9)],
                            crs="EPSG:4326")
    huge.to_file(folder / "huge_coordinates.geojson")
    with rasterio.open(BEFORE) as src:
        profile, data = src.profile, src.read(1)
    profile.update(count=2, driver="GTiff")
    with rasterio.open(folder / "two_bands.tif", "w", **profile) as dst:
        dst.write(np.stack([data, data]))
    (folder / "reference_text.csv").write_text("zone_id,consumption_ha_2011_2021\n6275584,about twelve\n")
    (folder / "urban.tif").write_bytes(LST.read_bytes())
    named = gpd.GeoDataFrame({"nom": ["x"]}, geometry=[box(770500, 6277500, 770510, 6277510)], crs="EPSG:2154")
    named.to_file(folder / "no_name_column.geojson")
    far = gpd.GeoDataFrame({"id": ["far"]}, geometry=[box(8.0, 40.0, 8.1, 40.1)], crs="EPSG:4326")
    far.to_file(folder / "urban_far_away.geojson")
    (folder / "text.tif").write_text("not a raster\n")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("figures-inputs")
    _make_inputs(folder)
    return folder


def _zan(zones: str, *extra: str) -> tuple[str, ...]:
    return ("diagnose", "zan", "--before", str(BEFORE), "--after", str(AFTER), "--start", "2016-07-01",
            "--end", "2019-07-01", "--zones", zones, "--place", "t", *extra)


def _heat(scene: str, *extra: str) -> tuple[str, ...]:
    return ("diagnose", "heat", scene, "--place", "m", *extra)


def _dumps(*extra: str) -> tuple[str, ...]:
    return ("diagnose", "dumps", str(DSM), "--watch", "w", "--date", "2024-05-01", *extra)


def _publish(kind: str) -> Callable[[Path], None]:
    """Publish a class layer or a temperature layer as `not-ndvi` in the work folder's results store."""

    def setup(work: Path) -> None:
        from geovigie.settings import Settings
        from geovigie.tiles import LayerSpec, Provenance, publish_layer, results_store_for

        settings = Settings(data_dir=work / "gv", stac_backend="static")
        source = BEFORE if kind == "classes" else _celsius(work)
        spec = LayerSpec("not-ndvi", "not an NDVI", "continuous", rescale=(0.0, 1.0))
        publish_layer(results_store_for(settings), source, spec, Provenance(inputs=[str(source)], lineage="test"))

    return setup


def _celsius(work: Path) -> Path:
    target = work / "lst_celsius.tif"
    with rasterio.open(LST) as src:
        profile, data = src.profile, src.read(1)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data - 273.15, 1)
        dst.update_tags(UNIT="celsius")
    return target


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    words: tuple[str, ...]
    setup: Callable[[Path], None] | None = None


CASES = {
    # zones
    "zones-shapefile-without-prj": Case(_zan("{in}/communes_noprj.shp"), ("communes_noprj.shp", "--zones-crs")),
    "zones-crs-not-a-crs": Case(_zan("{in}/communes_noprj.shp", "--zones-crs", "EPSG:99999"),
                                ("--zones-crs", "EPSG:99999")),
    "zones-crs-contradicts-the-file": Case(_zan(str(GERS_DIR / "COMMUNE_32xxx.geojson"), "--zones-crs", "EPSG:4326"),
                                           ("EPSG:2154", "--zones-crs")),
    "zones-lambert93-declared-as-degrees": Case(_zan("{in}/communes_noprj.shp", "--zones-crs", "EPSG:4326"),
                                                ("out of longitude/latitude range",)),
    "aoi-shapefile-without-prj": Case(("catalog", "search", "--aoi", "{in}/communes_noprj.shp"),
                                      ("communes_noprj.shp", "--zones-crs")),
    "dumps-zones-without-prj": Case(_dumps("--zones", "{in}/communes_noprj.shp"), ("communes_noprj.shp",
                                                                                  "--zones-crs")),
    "heat-zones-without-prj": Case(_heat(str(LST), "--urban", str(URBAN), "--zones", "{in}/communes_noprj.shp",
                                         "--datetime", "2024-08-13", "--unit", "kelvin"), ("--zones-crs",)),
    "zones-null-geometry": Case(_zan("{in}/null_geometry.geojson"), ("null or empty geometry",)),
    "zones-empty-geometry": Case(_zan("{in}/empty_geometry.geojson"), ("null or empty geometry",)),
    "zones-huge-coordinates": Case(_zan("{in}/huge_coordinates.geojson"), ("huge_coordinates.geojson", "range")),
    # ZAN
    "zan-two-band-class-map": Case(("diagnose", "zan", "--before", "{in}/two_bands.tif", "--after",
                                    "{in}/two_bands.tif", "--start", "2016-07-01", "--end", "2019-07-01",
                                    "--zones", str(GERS_DIR / "COMMUNE_32xxx.geojson")), ("two_bands.tif", "2 bands")),
    "zan-negative-mmu": Case(_zan(str(GERS_DIR / "COMMUNE_32xxx.geojson"), "--mmu-building", "-5"),
                             ("--mmu-building", "-5")),
    "zan-nan-mmu": Case(_zan(str(GERS_DIR / "COMMUNE_32xxx.geojson"), "--mmu-other", "nan"), ("--mmu-other",)),
    "zan-reference-with-text": Case(_zan(str(GERS_DIR / "COMMUNE_32xxx.geojson"), "--reference",
                                         "{in}/reference_text.csv"), ("reference_text.csv", "not a number")),
    "zan-min-coverage-above-one": Case(_zan(str(GERS_DIR / "COMMUNE_32xxx.geojson"), "--min-coverage", "1.5"),
                                       ("--min-coverage",)),
    # heat
    "heat-geotiff-without-datetime": Case(_heat(str(LST), "--urban", str(URBAN)), ("--datetime",)),
    "heat-geotiff-datetime-interval": Case(_heat(str(LST), "--urban", str(URBAN), "--datetime",
                                                 "2024-08-01/2024-08-31"), ("--datetime", "interval")),
    "heat-geotiff-without-unit": Case(_heat(str(LST), "--urban", str(URBAN), "--datetime", "2024-08-13"),
                                      ("unit", "--unit")),
    "heat-unit-fahrenheit": Case(_heat(str(LST), "--urban", str(URBAN), "--datetime", "2024-08-13", "--unit",
                                       "fahrenheit"), ("--unit",)),
    "heat-urban-missing": Case(_heat(str(LST), "--urban", "{in}/nothing.geojson", "--datetime", "2024-08-13",
                                     "--unit", "kelvin"), ("nothing.geojson", "not found")),
    "heat-urban-not-vector": Case(_heat(str(LST), "--urban", "{in}/urban.tif", "--datetime", "2024-08-13",
                                        "--unit", "kelvin"), ("urban.tif", "not a readable vector file")),
    "heat-rural-classes-letters": Case(_heat(str(LST), "--urban", str(URBAN), "--datetime", "2024-08-13",
                                             "--unit", "kelvin", "--rural-mask",
                                             str(EXTRA / "classification_rf_derived.tif"), "--rural-classes", "a,b"),
                                       ("--rural-classes", "a,b")),
    "heat-urban-far-away": Case(_heat(str(LST), "--urban", "{in}/urban_far_away.geojson", "--datetime",
                                      "2024-08-13", "--unit", "kelvin"), ("does not overlap",)),
    "heat-text-as-raster": Case(_heat("{in}/text.tif", "--urban", str(URBAN), "--datetime", "2024-08-13"),
                                ("text.tif", "not a readable raster")),
    # vegetation on what is not an NDVI
    "vegetation-on-a-class-layer": Case(("diagnose", "vegetation", "not-ndvi", "--zones",
                                         str(GERS_DIR / "COMMUNE_32xxx.geojson")), ("uint8",),
                                        setup=_publish("classes")),
    "vegetation-on-a-temperature-layer": Case(("diagnose", "vegetation", "not-ndvi", "--zones",
                                               str(GERS_DIR / "COMMUNE_32xxx.geojson")), ("celsius",),
                                              setup=_publish("celsius")),
    # dumps
    "dumps-negative-min-height": Case(_dumps("--min-height", "-0.5"), ("--min-height",)),
    "dumps-nan-min-height": Case(_dumps("--min-height", "nan"), ("--min-height",)),
    "dumps-sensitive-missing": Case(_dumps("--sensitive", "natura2000={in}/nothing.gpkg"), ("nothing.gpkg",)),
    "dumps-sensitive-without-name": Case(_dumps("--sensitive", "water={in}/no_name_column.geojson"), ("'name'",)),
    # catalog add
    "catalog-add-text-file": Case(("catalog", "add", "{in}/text.tif", "--collection", "c", "--datetime",
                                   "2024-08-13"), ("text.tif", "not a readable raster")),
    "catalog-add-bad-datetime": Case(("catalog", "add", str(LST), "--collection", "c", "--datetime", "yesterday"),
                                     ("yesterday", "ISO 8601")),
    "catalog-add-bad-collection": Case(("catalog", "add", str(LST), "--collection", "../up", "--datetime",
                                        "2024-08-13"), ("../up",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_error_line(name: str, inputs: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    # nothing written: no half layer folder, no raster left under results/
    assert_fails_cleanly(case.args, case.words, inputs, tmp_path, monkeypatch, case.setup)


def test_the_catalogue_covers_the_figures_cases() -> None:
    assert len(CASES) >= 25
