"""The geovigie command run in a subprocess, and the one-error-line check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
