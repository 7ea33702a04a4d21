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
