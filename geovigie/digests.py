"""Content SHA-256 of files, hashed once while they do not change.

A digest is remembered by the file's real path, device, inode, size and modification time (ns): in this process,
and in `cache_dir/sha256/` once a run that used it succeeded (`remember`), so that an up-to-date rerun of `predict`
or `batch` does not read a large input or the weights again. A file modified in the last seconds is not remembered
(a write within the same clock tick could keep its size and time), the same precaution git takes with its index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

from geovigie.atomic import write_json_atomic

RECENT_S = 2.0
"""A file modified less than this long ago is hashed every time."""

_MEMO: dict[tuple[str, int, int, int, int], str] = {}


def _key(path: Path) -> tuple[str, int, int, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _entry(cache_dir: str | Path, real_path: str) -> Path:
    return Path(cache_dir) / "sha256" / f"{hashlib.sha256(real_path.encode()).hexdigest()[:32]}.json"


def sha256_of(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """SHA-256 (hex) of a file's content, read in blocks; remembered in this process while the file is unchanged,
    and taken from `cache_dir` when an earlier run stored it there (`remember`). Writes nothing.

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    key = _key(path)
    if key in _MEMO:
        return _MEMO[key]
    if cache_dir is not None:
        try:
            stored = json.loads(_entry(cache_dir, key[0]).read_text(encoding="utf-8"))
            if tuple(stored["key"]) == key and isinstance(stored["sha256"], str):
                _MEMO[key] = stored["sha256"]
                return _MEMO[key]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no entry, or an unreadable one: hash again
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if time.time() - key[4] / 1e9 >= RECENT_S and _key(path) == key:
        _MEMO[key] = digest
    return digest


def remember(path: str | Path, cache_dir: str | Path) -> None:
    """Store the digest this process knows of `path` (unchanged since) in `cache_dir`, for the next runs. Called
    once a run has succeeded: a refused input leaves nothing behind."""
    with contextlib.suppress(OSError):  # a gone file or a read-only cache only costs the next run one more hash
        key = _key(Path(path))
        if key in _MEMO:
            write_json_atomic(_entry(cache_dir, key[0]), {"key": list(key), "sha256": _MEMO[key]})
