"""A private PostgreSQL with pgstac for the tests, and results windows published into it."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.windows import Window

from geovigie.catalog.stac import PgstacItemStore
from geovigie.cog import write_array_cog
from geovigie.postgres import PostgresNotInstalledError, PrivatePostgres
from geovigie.tiles import LayerSpec, Provenance, publish_layer
from tests.conftest import GERS_DIR, require

CLEAR, CLOUDY = (0, 0), (300, 150)


def private_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder for a test cluster. As root the server runs as `postgres`, which must reach the folder: every
    pytest session resets /tmp/pytest-of-root to 0700 when it starts, so there the cluster goes under a folder of
    its own in the temporary directory instead, made 0711 by the test that creates it (geovigie changes no mode of
    a folder it did not create; removed by `remove_private_folder`)."""
    if os.geteuid() != 0:
        return tmp_path_factory.mktemp(name)
    folder = Path(tempfile.mkdtemp(prefix=f"geovigie-test-{name}-"))
    folder.chmod(0o711)
    return folder


def remove_private_folder(folder: Path) -> None:
    if os.geteuid() == 0 and folder.name.startswith("geovigie-test-"):
        shutil.rmtree(folder, ignore_errors=True)


def start_private_postgres(folder: Path) -> PrivatePostgres:
    """A private cluster in `folder`, started; skips (fails in CI) when PostgreSQL is not installed."""
    cluster = PrivatePostgres(folder / "postgres")
    try:
        cluster.start()
    except PostgresNotInstalledError as err:
        require(False, str(err))
    return cluster


def publish_window(store: PgstacItemStore, folder: Path, layer_id: str, corner: tuple[int, int]) -> pystac.Item:
    """Publish one NDVI window through `tiles.publish_layer` into `store`."""
    cog, cloud_cover = ndvi_window(folder, layer_id, corner)
    spec = LayerSpec(layer_id, f"NDVI window {corner}", "continuous", rescale=(-1.0, 1.0), colormap_name="rdylgn",
                     properties={"eo:cloud_cover": round(cloud_cover, 2), "platform": "sentinel-2b",
                                 "constellation": "sentinel-2", "instruments": ["msi"]})
    return publish_layer(store, cog, spec, Provenance(inputs=[], lineage="NDVI of the Theia FRE B8 and B4 bands",
                                                      datetime=GERS_WHEN))


GERS_WHEN = datetime(2018, 10, 23, 10, 51, 7, tzinfo=UTC)


def ndvi_window(folder: Path, name: str, corner: tuple[int, int], size: int = 100) -> tuple[Path, float]:
    """An NDVI COG of a window of the real Gers scene, and the window's cloud cover (%) from the CLM mask."""
    window = Window(corner[1], corner[0], size, size)
    with rasterio.open(GERS_DIR / f"{STEM}_FRE_B4.tif") as red_src, \
            rasterio.open(GERS_DIR / f"{STEM}_FRE_B8.tif") as nir_src, \
            rasterio.open(GERS_DIR / "MASKS" / f"{STEM}_CLM_R1.tif") as clm_src:
        red = red_src.read(1, window=window).astype("float32")
        nir = nir_src.read(1, window=window).astype("float32")
        cloudy = clm_src.read(1, window=window) != 0
        profile = {"driver": "GTiff", "crs": red_src.crs, "transform": red_src.window_transform(window),
                   "nodata": np.nan}
    ndvi = np.where(cloudy, np.nan, (nir - red) / np.maximum(nir + red, 1.0)).astype("float32")
    return write_array_cog(folder / f"{name}.tif", ndvi[None], profile=profile), float(cloudy.mean() * 100)


STEM = "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"
