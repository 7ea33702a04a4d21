"""ZAN accounting on IGN's real 2016 / 2019 odeon labels, against independent numpy counts."""

from __future__ import annotations

from collections import deque
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from geovigie.diagnostics import change_map, load_mapping, read_reference_consumption, zan_by_zone
from geovigie.errors import DiagnosticsWarning, GridMismatchError, InvalidInputError
from tests.conftest import DATA

ODEON = DATA / "odeon-change-labels-2016-2019"
PATCHES = sorted(p.name for p in (ODEON / "2016" / "naf").glob("*.tiff"))
ARTIFICIAL, NATURAL = {1, 2, 3, 4}, set(range(5, 16))
PIXEL_M2 = 0.25 * 0.25


def _labels(year: str, name: str) -> np.ndarray:
    with rasterio.open(ODEON / year / "naf" / name) as src:
        return src.read(1)


def _components_at_least(mask: np.ndarray, min_px: float) -> np.ndarray:
    """4-connected components of `mask` with at least `min_px` pixels, by breadth-first search (independent)."""
    seen = np.zeros_like(mask)
    kept = np.zeros_like(mask)
    height, width = mask.shape
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        queue, members = deque([start]), []
        seen[start] = True
        while queue:
            r, c = queue.popleft()
            members.append((r, c))
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < height and 0 <= nc < width and mask[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    queue.append((nr, nc))
        if len(members) >= min_px:
            rows, cols = zip(*members, strict=True)
            kept[list(rows), list(cols)] = True
    return kept


@pytest.mark.parametrize("name", PATCHES)
def test_change_areas_match_numpy_with_and_without_mmu(name: str, tmp_path: Path) -> None:
    before, after = _labels("2016", name), _labels("2019", name)
    labelled = (before != 0) & (after != 0)
    gained = np.isin(before, list(NATURAL)) & np.isin(after, list(ARTIFICIAL)) & labelled
    lost = np.isin(before, list(ARTIFICIAL)) & np.isin(after, list(NATURAL)) & labelled
    mapping = load_mapping("odeon-naf")
    raw = change_map(ODEON / "2016/naf" / name, ODEON / "2019/naf" / name, mapping, tmp_path / "raw.tif",
                     apply_mmu=False)
    assert raw.artificialised_m2 == pytest.approx(gained.sum() * PIXEL_M2)
    assert raw.renaturalised_m2 == pytest.approx(lost.sum() * PIXEL_M2)
    assert raw.artificialised_m2 > 1000  # zone_permeable appeared on both patches between 2016 and 2019
    mmu = change_map(ODEON / "2016/naf" / name, ODEON / "2019/naf" / name, mapping, tmp_path / "mmu.tif")
    # no building class changes here: every patch gets the 500 m² MMU of other features
    expected = _components_at_least(gained, 500 / PIXEL_M2).sum() * PIXEL_M2
    assert mmu.artificialised_m2 == pytest.approx(expected)
    assert mmu.artificialised_m2 < raw.artificialised_m2
    with rasterio.open(tmp_path / "mmu.tif") as src:
        codes = src.read(1)
    assert (codes == 255).sum() == (~labelled).sum()
    assert (codes == 2).sum() * PIXEL_M2 == pytest.approx(expected)


def test_zone_table_with_an_illustrative_reference(tmp_path: Path) -> None:
    name = PATCHES[0]
    mapping = load_mapping("odeon-naf")
    raw = change_map(ODEON / "2016/naf" / name, ODEON / "2019/naf" / name, mapping, tmp_path / "raw.tif",
                     apply_mmu=False)
    mmu = change_map(ODEON / "2016/naf" / name, ODEON / "2019/naf" / name, mapping, tmp_path / "mmu.tif")
    with rasterio.open(raw.path) as src:
        west, south, east, north = src.bounds
    from shapely.geometry import box

    zones = gpd.GeoDataFrame({"zone_id": ["6275328", "west"], "zone_name": ["patch", "west half"]},
                             geometry=[box(west, south, east, north), box(west, south, (west + east) / 2, north)],
                             crs="EPSG:2154")
    reference = read_reference_consumption(ODEON / "reference_consumption_ILLUSTRATIVE.csv")
    period = {"start": date(2016, 7, 1), "end": date(2019, 7, 1), "reference": reference}
    # 9 % of this patch is unlabelled: below the 0.95 default for totals, its hectares are null, not a figure
    with pytest.warns(DiagnosticsWarning, match="1 partial"):
        strict = zan_by_zone(zones, raw.path, mmu.path, **period).set_index("zone_id")
    assert strict.loc["6275328", "status"] == "partial" and 0.9 < strict.loc["6275328", "covered_fraction"] < 0.95
    assert strict.loc["6275328", ["artificialised_m2", "net_ha", "measured_vs_target"]].isna().all()
    table = zan_by_zone(zones, raw.path, mmu.path, min_coverage=0.9, **period).set_index("zone_id")
    assert table.loc["6275328", "status"] == "covered"
    assert table.loc["6275328", "artificialised_m2"] == pytest.approx(mmu.artificialised_m2)
    assert table.loc["6275328", "artificialised_m2_no_mmu"] == pytest.approx(raw.artificialised_m2)
    assert table.loc["west", "artificialised_m2"] <= table.loc["6275328", "artificialised_m2"]
    assert table.loc["6275328", "artificialised_ha_per_year"] == pytest.approx(
        mmu.artificialised_m2 / 1e4 / (1095 / 365.25))
    assert bool(table.loc["6275328", "illustrative"])
    assert table.loc["6275328", "target_ha_per_year_2021_2031"] == pytest.approx(0.5 / 10 / 2)


def test_bad_inputs(tmp_path: Path) -> None:
    name = PATCHES[0]
    partial = tmp_path / "partial.toml"
    partial.write_text('nodata = [0]\nbuilding = [1]\nartificial = [2]\nnatural = [8, 10, 11]\n')
    with pytest.raises(InvalidInputError, match=r"classes \[13\].*not in the ZAN mapping"):
        change_map(ODEON / "2016/naf" / name, ODEON / "2019/naf" / name, load_mapping(partial), tmp_path / "x.tif")
    shifted = tmp_path / "shifted.tif"
    with rasterio.open(ODEON / "2019/naf" / name) as src:
        profile, data = src.profile, src.read()
    profile.update(transform=src.transform * rasterio.Affine.translation(1, 0))
    with rasterio.open(shifted, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(GridMismatchError, match="transform"):
        change_map(ODEON / "2016/naf" / name, shifted, load_mapping("odeon-naf"), tmp_path / "y.tif")
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "y.tif").exists()
