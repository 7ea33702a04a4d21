"""Bad input to `geovigie diagnose dumps-appearance` (dump candidates from two image passes): one `error:` line
naming the problem (file, band, CRS, option), exit code 2, no traceback, nothing left behind.

Every input is made here from the shipped Sentinel-2 L1C Slovenia scene 2: its bands without NIR, one band alone,
bands without names, the same pixels declared in another CRS, moved away or in degrees.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point

from tests._support.figures import assert_fails_cleanly
from tests.conftest import DATA

SCENE = DATA / "s2-l1c-slovenia" / "reference_scene_2.tif"


def _write(path: Path, array: np.ndarray, names: tuple[str, ...] | None, crs: str, transform: Affine) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[-1], height=array.shape[-2],
                       count=array.shape[0], dtype="float32", crs=crs, transform=transform) as dst:
        dst.write(array.astype(np.float32))
        if names:
            dst.descriptions = names


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("appearance-bad")
    with rasterio.open(SCENE) as src:
        bands, names, transform, crs = src.read(), src.descriptions, src.transform, src.crs.to_string()
    keep = [names.index(b) for b in ("B02", "B03", "B04", "B11")]
    _write(folder / "no_nir.tif", bands[keep], tuple(names[i] for i in keep), crs, transform)
    _write(folder / "one_band.tif", bands[[3]], ("B04",), crs, transform)
    _write(folder / "unnamed.tif", bands[[1, 2, 3, 7]], None, crs, transform)
    _write(folder / "utm34.tif", bands, names, "EPSG:32634", transform)
    _write(folder / "far.tif", bands, names, crs, Affine.translation(50_000, 0) * transform)
    _write(folder / "degrees.tif", bands, names, "EPSG:4326", Affine(1e-4, 0, 14.5, 0, -1e-4, 46.0))
    (folder / "text.tif").write_text("not a raster\n")
    x, y = transform * (50, 50)
    gpd.GeoDataFrame({"name": ["pole"]}, geometry=[Point(x, y)], crs=crs).to_file(folder / "points.gpkg")
    return folder


def _args(after: str = str(SCENE), *extra: str, before: str = str(SCENE)) -> tuple[str, ...]:
    return ("diagnose", "dumps-appearance", "--before", before, "--after", after, "--watch", "w",
            "--date", "2017-06-01", *extra)


CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "nir-missing-for-ndvi": (_args("{in}/no_nir.tif", "--require-nir"),
                             ("no_nir.tif", "no NIR band", "NDVI", "B02, B03, B04, B11")),
    "one-band": (_args("{in}/one_band.tif"), ("one_band.tif", "no green band", "1 band(s)", "B04")),
    "unnamed-bands": (_args(before="{in}/unnamed.tif"),
                      ("unnamed.tif", "no green, red band", "description", "--bands")),
    "bands-count": (_args(str(SCENE), "--bands", "red,green,blue,nir"), ("reference_scene_2.tif", "13 band(s)",
                                                                         "4 band names")),
    "bands-unknown": (_args("{in}/unnamed.tif", "--bands", "red,green,blue,nri", before="{in}/unnamed.tif"),
                      ("band name 'nri'",)),
    "crs-differs": (_args("{in}/utm34.tif"), ("utm34.tif", "EPSG:32634", "EPSG:32633")),
    "no-overlap": (_args("{in}/far.tif"), ("far.tif", "does not overlap")),
    "degrees": (_args(before="{in}/degrees.tif"), ("degrees.tif", "EPSG:4326", "metres")),
    "after-missing": (_args("{in}/nothing.tif"), ("nothing.tif",)),
    "not-a-raster": (_args("{in}/text.tif"), ("text.tif", "not a readable raster")),
    "negative-texture": (_args(str(SCENE), "--min-texture", "-0.1"), ("--min-texture",)),
    "even-window": (_args(str(SCENE), "--texture-window", "4"), ("--texture-window 4", "odd")),
    "nan-ndvi-drop": (_args(str(SCENE), "--min-ndvi-drop", "nan"), ("--min-ndvi-drop",)),
    "exclude-points": (_args(str(SCENE), "--exclude", "{in}/points.gpkg"), ("exclusion footprints", "no polygon")),
    "bad-date": (("diagnose", "dumps-appearance", "--before", str(SCENE), "--after", str(SCENE), "--watch", "w",
                  "--date", "June"), ("--date", "June")),
}



@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_error_line(name: str, inputs: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert_fails_cleanly(*CASES[name], inputs, tmp_path, monkeypatch)
