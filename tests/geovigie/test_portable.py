"""The read-only parts of geovigie import where there is no `fcntl` (Windows), and folder locks still exclude."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from geovigie.atomic import folder_lock

NO_POSIX = "import sys\nfor name in ('fcntl', 'pwd', 'grp'):\n    sys.modules[name] = None\n"


def test_geovigie_imports_without_fcntl() -> None:
    code = NO_POSIX + ("import geovigie, geovigie.errors, geovigie.atomic, geovigie.settings, geovigie.leases, "
                       "geovigie.postgres, geovigie.redaction, geovigie.cog\nprint('imported')")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "imported", result.stderr


def test_a_folder_lock_excludes_another_process_until_released(tmp_path: Path) -> None:
    code = ("import sys; from filelock import FileLock, Timeout\n"
            "try:\n    FileLock(sys.argv[1], timeout=0.2).acquire()\nexcept Timeout:\n    sys.exit(7)\n")
    lock_file = str(tmp_path / ".lock")
    with folder_lock(tmp_path):
        held = subprocess.run([sys.executable, "-c", code, lock_file], check=False)
    free = subprocess.run([sys.executable, "-c", code, lock_file], check=False)
    assert (held.returncode, free.returncode) == (7, 0)
    assert (tmp_path / ".lock").is_file()  # kept: removing it would let two processes lock two files
