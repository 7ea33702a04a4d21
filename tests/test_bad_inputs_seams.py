"""Config files and rules read by the one reader (`geovigie.config_file`): a ZAN mapping, an experiment config
and the input scaling rule answer one `error:` line naming the file and the key, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.errors import InvalidInputError
from geovigie.inference import PredictOptions
from geovigie.settings import Settings

DATA = Path(__file__).resolve().parents[1] / "data"
ODEON = DATA / "odeon-change-labels-2016-2019"
PATCH = "zone_v13_478208-0000_6275584-0000.tiff"

MAPPINGS: dict[str, tuple[str, str]] = {
    "misspelt category": ("natual = [5]\n", "unknown key 'natual' (remove it or check its spelling)"),
    "class not a number": ('natural = ["forest"]\n', "natural.0: Input should be a valid integer"),
    "not TOML": ("natural = [5\n", "not valid TOML"),
    "class in two categories": ("natural = [5]\nartificial = [5]\n", "class 5 is both artificial and natural"),
}


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    return lines[0]


def _zones(folder: Path) -> Path:
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    with rasterio.open(ODEON / "2016/naf" / PATCH) as src:
        gpd.GeoDataFrame({"zone_id": ["p"]}, geometry=[box(*src.bounds)], crs=src.crs).to_file(folder / "zones.geojson")
    return folder / "zones.geojson"


@pytest.mark.parametrize("name", list(MAPPINGS))
def test_bad_zan_mapping_is_one_error_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body, message = MAPPINGS[name]
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(body, encoding="utf-8")
    zones = _zones(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["diagnose", "zan", "--before", str(ODEON / "2016/naf" / PATCH), "--after",
                                      str(ODEON / "2019/naf" / PATCH), "--start", "2016-07-01", "--end",
                                      "2019-07-01", "--mapping", str(mapping), "--zones", str(zones)])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert str(mapping) in line and message in line and "Value error" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mapping.toml", "zones.geojson"]


def test_experiment_config_not_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "experiment.toml"
    config.write_text("[images\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert str(config) in line and "not valid TOML" in line


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_input_scale_is_finite_and_above_zero_everywhere(scale: float) -> None:
    with pytest.raises(ValueError, match="input_scale must be a finite number above 0"):
        Settings(input_scale=scale)
    with pytest.raises(InvalidInputError, match="input_scale must be a finite number above 0"):
        PredictOptions(input_scale=scale)


def test_input_scale_boundary_is_accepted() -> None:
    assert PredictOptions(input_scale=1e-12).input_scale == 1e-12
    assert Settings(input_scale=1e-12, input_offset=-0.1).input_offset == -0.1


def test_bad_input_scale_from_the_environment_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_INPUT_SCALE", "-0.0001")
    result = CliRunner().invoke(app, ["catalog", "search"])
    assert result.exit_code == 2, result.output
    assert "input_scale (GEOVIGIE_INPUT_SCALE): input_scale must be a finite number above 0" in \
        _one_error_line(result.output)


@pytest.mark.parametrize("reader", ["read_zones", "read_vector"])
def test_zones_without_a_feature_say_so_the_same_way(reader: str, tmp_path: Path) -> None:
    import geovigie.diagnostics as diagnostics
    from geovigie.errors import InvalidZonesError

    empty = tmp_path / "zones.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    with pytest.raises(InvalidZonesError, match="zones.geojson: no feature with a geometry for zones"):
        getattr(diagnostics, reader)(empty)
    garbage = tmp_path / "zones.gpkg"
    garbage.write_bytes(b"not a GeoPackage")
    with pytest.raises(InvalidZonesError, match="zones.gpkg: not a readable vector file for zones"):
        getattr(diagnostics, reader)(garbage)
