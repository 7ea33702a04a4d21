"""Figures that never lie, from the command line on shipped data: coverage status and null figures in the CSV, the
GeoJSON and the report; zones files without CRS; a GeoTIFF temperature with --datetime; `catalog add`; dump volumes
with --min-height and --sensitive."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from shapely.geometry import box

from tests._support.figures import AFTER, BEFORE, EXTRA, LIDAR, LST, URBAN, run_cli
from tests.conftest import GERS_DIR

RESULTS = Path("gv") / "results" / "geovigie-results"
PATCH_BOUNDS = (478208.0, 6275328.0, 478464.0, 6275584.0)  # the fully labelled odeon patch, 0.25 m pixels


def _zones(work: Path) -> Path:
    west, south, east, north = PATCH_BOUNDS
    zones = gpd.GeoDataFrame(
        {"zone_id": ["inside", "edge", "touch", "sliver", "far"],
         "zone_name": ["Inside", "Edge", "Touching", "Sliver", "Far away"]},
        geometry=[box(west + 40, south + 70, east - 60, north - 30),
                  box(east - 64, south + 70, east + 136, south + 170),  # 32 % on the patch
                  box(east, south + 70, east + 136, south + 170),  # shares the patch's edge only
                  box(east - 1e-4, south + 70, east + 136, south + 170),  # a 0.1 mm strip: 0.16 pixel
                  box(700000, 6600000, 701000, 6601000)], crs="EPSG:2154")
    path = work / "zones.geojson"
    zones.to_file(path)
    return path


def _zan(zones: Path, place: str) -> list[str]:
    return ["diagnose", "zan", "--before", str(BEFORE), "--after", str(AFTER), "--start", "2016-07-01",
            "--end", "2019-07-01", "--zones", str(zones), "--place", place]


def test_zones_outside_or_on_the_edge_get_a_status_and_null_figures_everywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zones = _zones(tmp_path)
    with pytest.warns(Warning, match="not covered"):
        code, out = run_cli(_zan(zones, "cov"), tmp_path, monkeypatch)
    assert code == 0, out
    assert "5 zones: 1 covered; 1 partial (observed share below 95%): edge; 3 not covered: touch, sliver, far" in out
    folder = tmp_path / RESULTS / "zan-zones-cov-2016-2019"
    csv = pd.read_csv(folder / "zones.csv", dtype={"zone_id": str}, keep_default_na=False).set_index("zone_id")
    assert csv["status"].to_dict() == {"inside": "covered", "edge": "partial", "touch": "not_covered",
                                       "sliver": "not_covered", "far": "not_covered"}
    for zone in ("edge", "touch", "sliver", "far"):  # empty cells, not 0 and not 1e-13
        assert csv.loc[zone, ["artificialised_ha", "artificialised_ha_no_mmu", "net_ha", "renaturalised_ha"]].eq(
            "").all(), csv.loc[zone]
    assert float(csv.loc["edge", "covered_fraction"]) == pytest.approx(64 * 100 / (200 * 100), abs=1e-6)
    assert float(csv.loc["far", "covered_fraction"]) == 0 and float(csv.loc["touch", "covered_fraction"]) == 0
    inside = csv.loc["inside"]
    assert inside["artificialised_ha"] != "" and float(inside["covered_fraction"]) == pytest.approx(1.0)
    # areas are whole 0.25 m pixels
    pixels = float(inside["artificialised_m2"]) / 0.0625
    assert pixels == pytest.approx(round(pixels), abs=1e-6)
    features = {f["properties"]["zone_id"]: f["properties"]
                for f in json.loads((folder / "data.geojson").read_text())["features"]}
    assert features["far"]["artificialised_ha"] is None and features["far"]["status"] == "not_covered"
    assert features["edge"]["net_ha"] is None and features["edge"]["status"] == "partial"
    assert features["inside"]["artificialised_ha"] is not None
    item = json.loads((folder / "zan-zones-cov-2016-2019.json").read_text())
    low, high = item["properties"]["geovigie:style"]["rescale"]
    assert low == 0 and high >= float(inside["artificialised_ha"]) and high > 0

    code, out = run_cli(["report", "--out", str(tmp_path / "report")], tmp_path, monkeypatch)
    assert code == 0, out
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("pas de données") >= 4 * 4  # four figures of four zones at least
    assert "4 of 5 zones not or not enough observed" in page
    table = pd.read_csv(tmp_path / "report" / "zan-zones-cov-2016-2019.csv", dtype={"zone_id": str})
    assert table.set_index("zone_id").loc["far", ["artificialised_ha", "net_ha"]].isna().all()


def test_a_layer_no_zone_sees_is_published_null_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    far = gpd.GeoDataFrame({"zone_id": ["a", "b"], "zone_name": ["A", "B"]},
                           geometry=[box(700000, 6600000, 701000, 6601000), box(702000, 6600000, 703000, 6601000)],
                           crs="EPSG:2154")
    far.to_file(tmp_path / "far.geojson")
    with pytest.warns(Warning, match="2 not covered"):
        code, out = run_cli(_zan(tmp_path / "far.geojson", "none"), tmp_path, monkeypatch)
    assert code == 0, out
    item = json.loads((tmp_path / RESULTS / "zan-zones-none-2016-2019" / "zan-zones-none-2016-2019.json").read_text())
    assert item["properties"]["geovigie:style"]["rescale"] == [0.0, 1.0]  # not "0 ha - 0 ha"
    code, out = run_cli(["report", "--out", str(tmp_path / "report")], tmp_path, monkeypatch)
    assert code == 0, out
    assert "pas de données" in (tmp_path / "report" / "index.html").read_text()


def test_a_shapefile_without_prj_needs_zones_crs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson")
    west, south, east, north = PATCH_BOUNDS
    patch = gpd.GeoDataFrame({"INSEE_COM": ["99999"], "NOM_COM": ["Patch"]},
                             geometry=[box(west, south, east, north)], crs="EPSG:2154")
    pd.concat([communes[["INSEE_COM", "NOM_COM", "geometry"]], patch]).to_file(tmp_path / "communes.shp")
    (tmp_path / "communes.prj").unlink()
    code, out = run_cli(_zan(tmp_path / "communes.shp", "prj"), tmp_path, monkeypatch)
    assert code == 2 and "--zones-crs" in out and "communes.shp" in out
    assert not (tmp_path / "gv").exists()
    with pytest.warns(Warning, match="not covered"):
        code, out = run_cli([*_zan(tmp_path / "communes.shp", "prj"), "--zones-crs", "EPSG:2154"], tmp_path,
                            monkeypatch)
    assert code == 0, out
    csv = pd.read_csv(tmp_path / RESULTS / "zan-zones-prj-2016-2019" / "zones.csv", dtype={"zone_id": str})
    row = csv.set_index("zone_id").loc["99999"]
    assert row["status"] == "covered" and row["covered_fraction"] == pytest.approx(1.0)  # on the patch, not at sea


def test_catalog_search_aoi_without_prj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geovigie.catalog.imagery import parse_aoi

    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson").head(2)
    communes.to_file(tmp_path / "aoi.shp")
    (tmp_path / "aoi.prj").unlink()
    with pytest.raises(ValueError, match="--zones-crs"):
        parse_aoi(str(tmp_path / "aoi.shp"))
    aoi = parse_aoi(str(tmp_path / "aoi.shp"), crs="EPSG:2154")
    assert 0 < aoi.bbox[0] < 1 and 43 < aoi.bbox[1] < 44  # the Gers, in degrees


def _heat_args(scene: str, *extra: str) -> list[str]:
    return ["diagnose", "heat", scene, "--urban", str(URBAN), "--place", "ms",
            "--rural-mask", str(EXTRA / "classification_rf_derived.tif"), "--rural-classes", "3,4", *extra]


def test_heat_on_a_geotiff_with_datetime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(Warning, match="partial"):
        code, out = run_cli(_heat_args(str(LST), "--datetime", "2024-08-13T10:20:00Z", "--unit", "kelvin"), tmp_path,
                            monkeypatch)
    assert code == 0, out
    assert "uhi-ms-20240813: reference" in out and "partial (observed share below 50%)" in out
    folder = tmp_path / RESULTS / "uhi-ms-20240813"
    item = pystac.Item.from_file(str(folder / "uhi-ms-20240813.json"))
    assert item.common_metadata.start_datetime.isoformat().startswith("2024-08-13T10:20")
    with rasterio.open(folder / "lst_celsius.tif") as src, rasterio.open(LST) as raw:
        celsius, kelvin = src.read(1, masked=True), raw.read(1, masked=True)
        assert float(np.ma.median(celsius)) == pytest.approx(float(np.ma.median(kelvin)) - 273.15, abs=1e-3)


def test_catalog_add_then_heat_on_the_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_cli(["catalog", "add", str(LST), "--collection", "my-lst", "--datetime", "2024-08-13",
                         "--asset", "lst", "--unit", "kelvin"], tmp_path, monkeypatch)
    assert code == 0, out
    stem = LST.stem
    path = tmp_path / "gv" / "catalog" / "my-lst" / stem / f"{stem}.json"
    assert path.is_file(), out
    item = pystac.Item.from_file(str(path))
    assert item.collection_id == "my-lst" and item.datetime.date().isoformat() == "2024-08-13"
    asset = item.assets["lst"]
    assert Path(asset.href) == LST.resolve()
    assert asset.extra_fields["raster:bands"][0]["unit"] == "kelvin"
    assert item.properties.get("proj:epsg") == 32632 or item.properties.get("proj:code") == "EPSG:32632"
    with rasterio.open(LST) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    assert item.bbox == pytest.approx([west, south, east, north], abs=1e-3)
    collection = json.loads((tmp_path / "gv" / "catalog" / "my-lst" / "collection.json").read_text())
    assert any(link["rel"] == "item" for link in collection["links"])
    with pytest.warns(Warning, match="partial"):
        code, out = run_cli(_heat_args(str(path)), tmp_path, monkeypatch)  # a STAC item still works
    assert code == 0, out
    assert (tmp_path / RESULTS / "uhi-ms-20240813" / "data.tif").is_file()


def test_dumps_min_height_and_sensitive_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in site layer (height above ground > 2 m as class 1) of one LiDAR HD tile, from the CLI."""
    name = "test_data_77055_627760_LA93_IGN69_50CM_TIN.tif"
    dsm, dtm = LIDAR / "DSM" / name, LIDAR / "DTM" / name
    with rasterio.open(dsm) as a, rasterio.open(dtm) as b:
        height = a.read(1).astype(float) - b.read(1).astype(float)
        profile = a.profile
    profile.update(dtype="uint8", nodata=255)
    with rasterio.open(tmp_path / "sites.tif", "w", **profile) as dst:
        dst.write((height > 2).astype("uint8"), 1)
    water = gpd.GeoDataFrame({"name": ["canal"]}, geometry=[box(770540, 6277640, 770560, 6277660)],
                             crs="EPSG:2154")
    water.to_file(tmp_path / "water.geojson")
    base = ["diagnose", "dumps", str(tmp_path / "sites.tif"), "--class-value", "1", "--date", "2024-05-01",
            "--dsm", str(dsm), "--dtm", str(dtm)]
    volumes = {}
    for cut in ("0.2", "1.5"):
        code, out = run_cli([*base, "--watch", f"w{cut.replace('.', '')}", "--min-height", cut,
                             "--sensitive", f"water={tmp_path / 'water.geojson'}"], tmp_path, monkeypatch)
        assert code == 0, out
        assert "sites measured" in out
        csv = next((tmp_path / "gv" / "diagnostics" / "dumps" / f"w{cut.replace('.', '')}" / "exports").glob(
            "sites-*.csv"))
        volumes[cut] = pd.read_csv(csv)
    low, high = volumes["0.2"], volumes["1.5"]
    assert (low["volume_m3"].notna()).all() and (low["volume_m3"] >= high["volume_m3"]).all()
    assert (low["volume_uncertainty_m3"] > 0).all() and (low["valid_fraction"] == 1).all()
    sites = gpd.read_file(next((tmp_path / "gv" / "diagnostics" / "dumps" / "w02" / "exports").glob("*.gpkg")))
    expected = sites.geometry.distance(water.geometry.iloc[0]).to_numpy()
    assert np.allclose(low["dist_water_m"].to_numpy(), expected, atol=1e-6)  # metres, Lambert-93
    assert (low["nearest_water"] == "canal").all()


