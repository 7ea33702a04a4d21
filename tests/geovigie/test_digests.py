"""Content hashes remembered while a file is unchanged: in the process and in a cache folder, never past a change."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from geovigie import digests


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files actually read and hashed; the process memo starts empty (as in a new run)."""
    monkeypatch.setattr(digests, "_MEMO", {})
    read: list[str] = []
    real = hashlib.file_digest

    def counting(handle, name):  # type: ignore[no-untyped-def]
        read.append(Path(handle.name).name)
        return real(handle, name)

    monkeypatch.setattr(digests.hashlib, "file_digest", counting)
    return read


def _old_file(path: Path, content: bytes, age_s: float = 60.0) -> Path:
    path.write_bytes(content)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_an_unchanged_file_is_read_once_per_process(tmp_path: Path, reads: list[str]) -> None:
    path = _old_file(tmp_path / "scene.tif", b"pixels" * 1000)
    assert digests.sha256_of(path) == hashlib.sha256(b"pixels" * 1000).hexdigest()
    assert digests.sha256_of(str(path)) == digests.sha256_of(tmp_path / "." / "scene.tif")
    assert reads == ["scene.tif"]


def test_the_cache_folder_spares_the_next_run_and_sees_a_change(tmp_path: Path, reads: list[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path, cache = _old_file(tmp_path / "scene.tif", b"a" * 4096), tmp_path / "cache"
    first = digests.sha256_of(path, cache)
    assert not cache.exists()  # reading writes nothing: a run that then fails leaves nothing behind
    digests.remember(path, cache)  # the run succeeded
    monkeypatch.setattr(digests, "_MEMO", {})  # a new process
    assert digests.sha256_of(path, cache) == first and reads == ["scene.tif"]
    _old_file(path, b"b" * 4096, age_s=30.0)  # same size, another content and time
    monkeypatch.setattr(digests, "_MEMO", {})
    assert digests.sha256_of(path, cache) == hashlib.sha256(b"b" * 4096).hexdigest() != first
    assert reads == ["scene.tif", "scene.tif"]


def test_a_file_written_just_now_is_not_remembered(tmp_path: Path, reads: list[str]) -> None:
    path, cache = tmp_path / "fresh.tif", tmp_path / "cache"
    path.write_bytes(b"x" * 10)  # boundary: modified less than RECENT_S ago
    digests.sha256_of(path, cache)
    digests.remember(path, cache)
    digests.sha256_of(path, cache)
    assert reads == ["fresh.tif", "fresh.tif"] and not cache.exists()


def test_an_unreadable_cache_entry_costs_one_hash(tmp_path: Path, reads: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path, cache = _old_file(tmp_path / "scene.tif", b"c" * 100), tmp_path / "cache"
    digest = digests.sha256_of(path, cache)
    digests.remember(path, cache)
    for entry in (cache / "sha256").iterdir():
        entry.write_text("{not json", encoding="utf-8")
    monkeypatch.setattr(digests, "_MEMO", {})
    assert digests.sha256_of(path, cache) == digest
    assert reads == ["scene.tif", "scene.tif"]


def test_an_empty_file_has_the_empty_digest(tmp_path: Path, reads: list[str]) -> None:
    assert digests.sha256_of(_old_file(tmp_path / "empty", b"")) == hashlib.sha256(b"").hexdigest()
