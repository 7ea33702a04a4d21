"""Dump candidates from a change between two height models, on the shipped IGN LiDAR HD surface model.

No two real passes of one place ship with geovigie (the Montpellier tiles are one pass), so the "after" pass is
the real "before" surface with a SYNTHETIC mound added by the test: a pile shaped like tipped loads (a frustum,
45° sides, 3 m high, 8 m base radius) of known volume π h / 3 (R² + R r + r²) = 405 m³, plus, where said,
SYNTHETIC Gaussian height noise standing in for a second survey's error.
"""

from __future__ import annotations

import math
import os
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio.merge import merge
from shapely.geometry import Point, box
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.cog import write_array_cog
from geovigie.diagnostics import CHANGE_NOTE, height_change_candidates
from geovigie.errors import DiagnosticsWarning
from tests.conftest import DATA

LIDAR = DATA / "lidarhd-montpellier-ign"
NODATA = -9999.0
PASS = date(2024, 5, 1)
CENTRE = (770525.0, 6277525.0)  # in the south-west tile, 25 m from its edges
BASE_R, TOP_R, HEIGHT = 8.0, 5.0, 3.0
MOUND_M3 = math.pi * HEIGHT / 3 * (BASE_R**2 + BASE_R * TOP_R + TOP_R**2)  # 405.3 m³
SIGMA = 0.05  # synthetic survey noise, m


def real_surface() -> tuple[np.ndarray, Affine]:
    """The 5 shipped DSM tiles merged on their 0.5 m grid (300 × 200 px, one 50 × 50 m corner nodata)."""
    arrays, transform = merge(sorted((LIDAR / "DSM").glob("*.tif")))
    return arrays[0].astype(np.float64), transform


def synthetic_mound(shape: tuple[int, int], transform: Affine, centre: tuple[float, float] = CENTRE) -> np.ndarray:
    """SYNTHETIC pile heights (m) at each pixel centre: a frustum of known volume MOUND_M3."""
    rows, cols = np.indices(shape)
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    radius = np.hypot(x - centre[0], y - centre[1])
    return np.clip((BASE_R - radius) / (BASE_R - TOP_R), 0.0, 1.0) * HEIGHT


def write(path: Path, array: np.ndarray, transform: Affine, crs: str = "EPSG:2154") -> Path:
    out = np.where(np.isfinite(array), array, NODATA).astype(np.float32)
    write_array_cog(path, out[None], profile={"driver": "GTiff", "crs": crs, "transform": transform,
                                              "nodata": NODATA})
    return path


def after_pass(before: np.ndarray, transform: Affine, *, noise: float = SIGMA, mound: bool = True,
               offset: float = 0.0, seed: int = 0) -> np.ndarray:
    """The real surface + the SYNTHETIC mound + SYNTHETIC noise and vertical offset, nodata kept."""
    valid = before != NODATA
    rng = np.random.default_rng(seed)
    after = before + offset + (synthetic_mound(before.shape, transform) if mound else 0.0)
    after += rng.normal(0.0, noise, before.shape) if noise else 0.0
    return np.where(valid, after, np.nan)


@pytest.fixture(scope="module")
def passes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("change")
    surface, transform = real_surface()
    before = np.where(surface != NODATA, surface, np.nan)
    return {"before": write(folder / "before.tif", before, transform),
            "after": write(folder / "after.tif", after_pass(surface, transform), transform),
            "folder": folder}


def test_synthetic_mound_found_with_its_volume(passes: dict[str, Path]) -> None:
    change = height_change_candidates(passes["before"], passes["after"], pass_date=PASS)
    found = change.candidates
    assert len(found) == 1
    row = found.iloc[0]
    assert abs(row["volume_m3"] - MOUND_M3) / MOUND_M3 < 0.05, (row["volume_m3"], MOUND_M3)
    # the pile's footprint above the 0.5 m threshold: radius 8 − 0.5 = 7.5 m
    assert row["area_m2"] == pytest.approx(math.pi * 7.5**2, rel=0.05)
    assert Point(row["centroid_x_l93"], row["centroid_y_l93"]).distance(Point(CENTRE)) < 0.5
    assert change.noise_m == pytest.approx(SIGMA, rel=0.1)  # measured on the stable ground
    # uncertainty: the measured noise over the counted footprint (no gap here)
    assert row["volume_uncertainty_m3"] == pytest.approx(change.noise_m * row["area_m2"], rel=0.1)
    assert abs(row["volume_m3"] - MOUND_M3) < 2 * row["volume_uncertainty_m3"]
    assert row["candidate"] and row["note"] == CHANGE_NOTE and "candidat" in row["note"]
    assert row["valid_fraction"] == 1.0 and row["height_max_m"] == pytest.approx(HEIGHT, abs=4 * SIGMA)
    assert change.resampled is None


