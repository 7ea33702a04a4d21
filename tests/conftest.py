"""Shared fixtures: the shipped real sample data, a built catalog, a Dask client, the demo run once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
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


@pytest.fixture
def settings(tmp_path: Path):
    from geovigie.settings import Settings

    return Settings(data_dir=tmp_path / "gv", tile_size=64, overlap=16, batch_size=4, device="cpu",
                    dask_workers=1, dask_threads_per_worker=2)


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geovigie.catalog import build_sample_catalog

    target = tmp_path_factory.mktemp("catalog") / "catalog"
    build_sample_catalog(DATA, target)
    return target


@pytest.fixture(scope="session")
def dask_client():
    """An in-process Dask cluster (threads) shared by the inference tests."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, dask_client):
    """The demo pipeline run once on the shipped real data."""
    from geovigie.demo import run_demo
    from geovigie.settings import Settings

    data_dir = tmp_path_factory.mktemp("demo") / "gv"
    settings = Settings(data_dir=data_dir, device="cpu")
    report = run_demo(settings, client=dask_client)
    return settings, report


@pytest.fixture
def scene_copy(tmp_path: Path) -> Path:
    """A writable copy of a real Slovenia L1C scene."""
    target = tmp_path / "scene.tif"
    shutil.copy(SLOVENIA_SCENE, target)
    return target
