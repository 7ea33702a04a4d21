"""Batch jobs: search a catalog, run every configured task on each new or changed item, publish the results.

The state (see `_batch_state`) lives in `OUTPUT_DIR/batch/<name>.json` and is saved after each finished job, so a
crashed or killed run resumes at the next unfinished job, and an interrupted prediction from the chunks it had
finished (`predict` keeps them in a journal beside its outputs, which go to the same folder on every pass). A rerun
with nothing new writes nothing. A failing job is recorded with its error and the others carry on; it is retried on
the next pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac

from geovigie.atomic import run_lock
from geovigie.catalog.stac import CatalogClient, cloud_skip_reason
from geovigie.errors import GeovigieError, InputNotFoundError, InvalidInputError, RemoteSourceError
from geovigie.inference import ClusterOptions, PredictOptions, dask_client, prediction_signature
from geovigie.models import DEFAULT_BUNDLE, ModelBundle, check_not_retired, load_bundle
from geovigie.paths import check_name, printable, safe_join
from geovigie.progress import progress_bar
from geovigie.settings import Settings, check_tiling
from geovigie.workflows._batch_config import (
    BatchConfig,
    BatchTask,
    LandcoverTask,
    NdviTask,
)
from geovigie.workflows._batch_state import BatchState, item_fingerprint, job_key
from geovigie.workflows._indices import ndvi, surface_temperature
from geovigie.workflows._landcover import landcover
from geovigie.workflows._published import PublishedLayer

Log = Callable[[str], None]
TileHook = Callable[[str, int, int], None]
"""(item id, tiles done, tiles total) of a running inference."""


@dataclass(frozen=True)
class BatchJob:
    """One task to run on one item, and why (`new`, `item changed`, `task changed`, `failed before`)."""

    item: pystac.Item
    task: BatchTask
    reason: str
    key: str
    fingerprint: str
    signature: str


@dataclass
class Selection:
    """What a pass's search selected: the items to process, the matches skipped as cloudy (with why), and how many
    matches the cap `max_items` left out."""

    items: list[pystac.Item]
    cloudy: list[tuple[pystac.Item, str]] = field(default_factory=list)
    beyond_cap: int = 0
    cap: int | None = None

    def notes(self) -> list[str]:
        """One line per skipped item and one for the cap, for logs and the command line."""
        lines = [f"skipped {item.id}: {why}" for item, why in self.cloudy]
        if self.beyond_cap:
            lines.append(f"{self.beyond_cap} more matching items not processed (cap {self.cap})")
        return lines


@dataclass
class BatchReport:
    """One pass: what the search found, what ran, what failed."""

    name: str
    state_path: Path
    items: int
    up_to_date: int
    jobs: list[BatchJob]
    dry_run: bool = False
    selection: Selection = field(default_factory=lambda: Selection([]))
    published: list[tuple[BatchJob, PublishedLayer]] = field(default_factory=list)
    failed: list[tuple[BatchJob, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No job of this pass failed."""
        return not self.failed


def resolve_bundle(name: str | None) -> ModelBundle:
    """A bundle folder, or the name of a bundle shipped beside the default one.

    Raises:
        InputNotFoundError: neither a bundle folder nor a shipped name.
        BundleError: a retired bundle's name (naming its successor).
    """
    if name is None:
        return load_bundle()
    path = Path(name)
    if path.is_dir():
        return load_bundle(path)
    shipped = DEFAULT_BUNDLE.parent / name
    if "/" not in name and shipped.is_dir():
        return load_bundle(shipped)
    check_not_retired(name)
    known = ", ".join(sorted(p.name for p in DEFAULT_BUNDLE.parent.iterdir() if p.is_dir()))
    raise InputNotFoundError(f"model bundle {name!r}: no such folder and no shipped bundle of that name "
                             f"(shipped: {known})")


def _task_settings(task: BatchTask, settings: Settings) -> Settings:
    if not isinstance(task, LandcoverTask):
        return settings
    update = {k: v for k in ("tile_size", "overlap", "batch_size", "device") if (v := getattr(task, k)) is not None}
    effective = settings.model_copy(update=update)
    try:
        check_tiling(effective.tile_size, effective.overlap)  # a task's tile_size against the settings' overlap
    except ValueError as err:
        raise InvalidInputError(f"landcover task: {err} (set both in the task)") from None
    return effective


