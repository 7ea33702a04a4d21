"""Bad inputs of the machine itself: a full disk, a file size limit, a read-only or immutable output folder.

Each gives one `error:` line naming the folder or file and the cause, exit code 2, no traceback. They run as
subprocesses (the limits and mounts are the process's own). A full disk and a read-only file system are real
tmpfs mounts (root only: skipped elsewhere); the file size limit (`ulimit -f`) works for anyone.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SLOVENIA_SCENE

GEOVIGIE = str(Path(sys.executable).parent / "geovigie")
PREDICT = [GEOVIGIE, "predict", str(SLOVENIA_SCENE), "--product-level", "L1C", "--device", "cpu"]


def _run(command: list[str], tmp_path: Path, *, file_limit: int | None = None) -> tuple[int, str]:
    env = {**os.environ, "GEOVIGIE_DATA_DIR": str(tmp_path / "gv"), "GEOVIGIE_STAC_BACKEND": "static"}

    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, preexec_fn=limit,
                          check=False, cwd=tmp_path)
    return done.returncode, done.stderr


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _finished_outputs(folder: Path) -> list[Path]:
    """What a user would take for results: anything but the hidden resume journal and scratch files."""
    return [path for path in folder.rglob("*") if not any(part.startswith(".") for part in path.parts[-2:])
            and path.is_file()] if folder.is_dir() else []


@contextlib.contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_predict_past_the_file_size_limit(tmp_path: Path) -> None:
    code, stderr = _run([*PREDICT, "--out", str(tmp_path / "out")], tmp_path, file_limit=20 * 1024)
    line = _one_error_line(stderr)
    assert code == 2 and "file size limit (ulimit -f)" in line and str(tmp_path / "out") in line
    assert _finished_outputs(tmp_path / "out") == []


def test_predict_on_a_full_disk(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "tiny", "size=12k,mode=0755") as tiny:
        code, stderr = _run([*PREDICT, "--out", str(tiny / "out")], tmp_path)
        line = _one_error_line(stderr)
        assert code == 2 and "no space left on the device" in line and str(tiny / "out") in line
        assert _finished_outputs(tiny / "out") == []


def test_catalog_build_on_a_full_disk(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "tiny", "size=8k,mode=0755") as tiny:
        code, stderr = _run([GEOVIGIE, "catalog", "build", "--out", str(tiny / "catalog")], tmp_path)
        assert code == 2 and "no space left on the device" in _one_error_line(stderr)


def test_predict_into_a_read_only_file_system(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "ro,size=64k,mode=0755") as read_only:
        code, stderr = _run([*PREDICT, "--out", str(read_only)], tmp_path)
        line = _one_error_line(stderr)
        assert code == 2 and "read-only file system" in line.lower() and str(read_only) in line


def test_predict_into_an_immutable_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    made = subprocess.run(["chattr", "+i", str(out)], capture_output=True, check=False) \
        if shutil.which("chattr") else None
    if made is None or made.returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system with attributes)")
    try:
        code, stderr = _run([*PREDICT, "--out", str(out)], tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=False)
    line = _one_error_line(stderr)
    assert code == 2 and str(out) in line and ("not permitted" in line or "permission denied" in line)
    assert list(out.iterdir()) == []


def test_system_errors_are_found_anywhere_in_the_chain_and_nothing_else_is_taken() -> None:
    import errno

    from geovigie.cli import system_error

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/data/out/x.tif")
        except OSError as low:
            raise RuntimeError("task failed") from low
    except RuntimeError as wrapped:
        assert system_error(wrapped) == "/data/out/x.tif: no space left on the device: free some or write elsewhere"
    assert system_error(OSError(errno.EFBIG, "File too large"), Path("out")) == (
        "writing in out: file too large for this process's file size limit (ulimit -f)")
    assert "permission denied" in (system_error(PermissionError(errno.EACCES, "Permission denied", "/x")) or "")
    assert system_error(ValueError("GDAL: Read-only file system")) == "read-only file system: write elsewhere"
    assert system_error(FileNotFoundError(errno.ENOENT, "No such file")) is None  # a bug or a bad input: not ours
    assert system_error(KeyError("x")) is None
