"""Dump candidates from an appearance change between two real Sentinel-2 L1C passes of the shipped Slovenia patch.

Scenes 3 (2015-08-30) and 2 (2015-09-09) are clear passes of one place (data/s2-l1c-slovenia/acquisitions.json),
scenes 0 and 1 hazy. Where said, the "after" pass is scene 2 with a SYNTHETIC bare, heterogeneous patch written by
the test: 4 × 4 pixels (≈ 40 × 40 m, 1 598 m²) of forest replaced by bare-soil-like top-of-atmosphere reflectances
times a SYNTHETIC per-pixel factor 1 + 0.35 N(0, 1) (mixed rubble), or a SYNTHETIC global gain and band-wise haze
offset applied to the whole pass.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.diagnostics import APPEARANCE_NOTE, DEFAULT_MIN_TEXTURE, appearance_change_candidates
from geovigie.errors import DiagnosticsWarning
from tests.conftest import DATA

S2 = DATA / "s2-l1c-slovenia"
BEFORE, AFTER = S2 / "reference_scene_3.tif", S2 / "reference_scene_2.tif"  # 2015-08-30, 2015-09-09
PASS = date(2015, 9, 9)
PATCHES = ((20, 20), (60, 30))  # top-left pixel of two 4 × 4 forest blocks (lulc_mask class 2 all around)
SOIL = np.array([0.12, 0.11, 0.12, 0.14, 0.16, 0.18, 0.19, 0.20, 0.21, 0.07, 0.005, 0.30, 0.24])  # B01…B12, TOA
GAIN = 1.2
HAZE = np.array([0.06, 0.05, 0.04, 0.03, 0.025, 0.02, 0.02, 0.015, 0.015, 0.01, 0.0, 0.01, 0.005])


def read(path: Path) -> tuple[np.ndarray, dict, tuple[str, ...]]:
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.descriptions


def write(path: Path, array: np.ndarray, profile: dict, descriptions: tuple[str, ...]) -> Path:
    with rasterio.open(path, "w", **{**profile, "count": array.shape[0], "dtype": "float32"}) as dst:
        dst.write(array.astype(np.float32))
        dst.descriptions = descriptions
    return path


def with_patch(array: np.ndarray, row: int, col: int, seed: int = 0, size: int = 4, spread: float = 0.35) -> np.ndarray:
    """The pass with a SYNTHETIC bare patch of size × size px at (row, col), heterogeneous unless spread is 0."""
    out = array.copy()
    factor = np.clip(1 + spread * np.random.default_rng(seed).standard_normal((size, size)), 0.3, 2.0)
    out[:, row:row + size, col:col + size] = SOIL[:, None, None] * factor
    return out


def patch_box(row: int, col: int) -> gpd.GeoDataFrame:
    with rasterio.open(AFTER) as src:
        (x0, y0), (x1, y1) = src.transform * (col, row + 4), src.transform * (col + 4, row)
        crs = src.crs
    return gpd.GeoDataFrame(geometry=[box(x0, y0, x1, y1)], crs=crs)


@pytest.fixture(scope="module")
def passes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("appearance")
    array, profile, names = read(AFTER)
    with rasterio.open(S2 / "lulc_mask.tif") as src:
        classes = src.read(1)
    for row, col in PATCHES:
        assert (classes[row - 2:row + 6, col - 2:col + 6] == 2).all()  # forest around the patch
    hazy = array * GAIN + HAZE[:, None, None]
    return {"folder": folder,
            "patched": write(folder / "patched.tif", with_patch(array, *PATCHES[0]), profile, names),
            "patched-2": write(folder / "patched-2.tif", with_patch(array, *PATCHES[1], seed=1), profile, names),
            "hazy": write(folder / "hazy.tif", hazy, profile, names),
            "hazy-patched": write(folder / "hazy-patched.tif", with_patch(hazy, *PATCHES[0]), profile, names)}


def test_two_clear_real_passes_give_no_candidate() -> None:
    """Scene 3 -> 2 (and back): no candidate; without a minimum area, one speck of 3 pixels (299 m²) at most."""
    for first, second in ((BEFORE, AFTER), (AFTER, BEFORE)):
        change = appearance_change_candidates(first, second, pass_date=PASS)
        assert change.candidates.empty
        assert change.bands == ("blue", "green", "red", "nir", "swir16")
        assert min(change.fit_r.values()) > 0.9  # clear passes: every band fits on unchanged ground
        tiny = appearance_change_candidates(first, second, pass_date=PASS, min_area_m2=0).candidates
        assert len(tiny) <= 1 and tiny["area_m2"].sum() < 400


@pytest.mark.parametrize("key,where", [("patched", PATCHES[0]), ("patched-2", PATCHES[1])])
def test_synthetic_bare_patch_found_with_its_area(passes: dict[str, Path], key: str, where: tuple[int, int]) -> None:
    found = appearance_change_candidates(BEFORE, passes[key], pass_date=PASS).candidates
    assert len(found) == 1
    row = found.iloc[0]
    truth = patch_box(*where).to_crs("EPSG:2154").geometry.iloc[0]
    assert abs(row["area_m2"] - truth.area) / truth.area < 0.25, (row["area_m2"], truth.area)
    assert Point(row["centroid_x_l93"], row["centroid_y_l93"]).distance(truth.centroid) < 10
    assert row["ndvi_drop_mean"] > 0.2 and row["texture_mean"] > DEFAULT_MIN_TEXTURE and row["bsi_rise_mean"] > 0
    assert row["candidate"] and row["note"] == APPEARANCE_NOTE and "candidat" in row["note"]
    assert np.isnan(row["volume_m3"])


def test_uniform_bare_field_is_not_heterogeneous(passes: dict[str, Path]) -> None:
    """A SYNTHETIC uniform bare patch of 8 × 8 px (a ploughed field, not rubble): NDVI falls, nothing is found."""
    array, profile, names = read(AFTER)
    field = write(passes["folder"] / "field.tif", with_patch(array, 18, 18, size=8, spread=0.0), profile, names)
    assert appearance_change_candidates(BEFORE, field, pass_date=PASS).candidates.empty


def test_min_area_boundary(passes: dict[str, Path]) -> None:
    area = appearance_change_candidates(BEFORE, passes["patched"], pass_date=PASS).candidates.iloc[0]["area_m2"]
    assert len(appearance_change_candidates(BEFORE, passes["patched"], pass_date=PASS,
                                            min_area_m2=area - 1).candidates) == 1
    assert appearance_change_candidates(BEFORE, passes["patched"], pass_date=PASS,
                                        min_area_m2=area + 1).candidates.empty


def test_gain_and_haze_alone_give_nothing(passes: dict[str, Path]) -> None:
    same = appearance_change_candidates(AFTER, passes["hazy"], pass_date=PASS, min_area_m2=0)
    assert same.candidates.empty  # not one pixel: the fit takes the whole gain and haze out
    assert same.gains["blue"] == pytest.approx((GAIN, HAZE[1]), rel=1e-3)
    assert appearance_change_candidates(BEFORE, passes["hazy"], pass_date=PASS).candidates.empty
    found = appearance_change_candidates(BEFORE, passes["hazy-patched"], pass_date=PASS).candidates
    assert len(found) == 1  # and the patch under the haze is still found
    truth = patch_box(*PATCHES[0]).to_crs("EPSG:2154").geometry.iloc[0]
    assert abs(found.iloc[0]["area_m2"] - truth.area) / truth.area < 0.25


def test_real_hazy_pass_warns() -> None:
    with pytest.warns(DiagnosticsWarning, match="hardly comparable"):
        change = appearance_change_candidates(S2 / "reference_scene_1.tif", AFTER, pass_date=PASS)
    assert change.candidates.empty or (change.candidates["normalisation_r"] < 0.5).all()


def test_rgb_only_passes_use_brightness(passes: dict[str, Path]) -> None:
    """An orthophoto-like pair (red, green, blue): the patch is found from brightness and texture alone."""
    rgb = {}
    for name, path in (("before", BEFORE), ("after", passes["patched"])):
        array, profile, names = read(path)
        rgb[name] = write(passes["folder"] / f"rgb-{name}.tif", array[[3, 2, 1]], profile, ("red", "green", "blue"))
    change = appearance_change_candidates(rgb["before"], rgb["after"], pass_date=PASS)
    assert change.bands == ("blue", "green", "red")
    assert len(change.candidates) == 1 and np.isnan(change.candidates.iloc[0]["ndvi_drop_mean"])
    truth = patch_box(*PATCHES[0]).to_crs("EPSG:2154").geometry.iloc[0]
    assert abs(change.candidates.iloc[0]["area_m2"] - truth.area) / truth.area < 0.25
    assert appearance_change_candidates(rgb["before"], rgb["before"], pass_date=PASS).candidates.empty


def test_exclusion_footprint_masks_the_patch(passes: dict[str, Path]) -> None:
    around = patch_box(*PATCHES[0]).buffer(20)
    assert appearance_change_candidates(BEFORE, passes["patched"], pass_date=PASS,
                                        exclude=gpd.GeoDataFrame(geometry=around)).candidates.empty


def test_partial_overlap_uses_the_intersection(passes: dict[str, Path]) -> None:
    array, profile, names = read(passes["patched"])
    part = write(passes["folder"] / "west.tif", array[:, :, :60], {**profile, "width": 60}, names)
    change = appearance_change_candidates(BEFORE, part, pass_date=PASS)
    assert change.shape == (101, 60) and change.resampled is None
    assert len(change.candidates) == 1


def test_cli_writes_candidats_with_sensitive_distances(passes: dict[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("GEOVIGIE_")]:
        monkeypatch.delenv(key)
    patch = patch_box(*PATCHES[0]).to_crs("EPSG:2154").geometry.iloc[0]
    x0, y0, x1, y1 = patch.bounds
    river = gpd.GeoDataFrame({"name": ["potok"]}, geometry=[box(x1 + 100, y0 - 50, x1 + 102, y1 + 50)],
                             crs="EPSG:2154")
    river.to_file(tmp_path / "water.gpkg")
    (tmp_path / "none.toml").write_text("# no settings\n")
    env = {"GEOVIGIE_CONFIG": str(tmp_path / "none.toml"), "GEOVIGIE_DATA_DIR": str(tmp_path / "gv"),
           "GEOVIGIE_STAC_BACKEND": "static", "HOME": str(tmp_path)}
    args = ["diagnose", "dumps-appearance", "--before", str(BEFORE), "--watch", "slovenia"]
    result = CliRunner().invoke(app, [*args, "--after", str(passes["patched"]), "--date", "2015-09-09",
                                      "--sensitive", f"water={tmp_path / 'water.gpkg'}"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "candidats (not validated): 1 candidats" in result.stderr
    exports = tmp_path / "gv" / "diagnostics" / "dumps" / "slovenia" / "exports"
    assert sorted(p.name for p in exports.iterdir()) == [f"candidats-appearance-20150909.{s}"
                                                         for s in ("csv", "geojson", "gpkg")]
    table = gpd.read_file(exports / "candidats-appearance-20150909.gpkg")
    assert len(table) == 1 and bool(table["candidate"].iloc[0])
    assert table["dist_water_m"].iloc[0] == pytest.approx(100, abs=15)  # Lambert-93 vs UTM: not exactly 100
    assert table["nearest_water"].iloc[0] == "potok"
    items = [p for p in (tmp_path / "gv").rglob("*.json") if "dumps-appearance-slovenia" in p.read_text()]
    assert any("Candidats" in p.read_text() for p in items)
    again = CliRunner().invoke(app, [*args, "--after", str(AFTER), "--date", "2015-09-10"], env=env)
    assert again.exit_code == 0, again.stderr
    assert "no candidate" in again.stderr
    assert len(gpd.read_file(exports / "candidats-appearance-20150910.gpkg")) == 0
    hazy = CliRunner().invoke(app, ["diagnose", "dumps-appearance", "--before", str(S2 / "reference_scene_1.tif"),
                                    "--after", str(AFTER), "--watch", "slovenia", "--date", "2015-09-11"], env=env)
    assert hazy.exit_code == 0, hazy.stderr
    assert "passes hardly comparable" in hazy.stderr and "DiagnosticsWarning" not in hazy.stderr


ORTHO = DATA / "ortho-like-gers"
ORTHO_SOIL = {"rvb.tif": np.array([143.0, 122.0, 112.0]), "irc.tif": np.array([102.0, 143.0, 122.0])}  # 8-bit


def vegetated_block(size: int = 8) -> tuple[int, int]:
    """Top-left pixel of the first 4 × 4 block inside an 8 × 8 square where every NDVI > 0.4 (IRC pass)."""
    with rasterio.open(ORTHO / "irc.tif") as src:
        nir, red = src.read(1).astype(float), src.read(2).astype(float)
    green = (nir - red) / np.maximum(nir + red, 1) > 0.4
    for row in range(2, green.shape[0] - size):
        for col in range(2, green.shape[1] - size):
            if green[row - 2:row - 2 + size, col - 2:col - 2 + size].all():
                return row, col
    raise AssertionError("no vegetated 8 × 8 block in the IRC pass")


@pytest.mark.parametrize("name", ["rvb.tif", "irc.tif"])
def test_orthophoto_like_uint8_pass(name: str, tmp_path: Path) -> None:
    """8-bit orthophoto layout (RVB: brightness path; IRC = nir, red, green: NDVI path, no blue) with a SYNTHETIC
    bare patch; the pass against itself finds nothing."""
    row, col = vegetated_block()
    array, profile, names = read(ORTHO / name)
    factor = np.clip(1 + 0.35 * np.random.default_rng(3).standard_normal((4, 4)), 0.3, 2.0)
    patched = array.astype(float)
    patched[:, row:row + 4, col:col + 4] = ORTHO_SOIL[name][:, None, None] * factor
    after = tmp_path / name
    with rasterio.open(after, "w", **profile) as dst:
        dst.write(np.clip(np.round(patched), 0, 255).astype(np.uint8))
        dst.descriptions = names
    assert appearance_change_candidates(ORTHO / name, ORTHO / name, pass_date=PASS).candidates.empty
    change = appearance_change_candidates(ORTHO / name, after, pass_date=PASS)
    assert ("nir" in change.bands) == (name == "irc.tif") and ("blue" in change.bands) == (name == "rvb.tif")
    found = change.candidates
    assert len(found) == 1, found[["area_m2", "texture_mean"]]
    assert abs(found.iloc[0]["area_m2"] - 1600) / 1600 < 0.25


def test_band_names_given_for_undescribed_bands(passes: dict[str, Path], tmp_path: Path) -> None:
    """An RGB + NIR pair whose bands carry no description (an IGN RVB+IR dalle): named by `band_names`."""
    paths = {}
    for key, path in (("before", BEFORE), ("after", passes["patched"])):
        array, profile, _ = read(path)
        paths[key] = write(tmp_path / f"{key}.tif", array[[3, 2, 1, 7]], profile, ("", "", "", ""))
    names = ["red", "green", "blue", "nir"]
    change = appearance_change_candidates(paths["before"], paths["after"], pass_date=PASS, band_names=names)
    assert change.bands == ("blue", "green", "red", "nir")
    named = appearance_change_candidates(BEFORE, passes["patched"], pass_date=PASS).candidates
    assert len(change.candidates) == 1
    assert change.candidates.iloc[0]["ndvi_drop_mean"] == pytest.approx(named.iloc[0]["ndvi_drop_mean"], rel=0.05)


def test_after_on_a_coarser_grid_is_resampled(passes: dict[str, Path], tmp_path: Path) -> None:
    """The after pass aggregated to 20 m (2 × 2 mean): the 10 m before pass goes onto the 20 m grid."""
    paths = {}
    for key, path in (("clear", AFTER), ("patched", passes["patched"])):
        array, profile, names = read(path)
        coarse = array[:, :100, :100].reshape(13, 50, 2, 50, 2).mean(axis=(2, 4))
        transform = profile["transform"] * rasterio.Affine.scale(2)
        paths[key] = write(tmp_path / f"{key}-20m.tif", coarse, {**profile, "width": 50, "height": 50,
                                                                  "transform": transform}, names)
    clear = appearance_change_candidates(BEFORE, paths["clear"], pass_date=PASS)
    assert clear.resampled == BEFORE.name and clear.shape == (50, 50)
    assert clear.candidates.empty
    found = appearance_change_candidates(BEFORE, paths["patched"], pass_date=PASS).candidates
    assert len(found) == 1
    assert abs(found.iloc[0]["area_m2"] - 1600) / 1600 < 0.25
