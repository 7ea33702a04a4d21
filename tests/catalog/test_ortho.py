"""Ingesting IGN orthophoto dalles (JP2 / GeoTIFF, RVB / IRC, EPSG:2154) into a catalog, optionally as COGs.

The dalles are the orthophoto-like stand-ins of `data/ortho-like-gers` (Sentinel-2 pixels in BD ORTHO layout),
copied under IGN dalle names; the refused files are the real Theia scene (EPSG:32630) and a truncated JP2.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import typer
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from geovigie.catalog.ortho import ingest_ortho
from geovigie.catalog.ortho._ingest import ortho_kind
from geovigie.catalog.stac import StaticItemStore
from geovigie.errors import InputNotFoundError, InvalidRasterError
from geovigie.tiles import validate_offline
from tests.conftest import DATA, GERS_DIR

RVB, IRC = DATA / "ortho-like-gers" / "rvb.tif", DATA / "ortho-like-gers" / "irc.tif"
RVB_NAME = "32-2018-0463-6294-LA93-0M10-E080"
IRC_NAME = "32-2018-0463-6294-LA93-0M05-IRC-E080"
JP2_NAME = "32-2021-0463-6294-LA93-0M10-E080"


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    """A delivery folder as IGN nests it: two GeoTIFF dalles, one JP2 dalle and two files that must be refused.

    The RVB GeoTIFF is already a COG (tiled, small); the IRC one is not (600 × 600 px in strips, each pixel of
    irc.tif repeated 2 × 2 at 5 m).
    """
    folder = tmp_path / "ORTHOHR" / "1_DONNEES_LIVRAISON"
    folder.mkdir(parents=True)
    shutil.copy(RVB, folder / f"{RVB_NAME}.tif")
    with rasterio.open(IRC) as src:
        pixels = src.read().repeat(2, axis=1).repeat(2, axis=2)
        profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "width": 600, "height": 600, "crs": src.crs,
                   "transform": src.transform * src.transform.scale(0.5)}
        with rasterio.open(folder / f"{IRC_NAME}.tif", "w", **profile) as dst:
            dst.write(pixels)
    with rasterio.open(RVB) as src:
        profile = {**src.profile, "driver": "JP2OpenJPEG", "QUALITY": "100", "REVERSIBLE": "YES"}
        for key in ("compress", "tiled", "blockxsize", "blockysize", "photometric", "interleave"):
            profile.pop(key, None)
        with rasterio.open(folder / f"{JP2_NAME}.jp2", "w", **profile) as dst:
            dst.write(src.read())
    shutil.copy(next(GERS_DIR.glob("*_FRE_B2.tif")), folder / "32-2018-0744-4847-LA93-0M10-E080.tif")
    (folder / "32-2018-0466-6294-LA93-0M10-E080.jp2").write_bytes((folder / f"{JP2_NAME}.jp2").read_bytes()[:400])
    return tmp_path / "ORTHOHR"


def test_ingest_describes_each_dalle_and_names_each_refused_file(delivery: Path, tmp_path: Path) -> None:
    store = StaticItemStore(tmp_path / "catalog")
    report = ingest_ortho(delivery, store)
    assert sorted(report.ingested) == sorted([RVB_NAME, IRC_NAME, JP2_NAME])
    refused = dict((p.name, message) for p, message in report.failed)
    assert set(refused) == {"32-2018-0744-4847-LA93-0M10-E080.tif", "32-2018-0466-6294-LA93-0M10-E080.jp2"}
    utm = refused["32-2018-0744-4847-LA93-0M10-E080.tif"]
    assert "32-2018-0744-4847-LA93-0M10-E080.tif" in utm and "EPSG:32630" in utm and "not EPSG:2154" in utm
    broken = refused["32-2018-0466-6294-LA93-0M10-E080.jp2"]
    assert "32-2018-0466-6294-LA93-0M10-E080.jp2" in broken and "not a readable raster" in broken

    rvb, irc, jp2 = (store.get("ign-ortho", name) for name in (RVB_NAME, IRC_NAME, JP2_NAME))
    for item in (rvb, irc, jp2):
        validate_offline(item)
        assert item.properties["proj:code"] == "EPSG:2154"
        assert item.properties["proj:bbox"] == [463000.0, 6291000.0, 466000.0, 6294000.0]
        assert Path(item.assets["image"].href).parent == delivery / "1_DONNEES_LIVRAISON"
    assert [i.properties["gsd"] for i in (rvb, irc, jp2)] == [10.0, 5.0, 10.0]
    assert [i.properties["proj:shape"] for i in (rvb, irc, jp2)] == [[300, 300], [600, 600], [300, 300]]
    assert [i.properties["geovigie:cog"] for i in (rvb, irc, jp2)] == [True, False, False]
    assert rvb.assets["image"].media_type == pystac.MediaType.COG
    assert irc.assets["image"].media_type == pystac.MediaType.GEOTIFF
    names = {key: [b["common_name"] for b in item.assets["image"].extra_fields["eo:bands"]]
             for key, item in (("rvb", rvb), ("irc", irc), ("jp2", jp2))}
    assert names == {"rvb": ["red", "green", "blue"], "irc": ["nir", "red", "green"], "jp2": ["red", "green", "blue"]}
    assert rvb.properties["start_datetime"] == "2018-01-01T00:00:00Z" and rvb.datetime is None
    assert jp2.properties["end_datetime"] == "2021-12-31T23:59:59Z"
    assert jp2.assets["image"].media_type == "image/jp2"
    assert 0.05 < rvb.bbox[0] < 0.07 and 43.6 < rvb.bbox[1] < 43.8  # Gers, in WGS84
    assert [c.id for c in pystac.Catalog.from_file(str(tmp_path / "catalog" / "catalog.json")).get_children()] \
        == ["ign-ortho"]


def test_rerun_skips_unchanged_dalles_and_redoes_a_changed_one(delivery: Path, tmp_path: Path) -> None:
    store = StaticItemStore(tmp_path / "catalog")
    ingest_ortho(delivery, store)
    again = ingest_ortho(delivery, store)
    assert again.ingested == [] and sorted(again.skipped) == sorted([RVB_NAME, IRC_NAME, JP2_NAME])
    assert len(again.failed) == 2  # the bad files are still reported
    changed = delivery / "1_DONNEES_LIVRAISON" / f"{IRC_NAME}.tif"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 1_000_000_000))
    third = ingest_ortho(delivery, store)
    assert third.ingested == [IRC_NAME] and len(third.skipped) == 2


def test_cog_conversion_is_lossless_atomic_and_idempotent(delivery: Path, tmp_path: Path) -> None:
    store = StaticItemStore(tmp_path / "catalog")
    ingest_ortho(delivery, store)  # first without conversion: asking for COGs later converts them
    report = ingest_ortho(delivery, store, cog=True)
    assert sorted(report.ingested) == sorted([IRC_NAME, JP2_NAME])  # the RVB dalle is a COG already
    assert report.skipped == [RVB_NAME]
    folder = delivery / "1_DONNEES_LIVRAISON"
    for name, source in ((IRC_NAME, folder / f"{IRC_NAME}.tif"), (JP2_NAME, folder / f"{JP2_NAME}.jp2")):
        item = store.get("ign-ortho", name)
        href = Path(item.assets["image"].href)
        assert href == store.files_dir("ign-ortho", name) / f"{name}.tif"
        assert item.assets["image"].media_type == pystac.MediaType.COG and item.properties["geovigie:cog"] is True
        assert cog_validate(str(href), quiet=True)[0]
        with rasterio.open(href) as cog, rasterio.open(source) as src:
            assert cog.crs.to_epsg() == 2154 and cog.transform == src.transform
            assert np.array_equal(cog.read(), src.read())  # deflate, and the JP2 was written reversibly
        assert sorted(p.name for p in href.parent.iterdir()) == sorted([f"{name}.tif", f"{name}.json"])
    with rasterio.open(store.files_dir("ign-ortho", JP2_NAME) / f"{JP2_NAME}.tif") as cog, rasterio.open(RVB) as src:
        assert np.array_equal(cog.read(), src.read())
    assert Path(store.get("ign-ortho", RVB_NAME).assets["image"].href) == folder / f"{RVB_NAME}.tif"
    assert ingest_ortho(delivery, store, cog=True).ingested == []


def test_band_count_must_fit_the_kind_and_missing_folders_are_named(tmp_path: Path) -> None:
    assert ortho_kind("75-2021-0650-6865-LA93-0M20-E080.jp2", 3) == "rvb"
    assert ortho_kind("75-2021-0650-6865-LA93-0M20-IRC-E080.jp2", 3) == "irc"
    assert ortho_kind("ortho_IRC_2021.tif", 3) == "irc"
    assert ortho_kind("75-2021-0650-6865-LA93-0M20-E080.tif", 4) == "rvbi"
    with pytest.raises(InvalidRasterError, match="1 band.*IRC orthophoto has 3"):
        ortho_kind("75-2021-0650-6865-LA93-0M20-IRC-E080.jp2", 1)
    with pytest.raises(InputNotFoundError, match="no folder"):
        ingest_ortho(tmp_path / "absent", StaticItemStore(tmp_path / "c"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError, match="no dalle"):
        ingest_ortho(tmp_path / "empty", StaticItemStore(tmp_path / "c"))


def test_cli_ingest_ortho_reports_and_exits_2_when_a_file_is_refused(delivery: Path, tmp_path: Path) -> None:
    from geovigie._cli_ortho import register
    from geovigie.cli import _settings, friendly_errors

    app = typer.Typer()
    register(app, friendly_errors, _settings)
    catalog = tmp_path / "catalog"
    done = CliRunner().invoke(app, ["catalog", "ingest-ortho", str(delivery), "--catalog", str(catalog)])
    assert done.exit_code == 2, done.output
    assert "3 dalle(s) ingested" in done.output and "2 refused" in done.output
    assert "EPSG:32630" in done.output and "not a readable raster" in done.output
    for bad in delivery.rglob("*-0744-*"):
        bad.unlink()
    for bad in delivery.rglob("*-0466-*"):
        bad.unlink()
    done = CliRunner().invoke(app, ["catalog", "ingest-ortho", str(delivery), "--catalog", str(catalog)])
    assert done.exit_code == 0 and "0 dalle(s) ingested, 3 already in" in done.output


def test_rebuilding_the_sample_catalog_keeps_ingested_orthophotos(tmp_path: Path) -> None:
    from geovigie.catalog.samples import build_sample_catalog
    from geovigie.catalog.stac import CatalogClient, SearchQuery

    folder = tmp_path / "delivery"
    folder.mkdir()
    shutil.copy(RVB, folder / f"{RVB_NAME}.tif")
    catalog_dir = tmp_path / "catalog"
    build_sample_catalog(DATA, catalog_dir)
    store = StaticItemStore(catalog_dir, catalog_id="geovigie-inputs", description="Imagery available to geovigie")
    ingest_ortho(folder, store)

    build_sample_catalog(DATA, catalog_dir)  # the sample collections are rebuilt, the ingested one is kept

    found = list(StaticItemStore(catalog_dir).search(SearchQuery(collections=("ign-ortho",))))
    assert [item.id for item in found] == [RVB_NAME]
    assert all(Path(a.get_absolute_href() or "").is_file() for a in found[0].assets.values())
    root = pystac.Catalog.from_file(str(catalog_dir / "catalog.json"))
    assert {"ign-ortho", "s2-l2a-theia-gers"} <= {child.id for child in root.get_children()}
    assert [i.id for i in CatalogClient.open(catalog_dir).search(collections=["ign-ortho"]).item_list()] == [RVB_NAME]