def task_signature(task: BatchTask, settings: Settings) -> str:
    """What a task's outputs depend on (16 hex digits): its options, and for a model everything `predict`'s own
    signature holds besides the input (`geovigie.inference.prediction_signature`: weights, tiling, input scale and
    offset, runtime, calibration), so that changing any of them recomputes the layers."""
    parts: dict[str, Any] = task.model_dump(mode="json")
    if isinstance(task, LandcoverTask):
        bundle = resolve_bundle(task.bundle)
        options = PredictOptions.from_settings(_task_settings(task, settings))
        parts.update(bundle=bundle.id, prediction=prediction_signature(bundle, options))
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _aoi(config: BatchConfig) -> tuple[Any, tuple[float, float, float, float] | None]:
    """The area of interest as a shapely geometry in EPSG:4326 (or None) and the bbox to search."""
    if config.aoi is None:
        return None, config.bbox
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

    try:
        frame = gpd.read_file(config.aoi)
    except Exception as err:  # fiona/pyogrio raise many types for unreadable files
        raise InvalidInputError(f"aoi {config.aoi}: cannot read ({err})") from err
    if frame.empty or frame.crs is None:
        raise InvalidInputError(f"aoi {config.aoi}: " + ("no feature" if frame.empty else "no CRS"))
    area: BaseGeometry = frame.to_crs("EPSG:4326").geometry.union_all()
    west, south, east, north = area.bounds
    return area, (west, south, east, north)


def search_items(config: BatchConfig, settings: Settings) -> Selection:
    """The configured search's items: every match of the collections, area, datetime and CQL2 filter (`filter` and
    `query`), paged through to the end, less the cloudy ones (`max_cloud`), then at most `max_items`, in search
    order.

    Raises:
        InvalidInputError: the filter is not valid CQL2, or the area file is unreadable.
        GeovigieError: the source cannot be searched (unreachable API, unknown collection).
    """
    from shapely.geometry import shape

    location = config.source or str(settings.catalog_dir)
    location = settings.catalog_sources.get(location, location)
    area, bbox = _aoi(config)
    found = CatalogClient.open(location).search(collections=config.collections, bbox=bbox, datetime=config.datetime,
                                                filter=config.cql2, max_items=None)
    selection = Selection([], cap=config.max_items)
    for item in found.items():
        if area is not None and item.geometry is not None and not shape(item.geometry).intersects(area):
            continue
        if (why := cloud_skip_reason(item, config.max_cloud)) is not None:
            selection.cloudy.append((item, why))
        elif config.max_items is not None and len(selection.items) >= config.max_items:
            selection.beyond_cap += 1
        else:
            selection.items.append(item)
    return selection


def plan(config: BatchConfig, settings: Settings, state: BatchState,
         items: list[pystac.Item]) -> tuple[list[BatchJob], int]:
    """The jobs still to run (item by item, tasks in config order) and how many are up to date."""
    signatures = [(task, task_signature(task, settings)) for task in config.tasks]
    jobs, up_to_date = [], 0
    for item in items:
        fingerprint = item_fingerprint(item)
        for task, signature in signatures:
            key = job_key(item, task.kind)
            reason = state.status(key, fingerprint, signature)
            if reason == "done":
                up_to_date += 1
            else:
                jobs.append(BatchJob(item, task, reason, key, fingerprint, signature))
    return jobs, up_to_date


def output_settings(config: BatchConfig, settings: Settings, scheduler: str | None = None) -> Settings:
    """The settings jobs run with: data_dir is the config's output_dir; `scheduler` overrides the settings'."""
    update: dict[str, Any] = {"data_dir": config.output_dir or settings.data_dir}
    if scheduler:
        update["dask_scheduler"] = scheduler
    return settings.model_copy(update=update)


def state_path(config: BatchConfig, settings: Settings) -> Path:
    """Where the batch's state is kept: beside its outputs."""
    return safe_join(config.output_dir or settings.data_dir, "batch", f"{check_name(config.name, 'batch name')}.json")


def _model_client(settings: Settings, client: Any, stack: contextlib.ExitStack) -> Any:
    """`client`, else a Dask client for the settings' cluster (closed with `stack`).

    Raises:
        RemoteSourceError: the configured scheduler cannot be reached.
    """
    if client is not None:
        return client
    options = ClusterOptions.from_settings(settings)
    try:
        return stack.enter_context(dask_client(options))
    except (OSError, TimeoutError) as err:
        raise RemoteSourceError(f"cannot reach the Dask scheduler {options.scheduler}: {err}") from err


