"""Shared fixtures: the shipped real sample data, a built catalog, a Dask client, the demo run once."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
LOOPBACK_DASK = {"dashboard_address": "127.0.0.1:0", "worker_dashboard_address": "127.0.0.1:0"}
"""LocalCluster arguments keeping the dashboards on loopback (add host="127.0.0.1" for worker processes)."""
SLOVENIA_SCENE = DATA / "s2-l1c-slovenia" / "reference_scene_2.tif"
GERS_DIR = DATA / "s2-l2a-theia-gers"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip when a system component is missing on a user's machine; fail in CI, where it must be there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _empty_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    empty = tmp_path_factory.mktemp("config") / "geovigie.toml"
    empty.write_text("# no settings: tests pass theirs explicitly\n")
    return empty


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, _empty_config: Path) -> None:
    """No test reads a developer's geovigie.toml or GEOVIGIE_* variables."""
    for key in list(os.environ):
        if key.startswith("GEOVIGIE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GEOVIGIE_CONFIG", str(_empty_config))
    # The static catalog for the bulk of the suite: with PostgreSQL installed, `auto` would start a private
    # cluster (initdb + PostGIS + pgstac migrate, ~6 s) under each test's data directory. Tests of the STAC API
    # pass `stac_backend="pgstac"` (constructor arguments win over this variable) with the session cluster below.
    monkeypatch.setenv("GEOVIGIE_STAC_BACKEND", "static")


@pytest.fixture
def settings(tmp_path: Path):
    from geovigie.settings import Settings

    return Settings(data_dir=tmp_path / "gv", tile_size=64, overlap=16, batch_size=4, device="cpu",
                    dask_workers=1, dask_threads_per_worker=2)


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geovigie.catalog.samples import build_sample_catalog

    target = tmp_path_factory.mktemp("catalog") / "catalog"
    build_sample_catalog(DATA, target)
    return target


@pytest.fixture(scope="session")
def dask_client():
    """An in-process Dask cluster (threads) shared by the inference tests."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, **LOOPBACK_DASK) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def pgstac_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A private PostgreSQL + PostGIS + pgstac cluster for the session; skips (fails in CI) without PostgreSQL.

    As root the server runs as `postgres`, which must reach the folder: pytest resets /tmp/pytest-of-root to 0700
    when a session starts, so there the cluster lives in a folder of its own (mkdtemp, made 0711 here: geovigie
    itself changes no mode of a folder it did not create), removed afterwards.
    """
    from geovigie.postgres import PostgresNotInstalledError, PrivatePostgres

    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="geovigie-test-pgstac-")) if as_root else tmp_path_factory.mktemp("pgstac")
    folder.chmod(0o711 if as_root else 0o700)  # ours: geovigie changes no mode of a folder it did not create
    cluster = PrivatePostgres(folder / "postgres")
    try:
        cluster.start()
    except PostgresNotInstalledError as err:
        if as_root:
            shutil.rmtree(folder, ignore_errors=True)
        require(False, str(err))
    yield cluster
    cluster.stop()
    if as_root:
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(cluster) -> str:
    """A new empty pgstac database in `cluster` (a copy of its prepared one), as a URL."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = cluster.url.replace(f"/{cluster.database}?", "/postgres?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{cluster.database}"')
    return cluster.url.replace(f"/{cluster.database}?", f"/{name}?")


@pytest.fixture
def pgstac_url(pgstac_cluster) -> str:
    """An empty pgstac database of its own for one test."""
    return fresh_database(pgstac_cluster)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, dask_client, request: pytest.FixtureRequest):
    """The demo pipeline run once on the shipped real data, publishing into the STAC API (pgstac); into the static
    catalog alone where PostgreSQL is not installed (never in CI: there the cluster fixture fails)."""
    from geovigie.demo import run_demo
    from geovigie.settings import Settings

    data_dir = tmp_path_factory.mktemp("demo") / "gv"
    try:
        backend = {"stac_backend": "pgstac",
                   "database_url": fresh_database(request.getfixturevalue("pgstac_cluster"))}
    except pytest.skip.Exception:
        backend = {"stac_backend": "static"}
    settings = Settings(data_dir=data_dir, device="cpu", **backend)
    report = run_demo(settings, client=dask_client)
    return settings, report


@pytest.fixture
def scene_copy(tmp_path: Path) -> Path:
    """A writable copy of a real Slovenia L1C scene."""
    target = tmp_path / "scene.tif"
    shutil.copy(SLOVENIA_SCENE, target)
    return target


def kill_after_journal_chunks(command: list[str], folder: Path, chunks: int, env: dict[str, str]) -> int:
    """Run `command`, SIGKILL it as soon as `chunks` chunk files of a prediction journal exist under `folder`
    (mid-run: the command is slowed so it cannot finish first), and return how many chunk files it left."""
    import signal
    import subprocess
    import time

    from geovigie.inference._journal import PARTIAL_FOLDER

    def left() -> int:
        return len(list(folder.rglob(f"{PARTIAL_FOLDER}/*/chunk-*.npz")))

    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if left() >= chunks:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode() if process.stdout else ""
    assert process.returncode == -signal.SIGKILL, f"the run ended on its own ({process.returncode}):\n{output}"
    return left()
