"""Change detection block by block gives the whole-array result: candidates crossing block edges and corners are
one candidate with the same area, volume and uncertainty; the sieve is GDAL's; medians are exact.

Inputs: the shipped Slovenia Sentinel-2 passes (scene 3 -> scene 2) with a SYNTHETIC 10 × 10 px bare patch, and
the shipped IGN LiDAR HD surface with a SYNTHETIC mound (the helpers of test_appearance_change / test_dump_change);
random masks and values are SYNTHETIC and seeded. "Whole" is one block covering the raster.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
from shapely.geometry import box

import geovigie.diagnostics._windowed as windowed
from geovigie.diagnostics import appearance_change_candidates, height_change_candidates
from geovigie.diagnostics._windowed import Sieve, blocks, exact_median
from geovigie.settings import Settings
from geovigie.workflows import dump_change
from tests.diagnostics import test_appearance_change as ac
from tests.diagnostics import test_dump_change as dc

WHOLE = 100_000
PATCH = (42, 60, 10)  # row, col, side: crosses a row and a column edge (a corner) of 16 px and 7 px blocks


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("blocks-appearance")
    array, profile, names = ac.read(ac.AFTER)
    patched = ac.with_patch(ac.with_patch(array, *ac.PATCHES[0]), *PATCH[:2], seed=3, size=PATCH[2])
    striped = patched.copy()
    striped[:, 46, :] = np.nan  # SYNTHETIC nodata stripes through the big patch, across blocks
    striped[:, :, 20:22] = np.nan
    return {"patched": ac.write(folder / "patched.tif", patched, profile, names),
            "striped": ac.write(folder / "striped.tif", striped, profile, names)}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("blocks-change")
    surface, transform = dc.real_surface()
    before = np.where(surface != dc.NODATA, surface, np.nan)
    striped = dc.after_pass(surface, transform, noise=0.3, offset=0.2, seed=4)
    striped[:, 61:63] = np.nan  # SYNTHETIC nodata stripes across block rows and columns
    striped[95:98, :] = np.nan
    return {"before": dc.write(folder / "before.tif", before, transform),
            "after": dc.write(folder / "after.tif", dc.after_pass(surface, transform), transform),
            "striped": dc.write(folder / "striped.tif", striped, transform),
            "same": dc.write(folder / "same.tif", before, transform)}


def _same_candidates(whole: gpd.GeoDataFrame, split: gpd.GeoDataFrame, rel: float = 1e-12) -> None:
    assert len(whole) == len(split)
    whole, split = whole.sort_values("detection_id"), split.sort_values("detection_id")
    assert list(whole["detection_id"]) == list(split["detection_id"])
    for column in whole.columns:
        if whole[column].dtype.kind == "f":
            np.testing.assert_allclose(split[column], whole[column], rtol=rel, atol=0, equal_nan=True, err_msg=column)
    for a, b in zip(whole.geometry, split.geometry, strict=True):
        assert a.symmetric_difference(b).area < 1e-6


@pytest.mark.parametrize("block", [7, 16])
def test_patch_across_block_edges_is_one_candidate(images: dict[str, Path], block: int) -> None:
    runs = {b: appearance_change_candidates(ac.BEFORE, images["patched"], pass_date=ac.PASS, min_area_m2=100,
                                            block_px=b) for b in (WHOLE, block)}
    whole, split = runs[WHOLE].candidates, runs[block].candidates
    assert len(whole) == 2  # the 10 × 10 and the 4 × 4 SYNTHETIC patches
    _same_candidates(whole, split)
    assert runs[WHOLE].gains == runs[block].gains and runs[WHOLE].fit_r == runs[block].fit_r
    row, col, side = PATCH
    with rasterio.open(ac.AFTER) as src:
        (x0, y0), (x1, y1) = src.transform * (col, row + side), src.transform * (col + side, row)
        patch = gpd.GeoSeries([box(x0, y0, x1, y1)], crs=src.crs).to_crs(whole.crs).iloc[0]
    big = split[split.intersects(patch)]
    assert len(big) == 1
    assert big["area_m2"].iloc[0] == pytest.approx(patch.area, rel=0.25)
    assert any(row < e < row + side for e in range(block, 200, block))  # a row edge
    assert any(col < e < col + side for e in range(block, 200, block))  # and a column edge: a corner


def test_nodata_stripes_across_blocks(images: dict[str, Path]) -> None:
    runs = {b: appearance_change_candidates(ac.BEFORE, images["striped"], pass_date=ac.PASS, min_area_m2=100,
                                            block_px=b).candidates for b in (WHOLE, 16)}
    _same_candidates(runs[WHOLE], runs[16])
    plain = appearance_change_candidates(ac.BEFORE, images["patched"], pass_date=ac.PASS, min_area_m2=100,
                                         block_px=16).candidates
    assert len(runs[16]) == len(plain) + 1  # the stripe cuts the 10 × 10 patch in two
    assert runs[16]["area_m2"].sum() < plain["area_m2"].sum()


def test_exclusion_footprint_across_blocks(images: dict[str, Path]) -> None:
    with rasterio.open(ac.AFTER) as src:
        (x0, y0), (x1, y1) = src.transform * (62.5, 49), src.transform * (71, 40.5)
        crs = src.crs
    footprint = gpd.GeoDataFrame(geometry=[box(x0, y0, x1, y1)], crs=crs)
    runs = {b: appearance_change_candidates(ac.BEFORE, images["patched"], pass_date=ac.PASS, min_area_m2=100,
                                            exclude=footprint, block_px=b).candidates for b in (WHOLE, 9)}
    _same_candidates(runs[WHOLE], runs[9])
    assert runs[9]["area_m2"].sum() < 8_500  # the footprint took about half of the 10 × 10 patch out (11 579 m²)


def test_resampled_pass_in_blocks_within_float_rounding(images: dict[str, Path], tmp_path: Path) -> None:
    coarse = tmp_path / "coarse.tif"
    with rasterio.open(images["patched"]) as src:
        profile = {**src.profile, "width": src.width // 2, "height": src.height // 2,
                   "transform": src.transform * src.transform.scale(2, 2)}
        data = src.read(out_shape=(src.count, src.height // 2, src.width // 2),
                        resampling=rasterio.enums.Resampling.average)
        names = src.descriptions
    ac.write(coarse, data, profile, names)
    runs = {b: appearance_change_candidates(ac.BEFORE, coarse, pass_date=ac.PASS, min_area_m2=100, block_px=b)
            for b in (WHOLE, 5)}
    assert runs[5].resampled == ac.BEFORE.name
    _same_candidates(runs[WHOLE].candidates, runs[5].candidates, rel=1e-9)


@pytest.mark.parametrize(("after", "options", "sizes"), [
    ("after", {}, (16, 37)), ("striped", {"min_rise_m": 0.3, "min_area_m2": 2.0}, (16,))])
def test_mound_and_noise_across_blocks_equal_whole(models: dict[str, Path], after: str, options: dict,
                                                   sizes: tuple[int, ...]) -> None:
    runs = {b: height_change_candidates(models["before"], models[after], pass_date=dc.PASS, block_px=b, **options)
            for b in (WHOLE, *sizes)}
    whole = runs[WHOLE]
    assert len(whole.candidates) >= 1
    for block in sizes:
        split = runs[block]
        _same_candidates(whole.candidates, split.candidates, rel=0)
        assert (split.noise_m, split.vertical_offset_m, split.stable_px) == (
            whole.noise_m, whole.vertical_offset_m, whole.stable_px)
    mound = whole.candidates.iloc[0]
    assert mound["volume_m3"] == pytest.approx(dc.MOUND_M3, rel=0.05)


def test_identical_passes_in_blocks_give_no_candidate(models: dict[str, Path]) -> None:
    change = height_change_candidates(models["before"], models["same"], pass_date=dc.PASS, block_px=16)
    assert change.candidates.empty and change.noise_m == 0.0 and change.vertical_offset_m == 0.0
    same = appearance_change_candidates(ac.AFTER, ac.AFTER, pass_date=ac.PASS, block_px=32)
    assert same.candidates.empty


@pytest.mark.parametrize("seed", range(40))
def test_sieve_by_blocks_is_gdal_sieve(seed: int) -> None:
    rng = np.random.default_rng(seed)
    height, width = rng.integers(5, 60, 2)
    mask = rng.random((height, width)) < rng.uniform(0.2, 0.8)  # SYNTHETIC noise, clumped one time in two
    if seed % 2:
        mask = np.kron(mask, np.ones((3, 3), dtype=bool))[:height, :width]
    size, block = int(rng.integers(2, 30)), int(rng.integers(1, 20))
    expected = rasterio.features.sieve(mask.astype(np.uint8), size=min(size, mask.size - 1),
                                       connectivity=4).astype(bool)
    sieve = Sieve(int(height), int(width), size)
    for window in blocks(int(height), int(width), block):
        sieve.add(window, mask[window.toslices()])
    sieve.resolve()
    out = np.zeros_like(mask)
    for window in blocks(int(height), int(width), block):
        out[window.toslices()] = sieve.apply(window, mask[window.toslices()])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("collect_max", [4_000_000, 10, 0])
@pytest.mark.parametrize("count", [0, 1, 2, 7, 5001])
def test_exact_median_streams(monkeypatch: pytest.MonkeyPatch, collect_max: int, count: int) -> None:
    monkeypatch.setattr(windowed, "COLLECT_MAX", collect_max)
    rng = np.random.default_rng(count)
    values = rng.normal(0.0, 0.1, count)
    values[::7] *= -1e5  # SYNTHETIC outliers of both signs
    values[::5] = np.round(values[::5], 1)  # and ties
    chunks = np.array_split(values, 6)
    median, seen = exact_median(lambda: iter(chunks))
    assert seen == count
    assert median == np.median(values) if count else np.isnan(median)


def test_progress_reports_each_pass(models: dict[str, Path]) -> None:
    seen: list[tuple[int, int]] = []
    height_change_candidates(models["before"], models["after"], pass_date=dc.PASS, block_px=64,
                             progress=lambda done, total: seen.append((done, total)))
    starts, ends = [s for s in seen if s[0] == 0], [s for s in seen if s[0] == s[1]]
    assert len(starts) == len(ends) >= 5  # offset, raised ground, candidates, stable ground, noise
    assert {total for _, total in seen} == {len(blocks(200, 300, 64))}


def test_two_runs_at_once_leave_one_set_of_outputs(models: dict[str, Path], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            dump_change(models["before"], models["after"], settings, watch="w", pass_date=date(2024, 5, 1),
                        block_px=64)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    exports = sorted(p.name for p in (tmp_path / "gv").rglob("candidats-change-*"))
    assert exports == ["candidats-change-20240501.csv", "candidats-change-20240501.geojson",
                       "candidats-change-20240501.gpkg"]
    files = [p.relative_to(tmp_path / "gv") for p in (tmp_path / "gv").rglob("*") if p.is_file()]
    assert not [p for p in files if ".tmp" in p.name or (p.name.startswith(".") and p.name != ".lock")], files
    assert len([p for p in files if p.suffix == ".json" and p.stem.startswith("dumps-change-w")]) == 1, files
    frame = gpd.read_file(tmp_path / "gv" / "diagnostics" / "dumps" / "w" / "exports" /
                          "candidats-change-20240501.gpkg")
    assert len(frame) == 1


def test_cli_block_option(models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._support.figures import run_cli

    code, stderr = run_cli(["diagnose", "dumps-change", "--dsm-before", str(models["before"]), "--dsm-after",
                            str(models["after"]), "--watch", "w", "--date", "2024-05-01", "--block", "16"],
                           tmp_path, monkeypatch)
    assert code == 0, stderr
    found = gpd.read_file(tmp_path / "gv" / "diagnostics" / "dumps" / "w" / "exports" /
                          "candidats-change-20240501.gpkg")
    whole = height_change_candidates(models["before"], models["after"], pass_date=dc.PASS).candidates
    assert len(found) == len(whole) == 1
    assert found["volume_m3"].iloc[0] == pytest.approx(whole["volume_m3"].iloc[0], rel=1e-12)