def _run_job(job: BatchJob, settings: Settings, client: Any, tiles: TileHook | None = None) -> PublishedLayer:
    task = job.task
    if isinstance(task, LandcoverTask):
        hook = (lambda done, total: tiles(job.item.id, done, total)) if tiles is not None else False
        return landcover(job.item, _task_settings(task, settings), bundle=resolve_bundle(task.bundle),
                         client=client, force=task.force, product_level=task.product_level, progress=hook)
    if isinstance(task, NdviTask):
        return ndvi(job.item, settings, crs=task.crs, resolution=task.resolution)
    return surface_temperature(job.item, settings)


def _describe(error: Exception) -> str:
    if isinstance(error, GeovigieError):
        return str(error)
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    place = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(error).__name__}: {error}{place}"


def run_batch(config: BatchConfig, settings: Settings, *, dry_run: bool = False, scheduler: str | None = None,
              client: Any = None, progress: bool = True, log: Log | None = None,
              tiles: TileHook | None = None) -> BatchReport:
    """One pass: search, run every task on each new or changed item, publish, record each job in the state.

    Args:
        config: the search and the tasks.
        settings: base settings; `config.output_dir` replaces their data_dir.
        dry_run: only list the jobs that would run; nothing is written.
        scheduler: a Dask scheduler address for model tasks (default: the settings', else a local cluster).
        client: a Dask client to reuse instead.
        progress: draw a progress bar over the jobs.
        log: called with one line per finished or failed job.
        tiles: called with (item id, tiles done, tiles total) as each land-cover inference advances.

    Raises:
        GeovigieError: the search itself failed (unreachable API, unknown collection), the state is unreadable or
            the Dask scheduler cannot be reached; a failing job is recorded instead, never raised.
    """
    settings = output_settings(config, settings, scheduler)
    path = state_path(config, settings)
    selection = search_items(config, settings)
    items = selection.items
    jobs, up_to_date = plan(config, settings, BatchState.load(path), items)
    report = BatchReport(config.name, path, len(items), up_to_date, jobs, dry_run=dry_run, selection=selection)
    say = log or (lambda line: None)
    for line in selection.notes():
        say(line)
    if dry_run or not jobs:
        return report  # nothing written: a rerun with nothing new leaves every file as it was
    with run_lock(path.parent), contextlib.ExitStack() as stack:
        state = BatchState.load(path)  # another run may have finished jobs while we waited for the lock
        report.jobs, report.up_to_date = plan(config, settings, state, items)
        if any(isinstance(job.task, LandcoverTask) for job in report.jobs):
            client = _model_client(settings, client, stack)  # one cluster for the pass; none for other tasks
        with progress_bar(f"batch {config.name}", total=len(report.jobs), enabled=progress) as advance:
            for job in report.jobs:
                try:
                    layer = _run_job(job, settings, client, tiles)
                except Exception as err:  # noqa: BLE001 - one bad item must not stop the others
                    report.failed.append((job, _describe(err)))
                else:
                    state.record_done(job.key, job.fingerprint, job.signature, layer=layer.id,
                                      item=str(layer.item_path))
                    report.published.append((job, layer))
                    say(f"ok      {printable(job.item.id)} {job.task.kind}: {layer.id} ({layer.detail})")
                    advance(1)
                    continue
                state.record_failure(job.key, job.fingerprint, job.signature, report.failed[-1][1])
                say(f"FAILED  {printable(job.item.id)} {job.task.kind}: {report.failed[-1][1]}")
                advance(1)
    return report


def watch_batch(config: BatchConfig, settings: Settings, *, interval: float, passes: int | None = None,
                stop: threading.Event | None = None, on_pass: Callable[[BatchReport], None] | None = None,
                **run_options: Any) -> BatchReport | None:
    """Run `run_batch` every `interval` seconds until `stop` is set, `passes` ran, or Ctrl-C/SIGTERM while idle.

    A signal during a pass propagates (the pass's finished jobs are already in the state); between passes it
    ends the loop cleanly.

    Returns:
        The last pass's report (None when stopped before the first finished).
    """
    stop = stop or threading.Event()
    last: BatchReport | None = None
    count = 0
    while not stop.is_set():
        last = run_batch(config, settings, **run_options)
        count += 1
        if on_pass is not None:
            on_pass(last)
        if passes is not None and count >= passes:
            break
        try:
            if stop.wait(interval):
                break
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under `terminate_as_interrupt`, while idle: a clean stop
            break
    return last
