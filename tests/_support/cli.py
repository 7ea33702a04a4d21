"""The geovigie command run in a subprocess, and the one-error-line check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import Result

from tests.conftest import DATA

GEOVIGIE = str(Path(sys.executable).parent / "geovigie")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    (cwd / "none.toml").touch()
    return subprocess.run([GEOVIGIE, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={"PATH": str(Path(sys.executable).parent), "GEOVIGIE_CONFIG": str(cwd / "none.toml"),
                               "GEOVIGIE_SAMPLE_DATA_DIR": str(DATA), "GEOVIGIE_TILE_SIZE": "64",
                               "GEOVIGIE_OVERLAP": "16", "HOME": str(cwd), "GEOVIGIE_STAC_BACKEND": "static"})


def assert_clean_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error:")
    for needle in needles:
        assert needle in done.stderr


def assert_one_error_line(result: Result, *words: str) -> None:
    """An in-process (CliRunner) run that failed cleanly: exit 2 and one `error:` line naming every word."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for word in words:
        assert word in lines[0], (word, lines[0])
