"""Several processes on one data directory share its private PostgreSQL: none stops it under another, and one
killed with -9 leaves no server behind (issue 16, item 7). Real `geovigie` processes, real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import DATA, require

GEOVIGIE = str(Path(sys.executable).parent / "geovigie")
CLASS_MAP = DATA / "s2-l1c-slovenia" / "lulc_mask.tif"
"""A real 100 x 101 land-cover class raster: `diagnose dumps` publishes a layer from it in a few seconds."""
PUBLISHERS, ROUNDS = 4, 3

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory for the private cluster; as root in a folder of the test's own, made 0711 (the server runs
    as `postgres`, which must reach it, and geovigie changes no mode of a folder it did not create)."""
    from geovigie.postgres import PostgresNotInstalledError, PrivatePostgres, find_bin_dir

    try:
        find_bin_dir()
    except PostgresNotInstalledError as err:
        require(False, str(err))
    folder = Path(tempfile.mkdtemp(prefix="geovigie-test-concurrency-"))
    folder.chmod(0o711)
    try:
        yield folder / "gv"
    finally:
        if (folder / "gv" / "postgres").is_dir():
            PrivatePostgres(folder / "gv" / "postgres").shutdown(force=True)  # whatever an assert left running
        shutil.rmtree(folder, ignore_errors=True)


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "GEOVIGIE_DATA_DIR": str(data_dir), "GEOVIGIE_STAC_BACKEND": "pgstac"}


