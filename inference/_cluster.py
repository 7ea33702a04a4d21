"""Dask clusters for inference: an existing scheduler, or a local one (CUDA workers where present)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from geovigie.settings import Settings


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
def dask_client(settings: Settings) -> Iterator[object]:
    """A `distributed.Client`: to `settings.dask_scheduler` when set, else to a fresh local cluster."""
    import torch
    from distributed import Client, LocalCluster

    if settings.dask_scheduler:
        with Client(settings.dask_scheduler) as client:
            yield client
        return
    if local_cluster_kind(settings.device, torch.cuda.is_available()) == "cuda":  # pragma: no cover - GPU only
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(threads_per_worker=settings.dask_threads_per_worker)
    else:
        cluster = LocalCluster(
            n_workers=settings.dask_workers,
            threads_per_worker=settings.dask_threads_per_worker,
            processes=settings.dask_processes,
            dashboard_address=None,
        )
    with cluster, Client(cluster) as client:
        yield client