def test_no_change_finds_nothing(passes: dict[str, Path]) -> None:
    same = height_change_candidates(passes["before"], passes["before"], pass_date=PASS)
    assert same.candidates.empty and same.noise_m == 0.0 and same.vertical_offset_m == 0.0
    surface, transform = real_surface()
    noisy = write(passes["folder"] / "noise-only.tif", after_pass(surface, transform, mound=False, seed=1),
                  transform)
    only_noise = height_change_candidates(passes["before"], noisy, pass_date=PASS)
    assert only_noise.candidates.empty
    assert only_noise.noise_m == pytest.approx(SIGMA, rel=0.1)


def test_vertical_offset_between_passes_removed(passes: dict[str, Path]) -> None:
    surface, transform = real_surface()
    shifted = write(passes["folder"] / "shifted.tif", after_pass(surface, transform, offset=0.3, seed=2), transform)
    change = height_change_candidates(passes["before"], shifted, pass_date=PASS)
    assert change.vertical_offset_m == pytest.approx(0.3, abs=0.01)
    assert len(change.candidates) == 1  # a 0.3 m shift of the whole pass is not a 5 ha dump
    assert abs(change.candidates.iloc[0]["volume_m3"] - MOUND_M3) / MOUND_M3 < 0.05


def test_mound_inside_building_footprint_is_masked(passes: dict[str, Path]) -> None:
    x, y = CENTRE
    around = gpd.GeoDataFrame(geometry=[box(x - 10, y - 10, x + 10, y + 10)], crs="EPSG:2154")
    assert height_change_candidates(passes["before"], passes["after"], pass_date=PASS,
                                    buildings=around).candidates.empty
    half = gpd.GeoDataFrame(geometry=[box(x, y - 10, x + 10, y + 10)], crs="EPSG:2154").to_crs("EPSG:4326")
    found = height_change_candidates(passes["before"], passes["after"], pass_date=PASS, buildings=half).candidates
    assert len(found) == 1
    assert found.iloc[0]["area_m2"] == pytest.approx(math.pi * 7.5**2 / 2, rel=0.08)
    assert found.geometry.iloc[0].intersection(half.to_crs("EPSG:2154").geometry.iloc[0]).area < 1.0


def test_nodata_hole_in_one_pass(passes: dict[str, Path]) -> None:
    surface, transform = real_surface()
    after = after_pass(surface, transform)
    col, row = ~transform * CENTRE
    after[int(row) - 3:int(row) + 3, int(col) + 6:int(col) + 12] = np.nan  # 6 × 6 px (9 m²) on the pile's flank
    holed = write(passes["folder"] / "holed.tif", after, transform)
    found = height_change_candidates(passes["before"], holed, pass_date=PASS).candidates
    assert len(found) == 1
    row_ = found.iloc[0]
    assert row_["valid_fraction"] < 1.0
    assert abs(row_["volume_m3"] - MOUND_M3) / MOUND_M3 < 0.05
    full = height_change_candidates(passes["before"], passes["after"], pass_date=PASS).candidates.iloc[0]
    assert row_["volume_uncertainty_m3"] > full["volume_uncertainty_m3"]  # the gap adds to it


def test_after_on_a_coarser_grid_is_resampled(passes: dict[str, Path]) -> None:
    surface, transform = real_surface()
    fine = after_pass(surface, transform, noise=0.0)
    coarse = fine.reshape(100, 2, 150, 2).mean(axis=(1, 3))  # 1 m pixels (a NaN anywhere leaves the pixel empty)
    coarse_path = write(passes["folder"] / "after-1m.tif", coarse, transform @ Affine.scale(2))
    change = height_change_candidates(passes["before"], coarse_path, pass_date=PASS)
    assert change.resampled == "before.tif" and change.shape == (100, 150)  # the finer pass goes to the 1 m grid
    assert len(change.candidates) == 1
    assert abs(change.candidates.iloc[0]["volume_m3"] - MOUND_M3) / MOUND_M3 < 0.05


