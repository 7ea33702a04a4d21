"""`fetch_wms` against a real MapServer WMS (the `mapserv` CGI binary) started on 127.0.0.1 by the tests.

The WMS serves the orthophoto-like rasters of `data/ortho-like-gers` (mapfiles in `tests/catalog/wms/`):
`/ortho` with MapServer's 4096 px size limit, `/ortho-small` with a 100 px limit advertised in its capabilities.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import typer
from rasterio.windows import from_bounds
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from geovigie.catalog.ortho import WmsClient, WmsError, fetch_wms, snap_grid
from geovigie.catalog.stac import StaticItemStore
from geovigie.errors import EmptyInputError, InvalidInputError
from geovigie.tiles import validate_offline
from tests.catalog.wms.mapserver import MapServer, mapserv_available, serve
from tests.conftest import DATA, require

RVB, IRC = DATA / "ortho-like-gers" / "rvb.tif", DATA / "ortho-like-gers" / "irc.tif"
LAYER, LAYER_IRC = "ORTHOIMAGERY.ORTHOPHOTOS", "ORTHOIMAGERY.ORTHOPHOTOS.IRC"
AOI = (463250.0, 6291500.0, 464750.0, 6292800.0)
"""150 × 130 px at 10 m inside the served 3 × 3 km."""


@pytest.fixture(scope="module")
def wms() -> Iterator[MapServer]:
    require(mapserv_available(), "MapServer's mapserv binary is missing: apt-get install cgi-mapserver")
    server = serve()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fresh_log(request: pytest.FixtureRequest) -> None:
    if "wms" in request.fixturenames:
        server = request.getfixturevalue("wms")
        server.log.clear()
        server.fail_next = 0


def source(path: Path, bbox: tuple[float, float, float, float]) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(window=from_bounds(*bbox, transform=src.transform))


def test_png_fetch_equals_the_served_raster_and_splits_under_the_advertised_limit(wms: MapServer,
                                                                                  tmp_path: Path) -> None:
    out = tmp_path / "rvb.tif"
    item = fetch_wms(wms.url("/ortho-small"), LAYER, AOI, 10, out, image_format="image/png")
    with rasterio.open(out) as cog:
        pixels = cog.read()
        assert cog.crs.to_epsg() == 2154 and cog.res == (10.0, 10.0)
        assert tuple(cog.bounds) == AOI
        assert cog.dataset_mask().all()
    assert pixels.shape == (3, 130, 150)
    assert np.array_equal(pixels, source(RVB, AOI))  # MapServer's nearest neighbour at the native grid: exact
    assert cog_validate(str(out), quiet=True)[0]
    getmaps = wms.getmaps("/ortho-small")
    assert len(getmaps) == 4  # 150 × 130 under MaxWidth = MaxHeight = 100
    assert all(int(q["WIDTH"]) <= 100 and int(q["HEIGHT"]) <= 100 for q in getmaps)
    assert sum(int(q["WIDTH"]) * int(q["HEIGHT"]) for q in getmaps) == 150 * 130
    assert item.properties["geovigie:wms"]["requests"] == 4
    assert item.properties["gsd"] == 10.0
    assert item.properties["proj:code"] == "EPSG:2154"
    asset = item.assets["image"]
    assert asset.href == str(out.resolve()) and asset.media_type == pystac.MediaType.COG
    assert [b["common_name"] for b in asset.extra_fields["eo:bands"]] == ["red", "green", "blue"]
    validate_offline(item)


def test_jpeg_irc_fetch_is_near_the_source_and_obeys_a_configured_size(wms: MapServer, tmp_path: Path) -> None:
    out = tmp_path / "irc.tif"
    item = fetch_wms(wms.url("/ortho"), LAYER_IRC, AOI, 10, out, image_format="image/jpeg", max_size=64)
    with rasterio.open(out) as cog:
        pixels = cog.read()
    difference = np.abs(pixels.astype(int) - source(IRC, AOI))
    assert difference.mean() < 8  # JPEG quality 90 on 10 m texture: 4.95 DN measured (RVB 3.42)
    assert np.corrcoef(pixels.ravel(), source(IRC, AOI).ravel())[0, 1] > 0.95
    getmaps = wms.getmaps("/ortho")
    assert len(getmaps) == 9 and max(int(q["WIDTH"]) for q in getmaps) <= 64  # ceil(150/64) × ceil(130/64)
    assert {q["FORMAT"] for q in getmaps} == {"image/jpeg"}
    assert [b["common_name"] for b in item.assets["image"].extra_fields["eo:bands"]] == ["nir", "red", "green"]


def test_finer_resolution_repeats_each_source_pixel(wms: MapServer, tmp_path: Path) -> None:
    aoi = (463500.0, 6292000.0, 464000.0, 6292500.0)
    fetch_wms(wms.url("/ortho-small"), LAYER, aoi, 5, tmp_path / "5m.tif", image_format="image/png")
    with rasterio.open(tmp_path / "5m.tif") as cog:
        pixels = cog.read()
    expected = source(RVB, aoi)
    assert pixels.shape == (3, 100, 100) and len(wms.getmaps()) == 1
    for dy in (0, 1):
        for dx in (0, 1):
            assert np.array_equal(pixels[:, dy::2, dx::2], expected)


def test_area_partly_outside_the_layer_is_masked_and_wholly_outside_is_an_error(wms: MapServer,
                                                                              tmp_path: Path) -> None:
    aoi = (462500.0, 6291500.0, 463500.0, 6292000.0)  # west half outside the served raster
    fetch_wms(wms.url("/ortho"), LAYER, aoi, 10, tmp_path / "half.tif", image_format="image/png")
    with rasterio.open(tmp_path / "half.tif") as cog:
        mask = cog.dataset_mask()
        pixels = cog.read()
    assert (mask[:, :50] == 0).all() and (mask[:, 50:] == 255).all()
    assert np.array_equal(pixels[:, :, 50:], source(RVB, (463000.0, 6291500.0, 463500.0, 6292000.0)))
    with pytest.raises(EmptyInputError, match="only transparent pixels"):
        fetch_wms(wms.url("/ortho"), LAYER, (470000, 6291000, 471000, 6292000), 10, tmp_path / "none.tif",
                  image_format="image/png")
    assert not (tmp_path / "none.tif").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["half.tif"]  # no scratch file left


def test_bad_layer_name_is_refused_before_any_getmap(wms: MapServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"'ORTHOIMAGERY\.ORTHOPHOTO' is not offered.*did you mean "
                                                r"ORTHOIMAGERY\.ORTHOPHOTOS"):
        fetch_wms(wms.url("/ortho"), "ORTHOIMAGERY.ORTHOPHOTO", AOI, 10, tmp_path / "x.tif")
    assert wms.getmaps() == [] and not (tmp_path / "x.tif").exists()


def test_service_exceptions_come_back_with_the_servers_text(wms: MapServer) -> None:
    with WmsClient(wms.url("/ortho-small")) as client:
        with pytest.raises(WmsError, match="LayerNotDefined: msWMSLoadGetMapParams.*Invalid layer"):
            client.get_map("NO.SUCH.LAYER", AOI, 50, 50, "image/png")
        with pytest.raises(WmsError, match="Image size out of range, WIDTH and HEIGHT must be between 1 and 100"):
            client.get_map(LAYER, AOI, 150, 130, "image/png")


def test_getmap_is_retried_when_the_server_fails_a_few_times(wms: MapServer, tmp_path: Path) -> None:
    wms.fail_next = 2
    item = fetch_wms(wms.url("/ortho-small"), LAYER, AOI, 10, tmp_path / "ok.tif", image_format="image/png",
                     backoff=0.01)
    assert len(wms.getmaps()) == 6 and item.properties["geovigie:wms"]["requests"] == 6  # 4 tiles + 2 refused
    with rasterio.open(tmp_path / "ok.tif") as cog:
        assert np.array_equal(cog.read(), source(RVB, AOI))
    wms.fail_next = 10
    with pytest.raises(WmsError, match="HTTP 503 on GetMap"):
        fetch_wms(wms.url("/ortho-small"), LAYER, AOI, 10, tmp_path / "ko.tif", retries=2, backoff=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.tif"]


def test_unreachable_server_and_bad_grids_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WmsError, match="cannot connect"):
        fetch_wms("http://127.0.0.1:9/wms", LAYER, AOI, 10, tmp_path / "x.tif", retries=1, backoff=0.01)
    with pytest.raises(InvalidInputError, match="longitude/latitude"):
        snap_grid((0.05, 43.6, 0.07, 43.7), 0.5)
    with pytest.raises(InvalidInputError, match="xmin < xmax"):
        snap_grid((464000, 6291000, 463000, 6292000), 0.5)
    with pytest.raises(InvalidInputError, match="positive"):
        snap_grid(AOI, 0)
    grid = snap_grid((463250.3, 6291500.2, 464750.1, 6292799.9), 0.5)  # snapped outward to the 0.5 m grid
    assert grid.bbox == (463250.0, 6291500.0, 464750.5, 6292800.0) and (grid.width, grid.height) == (3001, 2600)


def test_cli_fetch_ortho_writes_the_cog_and_the_item_into_the_catalog(wms: MapServer, tmp_path: Path) -> None:
    from geovigie._cli_ortho import register
    from geovigie.cli import _settings, friendly_errors

    app = typer.Typer()
    register(app, friendly_errors, _settings)
    runner = CliRunner()
    args = ["catalog", "fetch-ortho", "--aoi", ",".join(map(str, AOI)), "--layer", "rvb", "--resolution", "10",
            "--wms-url", wms.url("/ortho-small"), "--format", "png", "--catalog", str(tmp_path / "cat")]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    store = StaticItemStore(tmp_path / "cat")
    item = store.get("ign-ortho-wms", "rvb-463250-6291500-464750-6292800-10m")
    with rasterio.open(item.assets["image"].href) as cog:
        assert np.array_equal(cog.read(), source(RVB, AOI))
    done = runner.invoke(app, [*args[:5], "ORTHOIMAGERY.NOPE", *args[6:]])
    assert done.exit_code == 2 and "error:" in done.output and "not offered" in done.output