def server_processes(data_dir: Path) -> list[psutil.Process]:
    """The PostgreSQL server and the watcher of `data_dir`'s private cluster that are running."""
    root = str(data_dir / "postgres")
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        with_cluster = any(root in part for part in process.info["cmdline"] or [])
        if with_cluster and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def wait_for(condition, seconds: float = 120.0) -> bool:  # noqa: ANN001
    """Poll `condition` until it holds or `seconds` pass; return its last value (no timing is asserted)."""
    deadline = time.monotonic() + seconds
    while not (held := condition()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return bool(held)


def published_ids(data_dir: Path) -> list[str]:
    """Every item id of the results collection in pgstac (read with a lease of the test's own)."""
    import psycopg

    from geovigie.postgres import PrivatePostgres

    with PrivatePostgres(data_dir / "postgres") as url, psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id FROM pgstac.items WHERE collection = 'geovigie-results'").fetchall()
    return [row[0] for row in rows]


def test_concurrent_publishers_never_stop_the_database_under_each_other(data_dir: Path) -> None:
    env = _env(data_dir)
    watches = []
    for round_ in range(ROUNDS):
        running = []
        for number in range(PUBLISHERS):
            watch = f"r{round_}p{number}"
            watches.append(watch)
            running.append(subprocess.Popen(
                [GEOVIGIE, "diagnose", "dumps", str(CLASS_MAP), "--watch", watch, "--date", "2024-05-01",
                 "--class-value", "1", "--min-area", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=data_dir.parent))
            time.sleep(0.5)  # started a moment apart: the first ones finish while the last ones still publish
        for process in running:
            output = process.communicate(timeout=900)[0].decode(errors="replace")
            assert process.returncode == 0, output
            assert "shutting down" not in output
    # the last one out stopped the server, and its watcher left with it
    assert wait_for(lambda: not server_processes(data_dir)), server_processes(data_dir)
    ids = published_ids(data_dir)
    assert len(ids) == PUBLISHERS * ROUNDS
    assert all(sum(item_id.endswith(f"-{watch}") for item_id in ids) == 1 for watch in watches), ids
    assert wait_for(lambda: not server_processes(data_dir))
    assert not list((data_dir / "postgres" / "leases").glob("*.lease"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(data_dir: Path, **extra_env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen([GEOVIGIE, "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env={**_env(data_dir), **extra_env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=data_dir.parent)
    return process, f"http://127.0.0.1:{port}"


def _status(base: str, path: str) -> int:
    try:
        return httpx.get(base + path, timeout=30).status_code
    except httpx.HTTPError:
        return 0


def _stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=120)[1].decode(errors="replace")


def test_stopping_one_of_two_services_leaves_the_other_answering(data_dir: Path) -> None:
    first, first_url = _serve(data_dir)
    second, second_url = _serve(data_dir)
    try:
        for base in (first_url, second_url):  # the first STAC API request starts (or joins) the server
            assert wait_for(lambda base=base: _status(base, "/api/stac/collections") == 200)
        _stop(first)
        assert first.returncode is not None
        for path in ("/api/stac/collections", "/api/stac/search?limit=1", "/layers", "/healthz"):
            assert _status(second_url, path) == 200, path
        status = subprocess.run([GEOVIGIE, "db", "status", "--json"], env=_env(data_dir), capture_output=True,
                                text=True, check=False)
        assert status.returncode == 0, status.stderr
        assert f'"pid": {second.pid}' in status.stdout and f'"pid": {first.pid},' not in status.stdout
    finally:
        _stop(first)
        second_errors = _stop(second)
    assert wait_for(lambda: not server_processes(data_dir)), (server_processes(data_dir), second_errors)


def test_a_service_killed_with_kill_9_leaves_no_server_behind(data_dir: Path) -> None:
    killed, killed_url = _serve(data_dir)
    try:
        assert wait_for(lambda: _status(killed_url, "/api/stac/") == 200)
        assert server_processes(data_dir)
    finally:
        killed.kill()
        killed.wait(timeout=60)
    # its watcher sees the lease of a dead process and stops the server
    assert wait_for(lambda: not server_processes(data_dir)), server_processes(data_dir)
    rerun, rerun_url = _serve(data_dir)
    try:
        assert wait_for(lambda: _status(rerun_url, "/api/stac/collections") == 200)
    finally:
        errors = _stop(rerun)
    assert rerun.returncode is not None
    assert wait_for(lambda: not server_processes(data_dir)), (server_processes(data_dir), errors)


def test_db_stop_refuses_while_another_process_uses_the_server(data_dir: Path) -> None:
    # the service alone (no job runner process beside it), so that it is the one user
    service, url = _serve(data_dir, GEOVIGIE_JOB_RUNNER="false")
    env = _env(data_dir)
    try:
        assert wait_for(lambda: _status(url, "/api/stac/") == 200)
        refused = subprocess.run([GEOVIGIE, "db", "stop"], env=env, capture_output=True, text=True, check=False)
        assert refused.returncode == 2 and refused.stderr.startswith("error:"), refused.stderr
        assert "1 process" in refused.stderr and "--force" in refused.stderr
        assert _status(url, "/api/stac/collections") == 200
        status = subprocess.run([GEOVIGIE, "db", "status"], env=env, capture_output=True, text=True, check=False)
        assert status.returncode == 0 and "users: 1" in status.stdout and f"pid {service.pid}" in status.stdout
        forced = subprocess.run([GEOVIGIE, "db", "stop", "--force"], env=env, capture_output=True, text=True,
                                check=False)
        assert forced.returncode == 0 and "stopped" in forced.stderr
        assert wait_for(lambda: not server_processes(data_dir))
    finally:
        _stop(service)
    assert service.returncode == 0
    stopped = subprocess.run([GEOVIGIE, "db", "status"], env=env, capture_output=True, text=True, check=False)
    assert stopped.returncode == 3 and "not running" in stopped.stdout


def test_db_start_keeps_the_server_up_past_its_users_until_db_stop(data_dir: Path) -> None:
    env = _env(data_dir)
    started = subprocess.run([GEOVIGIE, "db", "start"], env=env, capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    publisher = subprocess.run([GEOVIGIE, "diagnose", "dumps", str(CLASS_MAP), "--watch", "operator", "--date",
                                "2024-05-01", "--class-value", "1", "--min-area", "0"], env=env, capture_output=True,
                               text=True, check=False, cwd=data_dir.parent)
    assert publisher.returncode == 0, publisher.stderr
    status = subprocess.run([GEOVIGIE, "db", "status"], env=env, capture_output=True, text=True, check=False)
    assert status.returncode == 0 and "users: 1" in status.stdout and "operator" in status.stdout, status.stdout
    stopped = subprocess.run([GEOVIGIE, "db", "stop"], env=env, capture_output=True, text=True, check=False)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert wait_for(lambda: not server_processes(data_dir))


HOLD = ("import sys, time; from geovigie.postgres import PrivatePostgres; "
        "PrivatePostgres(sys.argv[1]).start(); print('held', flush=True); time.sleep(600)")


def test_a_server_whose_users_and_watcher_were_all_killed_is_stopped_by_the_next_db_status(data_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(data_dir / "postgres")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        watchers = [p for p in server_processes(data_dir) if "watch" in p.cmdline()]
        assert len(watchers) == 1
        watchers[0].kill()
    finally:
        holder.kill()
        holder.wait(timeout=30)

    def only_the_server_left() -> bool:
        left = server_processes(data_dir)
        return len(left) == 1 and "watch" not in left[0].cmdline()

    assert wait_for(only_the_server_left)  # an orphan: nobody left to stop it
    status = subprocess.run([GEOVIGIE, "db", "status"], env=_env(data_dir), capture_output=True, text=True,
                            check=False)
    assert f"pid {holder.pid}" in status.stdout and "stale" in status.stdout, status.stdout
    assert wait_for(lambda: not server_processes(data_dir)), server_processes(data_dir)