def _publish_ndvi(work: Path, cloud: gpd.GeoSeries) -> None:
    """NDVI of the real Gers scene, with a 'cloud' (nodata) over `cloud`, published as layer `ndvi-test`."""
    from rasterio.features import geometry_mask

    from geovigie.settings import Settings
    from geovigie.tiles import LayerSpec, Provenance, publish_layer, results_store_for

    band = str(GERS_DIR / "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9_FRE_{}.tif")
    with rasterio.open(band.format("B4")) as src:
        red, profile = src.read(1).astype("float32"), src.profile
    with rasterio.open(band.format("B8")) as src:
        nir = src.read(1).astype("float32")
    ndvi = np.where((red > 0) & (nir > 0), (nir - red) / np.maximum(nir + red, 1), -9999).astype("float32")
    clouded = ~geometry_mask(cloud.to_crs(profile["crs"]), ndvi.shape, profile["transform"])
    ndvi[clouded] = -9999
    profile.update(dtype="float32", nodata=-9999)
    path = work / "ndvi.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(ndvi, 1)
    settings = Settings(data_dir=work / "gv", stac_backend="static")
    publish_layer(results_store_for(settings), path, LayerSpec("ndvi-test", "NDVI", "continuous", rescale=(0, 0.9)),
                  Provenance(inputs=[str(path)], lineage="test"))


