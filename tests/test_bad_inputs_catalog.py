"""Bad locations given to the catalog (`geovigie catalog search --provider ...`): whatever `open_store` reads a
location as (a folder, a catalog.json, a PostgreSQL URL, a STAC API URL), one `error:` line naming it and what is
wrong, exit code 2, nothing created where it pointed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovigie.cli import app

CASES = {
    "missing-folder": ("{tmp}/nowhere/", "no STAC catalog at {tmp}/nowhere"),
    "missing-catalog-json": ("{tmp}/nowhere/catalog.json", "no STAC catalog at {tmp}/nowhere"),
    "folder-without-catalog": ("{tmp}/empty", "no STAC catalog at {tmp}/empty"),
    "database-nobody-serves": ("postgresql://127.0.0.1:1/none", "pgstac postgresql://127.0.0.1:1/none: connection"),
    "api-nobody-serves": ("http://127.0.0.1:1/stac", "STAC API http://127.0.0.1:1/stac: connection refused"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_location_nothing_serves_is_one_error_line(case: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    location, expected = (text.format(tmp=tmp_path) for text in CASES[case])
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "gv"))
    result = CliRunner().invoke(app, ["catalog", "search", "--provider", location, "--collection", "x"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not (tmp_path / "nowhere").exists() and not any((tmp_path / "empty").iterdir())
