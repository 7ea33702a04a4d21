"""Bad input to the block-by-block change detectors (`geovigie diagnose dumps-appearance` / `dumps-change`): one
`error:` line naming the problem (option, both files), exit code 2, no traceback, nothing left behind.

Inputs are made here from the shipped Sentinel-2 L1C Slovenia scene 2 and one shipped IGN LiDAR HD DSM tile: the
same pixels declared in another CRS, or moved away.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import rasterio
from affine import Affine

from geovigie.diagnostics import appearance_change_candidates, height_change_candidates
from geovigie.errors import InvalidInputError
from tests._support.figures import assert_fails_cleanly
from tests.conftest import DATA

SCENE = DATA / "s2-l1c-slovenia" / "reference_scene_2.tif"
DSM = sorted((DATA / "lidarhd-montpellier-ign" / "DSM").glob("*.tif"))[0]


def _copy(source: Path, path: Path, crs: str | None = None, shift: float = 0.0) -> None:
    with rasterio.open(source) as src:
        profile, array, names = src.profile, src.read(), src.descriptions
    profile.update(crs=crs or profile["crs"], transform=Affine.translation(shift, 0) * profile["transform"])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        dst.descriptions = names


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("blocks-bad")
    _copy(SCENE, folder / "utm34.tif", "EPSG:32634")
    _copy(DSM, folder / "dsm_utm31.tif", "EPSG:32631")
    _copy(DSM, folder / "dsm_far.tif", shift=10_000.0)
    return folder


def _appearance(after: str = str(SCENE), *extra: str) -> tuple[str, ...]:
    return ("diagnose", "dumps-appearance", "--before", str(SCENE), "--after", after, "--watch", "w",
            "--date", "2017-06-01", *extra)


def _change(after: str = str(DSM), *extra: str) -> tuple[str, ...]:
    return ("diagnose", "dumps-change", "--dsm-before", str(DSM), "--dsm-after", after, "--watch", "w",
            "--date", "2024-05-01", *extra)


CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "block-under-texture-halo": (_appearance(str(SCENE), "--texture-window", "9", "--block", "3"),
                                 ("--block 3", "4 px", "texture window")),
    "block-zero": (_appearance(str(SCENE), "--block", "0"), ("--block 0", "1 px")),
    "block-under-stable-margin": (_change(str(DSM), "--block", "1"), ("--block 1", "2 px", "stable-ground")),
    "appearance-grid-crs": (_appearance("{in}/utm34.tif", "--block", "16"),
                            ("utm34.tif", "reference_scene_2.tif", "EPSG:32634", "EPSG:32633")),
    "change-grid-crs": (_change("{in}/dsm_utm31.tif", "--block", "16"),
                        ("dsm_utm31.tif", DSM.name, "EPSG:32631", "EPSG:2154")),
    "change-no-overlap": (_change("{in}/dsm_far.tif", "--block", "16"), ("dsm_far.tif", DSM.name, "does not overlap")),
}



@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_error_line(name: str, inputs: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert_fails_cleanly(*CASES[name], inputs, tmp_path, monkeypatch)


def test_library_refuses_a_block_under_the_halo() -> None:
    with pytest.raises(InvalidInputError, match=r"block_px 2: .*>= 3 \(the 3 px halo the texture window"):
        appearance_change_candidates(SCENE, SCENE, pass_date=date(2017, 6, 1), window_px=7, block_px=2)
    with pytest.raises(InvalidInputError, match=r"block_px 1: .*>= 2 \(the 2 px halo the stable-ground margin"):
        height_change_candidates(DSM, DSM, pass_date=date(2024, 5, 1), block_px=1)
