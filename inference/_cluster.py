"""Dask clusters for inference: an existing scheduler, or a local one (CUDA workers where present)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from geovigie.settings import Settings


@dataclass(frozen=True)
class ClusterOptions:
    """Where batches run: an existing scheduler, or a LocalCluster of this shape bound to loopback only."""

    scheduler: str | None = None
    workers: int = 1
    threads_per_worker: int = 2
    processes: bool = False
    device: str = "auto"

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterOptions:
        """The cluster the settings describe."""
        return cls(settings.dask_scheduler, settings.dask_workers, settings.dask_threads_per_worker,
                   settings.dask_processes, settings.device)

    def torch_threads(self) -> int | None:
        """Torch threads per worker: the cores this process may use (its CPU affinity) shared among worker threads;
        a remote cluster decides its own."""
        if self.scheduler:
            return None
        return max(1, usable_cores() // (self.workers * self.threads_per_worker))


def usable_cores() -> int:
    """The cores this process may run on (CPU affinity, e.g. `taskset` or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def local_cluster_kind(device: str, cuda_available: bool) -> str:
    """`cuda` (dask-cuda LocalCUDACluster, one worker per GPU) or `cpu` (distributed LocalCluster)."""
    if device in ("cuda", "auto") and cuda_available:
        try:
            import dask_cuda  # noqa: F401
        except ImportError:
            return "cpu"
        return "cuda"
    return "cpu"


@contextlib.contextmanager
def dask_client(options: ClusterOptions | Settings) -> Iterator[Any]:
    """A `distributed.Client`: to the configured scheduler, else to a new local cluster on 127.0.0.1, no dashboard."""
    from distributed import Client, LocalCluster

    from geovigie.models import resolve_device

    if isinstance(options, Settings):
        options = ClusterOptions.from_settings(options)
    if options.scheduler:
        with Client(options.scheduler, timeout="30s") as client:
            yield client
        return
    # every listening socket on loopback: distributed always starts the dashboards, so bind them to 127.0.0.1
    local: dict[str, Any] = {"dashboard_address": "127.0.0.1:0", "worker_dashboard_address": "127.0.0.1:0"}
    if options.processes:
        local["host"] = "127.0.0.1"
    gpu = resolve_device("auto").type == "cuda"
    if local_cluster_kind(options.device, gpu) == "cuda":  # pragma: no cover - GPU only
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(threads_per_worker=options.threads_per_worker, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0")
    else:
        cluster = LocalCluster(n_workers=options.workers, threads_per_worker=options.threads_per_worker,
                               processes=options.processes, **local)
    quiet = _QuietOnError("distributed")
    with quiet, cluster, Client(cluster) as client:
        try:
            yield client
        except BaseException:  # Ctrl-C, SIGTERM, an error: no warning per task cancelled by the shutdown
            quiet.arm()
            raise


class _QuietOnError:
    """Raises a logger's level to ERROR once armed, until the block ends (then restores it)."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)
        self._level: int | None = None

    def arm(self) -> None:
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __enter__(self) -> _QuietOnError:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._level is not None:
            self._logger.setLevel(self._level)
