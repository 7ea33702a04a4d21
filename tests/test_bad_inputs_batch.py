"""Bad batch selections: `geovigie batch` answers one `error:` line naming the problem, exit code 2, and writes
nothing (no state, no output folder), for filters the `cql2` library refuses, out-of-range limits, and files the
one config reader (`geovigie.config_file`) refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovigie.catalog.samples import SLOVENIA
from geovigie.cli import app

CASES: dict[str, tuple[str, ...]] = {
    "cql2 text that does not parse": ('filter = "eo:cloud_cover >>> 20"', "filter: filter 'eo:cloud_cover >>> 20' is "
                                                                          "not valid CQL2"),
    "cql2-json of an unknown shape": ('filter = { op = "s_intersects", args = [] }', "is not valid CQL2"),
    "filter neither text nor table": ("filter = 3", "give a CQL2 filter as cql2-text"),
    "query operator unknown": ('query = { x = { contains = 1 } }', "unknown operator 'contains'"),
    "cloud limit over 100": ("max_cloud = 101", "max_cloud: Input should be less than or equal to 100"),
    "cap of zero items": ("max_items = 0", "max_items: Input should be greater than or equal to 1"),
    "not TOML": ("filter = ", "not valid TOML (Invalid value (at line 4, column 10))"),
    "misspelt key": ('max_clouds = 10', "unknown key 'max_clouds' (remove it or check its spelling)"),
    "task tiles no larger than the settings' overlap": ("", "landcover task: overlap (64) must be smaller than "
                                                            "tile_size (64)", "tile_size = 64\n"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_selection_is_one_error_line(name: str, catalog_dir: Path, tmp_path: Path) -> None:
    body, message, task = (*CASES[name], "") if len(CASES[name]) == 2 else CASES[name]
    config = tmp_path / "job.toml"
    config.write_text(f'source = "{catalog_dir}"\noutput_dir = "out"\ncollection = "{SLOVENIA}"\n{body}\n'
                      f'[[tasks]]\nkind = "landcover"\n{task}', encoding="utf-8")
    result = CliRunner().invoke(app, ["batch", str(config), "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert task or str(config) in lines[0]  # a problem of the file names it; one of file + settings, the task
    assert message in lines[0] and "Value error" not in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml"]  # nothing written
