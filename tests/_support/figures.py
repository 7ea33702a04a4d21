"""Inputs of the diagnostics tests (shipped rasters and zones) and the command line run in-process on them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovigie.cli import app
from tests.conftest import DATA

ODEON = DATA / "odeon-change-labels-2016-2019"
PATCH = "zone_v13_478208-0000_6275584-0000.tiff"  # fully labelled
BEFORE, AFTER = ODEON / "2016" / "naf" / PATCH, ODEON / "2019" / "naf" / PATCH
LST = DATA / "landsat-lst-muenster" / "LC08_L2SP_196024_20240813_20240822_02_T1_ST_B10.TIF"
EXTRA = DATA / "landsat-lst-muenster-extra"
URBAN = EXTRA / "muenster_urban_core.geojson"
LIDAR = DATA / "lidarhd-montpellier-ign"
DSM = LIDAR / "DSM" / "test_data_77050_627755_LA93_IGN69_50CM_TIN.tif"
DTM = LIDAR / "DTM" / "test_data_77050_627755_LA93_IGN69_50CM_TIN.tif"


def run_cli(args: list[str], work: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """The real command line, in-process, with the data directory under `work`."""
    monkeypatch.chdir(work)
    for key in [k for k in os.environ if k.startswith("GEOVIGIE_")]:
        monkeypatch.delenv(key)
    env = {"GEOVIGIE_CONFIG": str(work / "none.toml"), "GEOVIGIE_DATA_DIR": str(work / "gv"),
           "GEOVIGIE_SAMPLE_DATA_DIR": str(DATA), "GEOVIGIE_STAC_BACKEND": "static", "HOME": str(work)}
    (work / "none.toml").write_text("# no settings\n")
    result = CliRunner().invoke(app, args, env=env)
    traceback = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback as tb

        traceback = "Traceback\n" + "".join(tb.format_exception(result.exception))
    return result.exit_code, result.stderr + traceback


def files_under(folder: Path) -> set[str]:
    """Every path below `folder`, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_fails_cleanly(args: tuple[str, ...] | list[str], words: tuple[str, ...], inputs: Path, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch, setup: Callable[[Path], None] | None = None) -> None:
    """Run the command line on a bad input (`{in}` in `args` and `words` is the `inputs` folder): exit 2, one
    `error:` line naming every word, no traceback, nothing written in the working folder, the inputs untouched."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "none.toml").write_text("# no settings\n")
    if setup is not None:
        setup(work)
    before, inputs_before = files_under(work), files_under(inputs)
    code, stderr = run_cli([a.format(**{"in": str(inputs)}) for a in args], work, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in words:
        assert word.format(**{"in": str(inputs)}) in lines[0], (word, lines[0])
    assert files_under(work) == before, files_under(work) - before
    assert files_under(inputs) == inputs_before
