"""Atomic writes: write to a temporary sibling, then rename over the target; sweep what crashed runs left.

Temporary siblings are named `.<name>.gvtmp-<pid>-<random><suffix>` (name cut to 64 characters) and locked
(`filelock.lock_descriptor`: `flock` on POSIX, `LockFileEx` on Windows) by their writer for as long as they
exist, so a sweep can tell a live writer's file from the debris of a process killed with `kill -9` (whose locks
the kernel released): it removes only files nobody holds and whose writer is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, lock_descriptor

from geovigie.errors import InvalidInputError

SCRATCH_MARKER = ".gvtmp-"
"""Every temporary sibling holds this in its name (and starts with a dot)."""

_SCRATCH_PID = re.compile(re.escape(SCRATCH_MARKER) + r"(\d+)-")
_NAME_KEPT = 64
"""Characters of the target's name kept in a temporary name, so nested temporaries stay far below 255 bytes."""


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    Nothing half-written is ever left at `target`, and the temporary file is removed on failure (including
    KeyboardInterrupt and SIGTERM, see `geovigie._signals`). The temporary file stays locked while it exists.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:_NAME_KEPT]}{SCRATCH_MARKER}{os.getpid()}-",
                                    suffix=suffix or target.suffix, dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with contextlib.suppress(OSError):  # some network file systems refuse; the pid in the name still protects
            lock_descriptor(fd, blocking=False)  # held until the file is renamed or removed
        umask = os.umask(0)
        os.umask(umask)
        yield tmp
        # the mode a plain open() would give (mkstemp's is 0600, and some writers replace the file with their own)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, create: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on `folder/.lock` (created with the folder when missing): one process at a time.

    The lock file stays (removing it would let a waiter lock a deleted file while a newcomer locks a new one). Not
    reentrant across calls: a process nesting two `folder_lock`s on one folder waits for itself. With `create`
    false a missing folder is not made (FileNotFoundError).
    """
    folder = Path(folder)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder} to lock")
    with FileLock(folder / ".lock", thread_local=False, preserve_lock_file=True):
        yield


def write_json_atomic(target: str | Path, payload: Any) -> Path:
    """Write `payload` as indented JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(target)


def is_scratch(path: str | Path) -> bool:
    """Whether `path` is named like a temporary sibling written by `atomic_path`."""
    name = Path(path).name
    return name.startswith(".") and SCRATCH_MARKER in name


def _writer_alive(name: str) -> bool:
    """Whether the process named in a scratch file name still runs on this machine."""
    found = _SCRATCH_PID.findall(name)
    if not found:
        return False
    pid = int(found[-1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _held(path: Path) -> bool:
    """Whether a live process holds the lock of a scratch file (or it cannot be opened to check)."""
    try:
        fd = os.open(path, os.O_RDWR)  # network file systems lock only files open for writing
    except OSError:
        return True  # gone, or not ours to judge
    try:
        if not lock_descriptor(fd, blocking=False):
            return True
    except OSError:
        return True
    finally:
        os.close(fd)  # closing also releases a lock we just took
    return False


def sweep_scratch(folder: str | Path) -> list[Path]:
    """Remove the temporary siblings in `folder` (not recursive) left by writers that died.

    A file is removed only when no process holds its lock and the process named in it is gone.

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        if not is_scratch(path) or not path.is_file() or _held(path) or _writer_alive(path.name):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[list[Path]]:
    """Hold an exclusive lock on an output folder for one run, after sweeping the debris of dead runs.

    The folder is created when missing (and removed again if the run fails and leaves it empty). A second
    run on the same folder waits for the first. The lock is taken on the folder itself, so no lock file is left.

    Yields:
        The scratch files the sweep removed.

    Raises:
        InvalidInputError: the folder cannot be created or is not a folder.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"output folder {folder} is a file, not a folder")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = "a parent is a file" if err.errno in (errno.ENOTDIR, errno.EEXIST) else err.strerror
        raise InvalidInputError(f"cannot create output folder {folder}: {reason}") from err
    fd: int | None = None
    with contextlib.suppress(OSError):  # a folder cannot be opened on Windows: runs then may overlap there
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if fd is not None:
            with contextlib.suppress(OSError):  # no folder locks on some network file systems: runs may overlap
                lock_descriptor(fd)
        yield sweep_scratch(folder)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise
    finally:
        if fd is not None:
            os.close(fd)
