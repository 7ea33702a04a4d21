"""A real multi-process Dask cluster on loopback loses a worker (SIGKILL) in the middle of a prediction.

One `dask scheduler` and two `dask worker` processes (one thread each, no nanny, so the killed worker stays dead)
run `predict` on a 6 × 6 mosaic of a shipped Slovenia scene. A clean run on the same cluster is the reference
(and loads the network on both workers); the second run loses a worker while it holds tasks. The run must finish on
the survivor with outputs byte-identical to the clean run's.

"No tile written twice": a chunk task blends its tiles and writes its block file into the run's journal under an
atomic rename, and a task whose file already exists does nothing; seams are added by seam tasks in chunk order. A
tile blended twice would change the weighted means of its overlaps, so identical bytes (and pixels, and tags) show
it did not happen; the test also checks that the scheduler really recomputed lost work (tasks marked suspicious),
and that no journal or temporary file is left in the output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geovigie.inference import ClusterOptions, PredictOptions, predict, tile_windows
from tests.conftest import REPO, SLOVENIA_SCENE, require

MOSAIC = 6
"""The scene repeated 6 × 6: 600 × 606 px, 169 tiles of 64 px (overlap 16) in 85 batches of 2."""


def _dask_cli() -> Path | None:
    beside = Path(sys.executable).parent / "dask"
    if beside.is_file():
        return beside
    found = shutil.which("dask")
    return Path(found) if found else None


@dataclass
class LoopbackCluster:
    """A scheduler and worker processes on 127.0.0.1, started with the `dask` command line."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LoopbackCluster]:
    dask = _dask_cli()
    require(dask is not None, "the `dask` command line (package distributed) is not installed")
    assert dask is not None
    logs = tmp_path / "logs"
    logs.mkdir()
    # one BLAS/OpenMP thread per worker: deterministic and not oversubscribed on 2 cores
    # PYTHONPATH: the scheduler unpickles `_suspicious` from this test module
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    scheduler_file = tmp_path / "scheduler.json"
    processes: list[subprocess.Popen] = []

    def start(args: list[str], log: str) -> subprocess.Popen:
        with open(logs / log, "wb") as out:
            process = subprocess.Popen([str(dask), *args], stdout=out, stderr=subprocess.STDOUT, env=env,
                                       cwd=tmp_path, start_new_session=True)
        processes.append(process)
        return process

    try:
        scheduler = start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                           "--scheduler-file", str(scheduler_file)], "scheduler.log")
        deadline = time.monotonic() + 30
        while not scheduler_file.is_file() and time.monotonic() < deadline and scheduler.poll() is None:
            time.sleep(0.1)
        assert scheduler_file.is_file(), (logs / "scheduler.log").read_text()
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = [start(["worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                          "--name", f"worker-{i}", "--local-directory", str(tmp_path / f"worker-{i}")],
                         f"worker-{i}.log") for i in range(2)]
        yield LoopbackCluster(address, scheduler, workers)
    finally:
        for process in processes:  # every process we started, whatever happened
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait(timeout=30)


def _mosaic(target: Path) -> Path:
    with rasterio.open(SLOVENIA_SCENE) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    tiled = np.tile(data, (1, MOSAIC, MOSAIC))
    profile.update(width=tiled.shape[2], height=tiled.shape[1], tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(tiled)
        dst.descriptions = names
    return target


def _suspicious(dask_scheduler) -> int:  # noqa: ANN001 - runs on the scheduler
    """Tasks the scheduler had to reschedule because the worker running them died."""
    return sum(prefix.suspicious for prefix in dask_scheduler.task_prefixes.values())


def _read(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    with rasterio.open(path) as src:
        return src.read(), dict(src.tags())


@pytest.mark.slow
def test_a_killed_worker_changes_nothing_in_the_output(cluster: LoopbackCluster, tmp_path: Path) -> None:
    from distributed import Client

    raster = _mosaic(tmp_path / "mosaic.tif")
    options = PredictOptions(tile_size=64, overlap=16, batch_size=2, device="cpu",
                             cluster=ClusterOptions(scheduler=cluster.address))
    with Client(cluster.address, timeout="30s") as observer:
        observer.wait_for_workers(2, timeout=60)
        clean = predict(raster, tmp_path / "clean", options, progress=False, product_level="L1C")
        assert not clean.skipped and clean.tiles == len(tile_windows(600, 606, 64, 16)) == 169
        assert observer.run_on_scheduler(_suspicious) == 0

        victim = cluster.workers[0]
        victim_address = next(address for address, info in observer.scheduler_info()["workers"].items()
                              if info.get("name") == "worker-0")
        killed: dict[str, object] = {}

        def kill_when_busy() -> None:
            """SIGKILL worker-0 as soon as it holds a task of the second run."""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed.get("done"):
                if observer.processing([victim_address]).get(victim_address):
                    victim.send_signal(signal.SIGKILL)
                    killed["at"] = time.monotonic()
                    return
                time.sleep(0.005)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        try:
            faulty = predict(raster, tmp_path / "faulty", options, progress=False, product_level="L1C")
        finally:
            killed["done"] = True
            killer.join(timeout=10)
        finished = time.monotonic()

        assert "at" in killed, "worker-0 never received a task of the second run"
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert killed["at"] < finished  # killed mid-run, before predict returned
        assert len(observer.scheduler_info()["workers"]) == 1  # the survivor finished the job alone
        assert observer.run_on_scheduler(_suspicious) >= 1  # work held by the dead worker was recomputed

    assert not faulty.skipped and faulty.tiles == clean.tiles
    for ours, theirs in ((faulty.classes_path, clean.classes_path),
                         (faulty.probabilities_path, clean.probabilities_path)):
        pixels, tags = _read(ours)
        expected_pixels, expected_tags = _read(theirs)
        np.testing.assert_array_equal(pixels, expected_pixels)
        assert tags == expected_tags
        assert ours.read_bytes() == theirs.read_bytes()  # COG bytes too: no timestamp is written
    assert sorted(p.name for p in (tmp_path / "faulty").iterdir()) == sorted(
        [faulty.classes_path.name, faulty.probabilities_path.name])  # no scratch file left behind