def test_vegetation_shares_are_null_where_ndvi_is_not_observed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson").set_index("NOM_COM")
    aignan = communes.geometry["Aignan"]
    west, south, east, north = aignan.bounds
    cloud = gpd.GeoSeries([communes.geometry["Sabazan"].buffer(50), box(west, south, (west + east) / 2, north)],
                          crs=communes.crs)
    _publish_ndvi(tmp_path, cloud)
    with pytest.warns(Warning, match="partial"):
        code, out = run_cli(["diagnose", "vegetation", "ndvi-test", "--zones", str(GERS_DIR / "COMMUNE_32xxx.geojson"),
                             "--place", "gers"], tmp_path, monkeypatch)
    assert code == 0, out
    table = pd.read_csv(tmp_path / RESULTS / "vegetation-zones-gers" / "zones.csv").set_index("zone_name")
    shares = ["dense_vegetation_share", "sparse_vegetation_share", "ndvi_mean"]
    assert table.loc["Sabazan", "status"] == "not_covered"  # under the cloud: no NDVI, so no share (not 0)
    assert table.loc["Lupiac", "status"] == "partial" and table.loc["Lupiac", "covered_fraction"] < 0.001
    assert table.loc["Aignan", "status"] == "partial" and 0.3 < table.loc["Aignan", "covered_fraction"] < 0.5
    for name in ("Sabazan", "Lupiac", "Aignan", "Dému"):
        assert table.loc[name, shares].isna().all(), table.loc[name]
    covered = table[table["status"] == "covered"]
    assert "Margouët-Meymes" in covered.index
    assert covered[shares].notna().all().all()
    total = covered["dense_vegetation_share"] + covered["sparse_vegetation_share"]
    assert ((total > 0) & (total <= 1 + 1e-9)).all()
    unseen = table.index[table["status"] == "not_covered"]
    assert f"{len(unseen)} not covered: " in out and all(str(z) in out for z in table.loc[unseen, "zone_id"])


def test_coverage_summary_counts_every_zone_and_cuts_the_list() -> None:
    from geovigie.diagnostics import coverage_summary

    table = pd.DataFrame({"zone_id": [f"z{i:02d}" for i in range(30)],
                          "status": ["covered"] * 3 + ["partial"] * 2 + ["not_covered"] * 25})
    text = coverage_summary(table, 0.5)
    assert text.startswith("30 zones: 3 covered; 2 partial (observed share below 50%): z03, z04; 25 not covered: ")
    assert text.endswith("z05, z06, z07, z08, z09, z10, z11, z12, z13, z14 … and 15 more")
