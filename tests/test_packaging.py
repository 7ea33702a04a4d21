"""The wheel: built without setuptools warnings, holding every data file the package reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_FOLDERS = {  # source folder -> its place in the package
    "tiles/schemas": "geovigie/tiles/schemas",
    "service/static": "geovigie/service/static",
    "models/bundles": "geovigie/models/bundles",
    "training/configs": "geovigie/training/configs",
    "diagnostics/zan_mappings": "geovigie/diagnostics/zan_mappings",
}


@pytest.mark.slow
def test_wheel_is_quiet_and_complete(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", str(ROOT),
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "would be ignored" not in log and "SetuptoolsDeprecationWarning" not in log
    (wheel,) = tmp_path.glob("geovigie-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for source, packaged in DATA_FOLDERS.items():
        files = [p for p in (ROOT / source).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files, source
        missing = [str(p.relative_to(ROOT)) for p in files
                   if f"{packaged}/{p.relative_to(ROOT / source).as_posix()}" not in names]
        assert not missing, f"not in the wheel: {missing[:10]}"
    assert "geovigie/py.typed" in names and "geovigie/cli.py" in names
