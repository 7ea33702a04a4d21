"""Bad `--min-observed` (share of an earlier dump site's footprint a pass must observe to call it removed): one
`error:` line naming the option, exit code 2, no traceback, nothing left behind. The layer is the real IGN LiDAR HD
height stand-in of Montpellier (tests/_support/lidar.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from geovigie.errors import InvalidInputError
from geovigie.settings import Settings
from geovigie.workflows import dump_sites
from tests._support.figures import assert_fails_cleanly, run_cli
from tests._support.lidar import write_lidar_layers


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lidar_layers(tmp_path_factory.mktemp("tracking-bad"))["probability"]


@pytest.mark.parametrize("value", ["0", "-0.2", "1.5", "nan"])
def test_bad_min_observed_gives_one_error_line(value: str, layer: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["diagnose", "dumps", str(layer), "--watch", "w", "--date", "2024-05-01", "--threshold", "0.2",
            "--min-observed", value]
    assert_fails_cleanly(args, ("error: --min-observed ", "(0, 1]"), layer.parent, tmp_path, monkeypatch)


@pytest.mark.parametrize("value", [0, 1.01, float("nan"), True, "0.5"])
def test_bad_min_observed_in_the_workflow_writes_nothing(value: object, layer: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    with pytest.raises(InvalidInputError, match="min_observed"):
        dump_sites(layer, settings, watch="w", pass_date=date(2024, 5, 1), threshold=0.2,
                   min_observed=value)  # type: ignore[arg-type]
    assert not (tmp_path / "gv").exists()  # checked before the lock creates the watch folder


def test_cli_reports_sites_not_observed_apart(layer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a bad input: the partly observed pass the option is about (nodata written over the real layer's west)."""
    import rasterio

    work = tmp_path / "work"
    work.mkdir()
    with rasterio.open(layer) as src:
        band, profile = src.read(1), src.profile
    band[:, : band.shape[1] // 2] = 255
    profile.update(driver="GTiff")
    half = tmp_path / "half.tif"
    with rasterio.open(half, "w", **profile) as dst:
        dst.write(band[None])
    base = ["diagnose", "dumps", "--watch", "w", "--threshold", "0.2"]
    code, stderr = run_cli([*base[:2], str(layer), *base[2:], "--date", "2024-05-01"], work, monkeypatch)
    assert code == 0, stderr
    code, stderr = run_cli([*base[:2], str(half), *base[2:], "--date", "2024-06-01"], work, monkeypatch)
    assert code == 0, stderr
    import pandas as pd

    table = pd.read_csv(work / "gv" / "diagnostics" / "dumps" / "w" / "exports" / "sites-20240601.csv")
    unseen = int((table["status"] == "not_observed").sum())
    assert unseen > 0 and not (table["status"] == "removed").any()
    assert f"not observed (non observé): {unseen} earlier sites under this pass's nodata (less than 50% of" in stderr


@pytest.mark.parametrize("value", [0, -0.1, 1.5])
def test_bad_min_observed_in_a_dumps_job_is_refused_naming_the_field(value: float) -> None:
    from pydantic import ValidationError

    from geovigie.service.job_inputs import DumpsIn

    assert DumpsIn(height_model="lidarhd-montpellier-ign").min_observed == 0.5
    with pytest.raises(ValidationError, match="min_observed"):
        DumpsIn(height_model="lidarhd-montpellier-ign", min_observed=value)
