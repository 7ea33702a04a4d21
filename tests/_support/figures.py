"""Inputs of the diagnostics tests (shipped rasters and zones) and the command line run in-process on them."""

from __future__ import annotations

import os
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
