"""Where the private PostgreSQL puts its files: a socket folder nobody can predict or plant, no mode changed on a
folder geovigie did not create, no symlink followed (issue 16, items 2 and 3)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from geovigie.errors import DatabaseError
from geovigie.postgres import PostgresNotInstalledError, PrivatePostgres, find_bin_dir
from tests.conftest import require

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder of the test's own, 0711 (as root the server runs as `postgres`, which must enter it)."""
    try:
        find_bin_dir()
    except PostgresNotInstalledError as err:
        require(False, str(err))
    made = Path(tempfile.mkdtemp(prefix="geovigie-test-pg-"))
    made.chmod(0o711)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def _server_uid() -> int:
    if not AS_ROOT:
        return os.geteuid()
    import pwd

    return pwd.getpwnam("postgres").pw_uid


def test_a_long_data_dir_gets_a_fresh_private_socket_folder_and_planted_links_are_ignored(folder: Path) -> None:
    root = folder / ("d" * 60) / ("e" * 40) / "postgres"
    # what an attacker plants where earlier versions put the socket (/tmp/geovigie-pg-<hash of the path>)
    planted = Path(tempfile.gettempdir()) / f"geovigie-pg-{hashlib.sha1(str(root).encode()).hexdigest()[:16]}"
    victim = folder / "victim"
    victim.mkdir(mode=0o755)
    (victim / "precious.txt").write_text("mine")
    before = [(p.stat().st_uid, stat.S_IMODE(p.stat().st_mode)) for p in (victim, victim / "precious.txt")]
    planted.symlink_to(victim)
    cluster = PrivatePostgres(root)
    try:
        url = cluster.start()
        socket_dir = cluster.socket_dir
        assert socket_dir != planted and socket_dir.name.startswith("geovigie-pg-") and str(socket_dir) in url
        info = os.lstat(socket_dir)
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == _server_uid()
        assert (socket_dir / ".s.PGSQL.5432").exists()
        assert [(p.stat().st_uid, stat.S_IMODE(p.stat().st_mode)) for p in (victim, victim / "precious.txt")] == before
    finally:
        cluster.stop()
        planted.unlink()
    assert not cluster.is_running() and not socket_dir.exists()  # the private socket folder goes with the server


@pytest.mark.skipif(not AS_ROOT, reason="as a normal user the server runs as that user: no other user to let in")
def test_as_root_no_parent_folder_is_opened_the_cluster_goes_to_a_folder_of_its_own(folder: Path) -> None:
    closed = folder / "closed"
    closed.mkdir(mode=0o700)  # the postgres user cannot enter it
    root = closed / "gv" / "postgres"
    cluster = PrivatePostgres(root, system_dir=folder / "system")
    try:
        cluster.start()
        assert stat.S_IMODE(closed.stat().st_mode) == 0o700  # untouched
        assert cluster.home.parent == folder / "system" and cluster.home.name.startswith("gv-")
        for made in (folder / "system", cluster.home):
            info = os.lstat(made)
            assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o711
        assert cluster.cluster.stat().st_uid == _server_uid()
        assert stat.S_IMODE(cluster.cluster.stat().st_mode) == 0o700
        assert (root / "leases").is_dir()  # the leases and the lock stay in the data directory
        assert PrivatePostgres(root, system_dir=folder / "system").home == cluster.home  # found again
    finally:
        cluster.stop()
    assert not cluster.is_running()


@pytest.mark.skipif(not AS_ROOT, reason="the system folder is used as root only")
def test_a_system_folder_that_is_a_symlink_is_refused(folder: Path) -> None:
    closed = folder / "closed"
    closed.mkdir(mode=0o700)
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir(mode=0o711)
    (folder / "system").symlink_to(elsewhere)
    with pytest.raises(DatabaseError, match="refusing .*system"):
        PrivatePostgres(closed / "gv" / "postgres", system_dir=folder / "system").start()
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_where_the_server_keeps_its_files_is_refused(folder: Path) -> None:
    root = folder / "gv" / "postgres"
    root.mkdir(parents=True)
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    (root / "cluster").symlink_to(elsewhere)
    with pytest.raises(DatabaseError, match="refusing"):
        PrivatePostgres(root).start()
    assert list(elsewhere.iterdir()) == [] and stat.S_IMODE(elsewhere.stat().st_mode) == 0o755


def test_as_a_normal_user_the_socket_is_under_the_data_dir_or_in_a_fresh_private_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4242)  # no server user to switch to: the server runs as ourselves
    short = PrivatePostgres(tmp_path / "gv" / "postgres")
    assert short.server_user is None and short.home == short.root
    short.root.mkdir(parents=True)
    assert short._new_socket_dir() == short.root / "run"
    long = PrivatePostgres(tmp_path / ("d" * 100) / "postgres")
    long.root.mkdir(parents=True)
    made = [long._new_socket_dir(), long._new_socket_dir()]
    try:
        assert made[0] != made[1]  # a new random name each time: nothing to predict or plant
        for folder in made:
            info = os.lstat(folder)
            assert folder.name.startswith("geovigie-pg-") and stat.S_ISDIR(info.st_mode)
            assert stat.S_IMODE(info.st_mode) == 0o700
    finally:
        for folder in made:
            folder.rmdir()


@pytest.mark.skipif(not AS_ROOT, reason="the server user differs from ours as root only")
def test_an_existing_cluster_postgres_cannot_reach_is_a_clear_error_and_no_mode_changes(folder: Path) -> None:
    closed = folder / "closed"
    closed.mkdir(mode=0o700)
    cluster_dir = closed / "gv" / "postgres" / "cluster"
    cluster_dir.mkdir(parents=True)
    (cluster_dir / "PG_VERSION").write_text("15\n")  # left by an earlier run, when the folder was open
    with pytest.raises(DatabaseError, match=f"{closed} lets no other user through.*o\\+x yourself"):
        PrivatePostgres(closed / "gv" / "postgres", system_dir=folder / "system").start()
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700 and not (folder / "system").exists()



def test_a_data_dir_deleted_under_its_server_stops_it_and_is_not_recreated(folder: Path) -> None:
    import time

    from geovigie.leases import process_alive, process_start_time

    root = folder / ("d" * 60) / ("e" * 40) / "postgres"  # long: the socket is in a private /tmp folder
    cluster = PrivatePostgres(root)
    cluster.start()
    socket_dir, pid = cluster.socket_dir, cluster._postmaster_pid()
    assert pid is not None and socket_dir.name.startswith("geovigie-pg-")
    started = process_start_time(pid)

    def gone() -> bool:
        shutil.rmtree(folder / ("d" * 60), ignore_errors=True)  # the server writes files until it is stopped
        return not (folder / ("d" * 60)).exists() and not process_alive(pid, started) and not socket_dir.exists()

    deadline = time.monotonic() + 120
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process_alive(pid, started) and not socket_dir.exists()  # stopped by its watcher
    time.sleep(2)  # the watcher's next look, had it survived, would come within a second
    assert not (folder / ("d" * 60)).exists()  # and it did not make the folders again