def test_partial_overlap_uses_the_intersection(passes: dict[str, Path]) -> None:
    surface, transform = real_surface()
    after = after_pass(surface, transform)[:, :120]  # the after pass covers only the western 60 m
    part = write(passes["folder"] / "after-west.tif", after, transform)
    change = height_change_candidates(passes["before"], part, pass_date=PASS)
    assert change.shape == (200, 120)
    assert len(change.candidates) == 1


def test_too_little_stable_ground_warns(passes: dict[str, Path]) -> None:
    surface, transform = real_surface()
    col, row = ~transform * CENTRE
    window = (slice(int(row) - 15, int(row) + 15), slice(int(col) - 15, int(col) + 15))  # 15 × 15 m on the pile
    crop = transform @ Affine.translation(window[1].start, window[0].start)
    before = write(passes["folder"] / "before-crop.tif", surface[window], crop)
    after = write(passes["folder"] / "after-crop.tif", after_pass(surface, transform)[window], crop)
    with pytest.warns(DiagnosticsWarning, match="stable pixels"):
        change = height_change_candidates(before, after, pass_date=PASS)
    assert change.stable_px < 100 and change.noise_m == pytest.approx(math.sqrt(2) * 0.1)
    assert len(change.candidates) == 1


def test_cli_writes_candidats_with_sensitive_distances(passes: dict[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("GEOVIGIE_")]:
        monkeypatch.delenv(key)
    x, y = CENTRE
    river = gpd.GeoDataFrame({"name": ["ruisseau"]}, geometry=[box(x + 30, y - 50, x + 32, y + 50)], crs="EPSG:2154")
    river.to_file(tmp_path / "water.gpkg")
    (tmp_path / "none.toml").write_text("# no settings\n")
    env = {"GEOVIGIE_CONFIG": str(tmp_path / "none.toml"), "GEOVIGIE_DATA_DIR": str(tmp_path / "gv"),
           "GEOVIGIE_STAC_BACKEND": "static", "HOME": str(tmp_path)}
    result = CliRunner().invoke(app, ["diagnose", "dumps-change", "--dsm-before", str(passes["before"]),
                                      "--dsm-after", str(passes["after"]), "--watch", "montpellier",
                                      "--date", "2024-05-01", "--sensitive", f"water={tmp_path / 'water.gpkg'}"],
                                env=env)
    assert result.exit_code == 0, result.stderr
    assert "candidats" in result.stderr
    exports = tmp_path / "gv" / "diagnostics" / "dumps" / "montpellier" / "exports"
    names = sorted(p.name for p in exports.iterdir())
    assert names == [f"candidats-change-20240501.{s}" for s in ("csv", "geojson", "gpkg")]
    table = gpd.read_file(exports / "candidats-change-20240501.gpkg")
    assert len(table) == 1 and bool(table["candidate"].iloc[0])
    assert table["dist_water_m"].iloc[0] == pytest.approx(30 - 7.5, abs=0.6)  # river edge to the pile's rim
    assert table["nearest_water"].iloc[0] == "ruisseau"
    items = [p for p in (tmp_path / "gv").rglob("*.json") if "dumps-change-montpellier" in p.read_text()]
    assert any("Candidats" in p.read_text() for p in items)  # the published layer says what it is
    again = CliRunner().invoke(app, ["diagnose", "dumps-change", "--dsm-before", str(passes["before"]),
                                     "--dsm-after", str(passes["before"]), "--watch", "montpellier",
                                     "--date", "2024-05-02"], env=env)
    assert again.exit_code == 0, again.stderr
    assert "no candidate" in again.stderr
    assert len(gpd.read_file(exports / "candidats-change-20240502.gpkg")) == 0


def test_misregistered_passes_give_false_candidates(passes: dict[str, Path]) -> None:
    """The same real pass shifted east: half a pixel leaves nothing above 20 m², 1 m makes building edges and tree
    crowns rise (why passes must be co-registered)."""
    surface, transform = real_surface()
    found = {}
    for shift in (0.5, 1.0):
        moved = write(passes["folder"] / f"shift-{shift}.tif", np.where(surface != NODATA, surface, np.nan),
                      Affine.translation(shift, 0) * transform)
        found[shift] = height_change_candidates(passes["before"], moved, pass_date=PASS).candidates
    assert found[0.5].empty
    assert len(found[1.0]) > 0 and found[1.0]["height_max_m"].max() > 2.0
