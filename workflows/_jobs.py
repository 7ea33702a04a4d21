"""The job runner: jobs submitted over HTTP (`POST /jobs`) run through the same batch workflow as `geovigie batch`.

A job's item tasks (landcover, vegetation, heat) with its territory geometry, period, collection, source and bundle
become a `BatchConfig` named `job-<id>` whose state file lives beside the outputs (DATA_DIR/batch/job-<id>.json): a
job claimed again after its runner died skips the items it finished and, inside an interrupted prediction, the
chunks in the run journal. Its area tasks (zan, dumps: `workflows._job_areas`) run afterwards, once each; the
finished ones are recorded in DATA_DIR/jobs/<id>/areas.json and not run again on a resume.
Progress is counted in tasks (one item task on one item, or one area task), with the tiles done / total of the
running inference; a cancel is honoured between tasks.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from geovigie.atomic import write_json_atomic
from geovigie.errors import GeovigieError, InvalidInputError
from geovigie.records import (
    AREA_TASKS,
    ITEM_TASKS,
    RUNNABLE_TASKS,
    beat_runner,
    claim_job,
    finish_job,
    forget_runner,
    report_job,
)
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION, stac_backend
from geovigie.url_guard import check_redirects
from geovigie.workflows._batch import run_batch, state_path
from geovigie.workflows._batch_config import BatchConfig, BatchTask, LandcoverTask, NdviTask, TemperatureTask
from geovigie.workflows._batch_state import BatchState
from geovigie.workflows._job_areas import AREA_RUNNERS, AreaResult

log = logging.getLogger(__name__)

PROGRESS_UNIT = "item tasks"
TILE_REPORT_INTERVAL_S = 1.0
"""At most one database write per this many seconds for tile progress (and one at the end of each run)."""
DASK_PROBE_INTERVAL_S = 30.0
"""How often a runner with a configured scheduler connects to it to check it answers and count its workers."""
DASK_CONNECT_TIMEOUT_S = 5.0


class JobCancelledError(Exception):
    """A cancel was requested while the job ran."""


def worker_id() -> str:
    """This process as a runner: `host:pid` (a runner on the same host sees when it is gone)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _task(name: str, bundle: str | None) -> BatchTask:
    if name == "landcover":
        return LandcoverTask.model_validate({"kind": "landcover", "bundle": bundle})
    if name == "vegetation":
        return NdviTask.model_validate({"kind": "ndvi"})
    if name == "heat":
        return TemperatureTask.model_validate({"kind": "temperature"})
    raise InvalidInputError(f"task {name!r} cannot run as a job yet (runnable: {', '.join(RUNNABLE_TASKS)})")


def job_source(settings: Settings, source: str | None) -> str:
    """Where a job searches: the local catalog, a settings source name, or an allow-listed STAC API URL.

    Raises:
        InvalidInputError: an unknown name; `UnsafeUrlError` for a URL that is not allowed.
    """
    if source is None:
        return str(settings.catalog_dir)
    location = settings.catalog_sources.get(source)
    if location is None and source.startswith(("http://", "https://")):
        location = source
    if location is None:
        known = ", ".join(sorted(settings.catalog_sources)) or "none configured"
        raise InvalidInputError(f"source {source!r}: give a STAC API URL or a configured source name ({known})")
    if location.startswith(("http://", "https://")):
        check_redirects(location, settings.remote_url_allow_list)
    return location


def batch_config(job: dict[str, Any], settings: Settings) -> BatchConfig:
    """The batch a job runs: its territory (written beside its state), period, collection and tasks."""
    request = job["request"]
    aoi = settings.data_dir / "jobs" / job["id"] / "territory.geojson"
    if not aoi.is_file():
        write_json_atomic(aoi, {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"territory": request.get("territory_label")},
             "geometry": request["geometry"]}]})
    return BatchConfig.model_validate({
        "name": f"job-{job['id']}", "source": job_source(settings, request.get("source")),
        "collection": request["collection"], "aoi": aoi, "datetime": request.get("period"),
        "tasks": [_task(name, request.get("bundle")) for name in request["tasks"] if name in ITEM_TASKS]})


def _layer_links(settings: Settings, layer: str) -> list[dict[str, Any]]:
    base = settings.public_base_url
    links = [{"rel": "layer", "href": f"{base}/layers/{layer}", "type": "application/json", "title": layer}]
    if stac_backend(settings) == "pgstac":
        links.append({"rel": "item", "href": f"{base}/api/stac/collections/{RESULTS_COLLECTION}/items/{layer}",
                      "type": "application/geo+json", "title": layer})
    return links


def _areas_path(settings: Settings, job_id: str) -> Path:
    return settings.data_dir / "jobs" / job_id / "areas.json"


def _areas_done(settings: Settings, job_id: str) -> dict[str, Any]:
    path = _areas_path(settings, job_id)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def job_links(settings: Settings, config: BatchConfig | None, job_id: str | None = None) -> list[dict[str, Any]]:
    """Links to the layers (and STAC items) the job's batch has published so far, and to what its finished area
    tasks published (layers, CSV / GeoJSON files, OGC API Features of the PostGIS tables)."""
    base = settings.public_base_url
    links = []
    records = BatchState.load(state_path(config, settings)).done.values() if config is not None else []
    for record in records:
        layer = record.get("layer")
        if layer:
            links += _layer_links(settings, layer)
    for name, done in (_areas_done(settings, job_id) if job_id else {}).items():
        for layer in done["layers"]:
            links += _layer_links(settings, layer)
        links += [{**link, "href": base + link["href"], "task": name} for link in done["links"]]
    return links


class _TileReporter:
    """Tile progress of the running inference, written to the job at most every TILE_REPORT_INTERVAL_S."""

    def __init__(self, settings: Settings, job_id: str, worker: str) -> None:
        self.settings, self.job_id, self.worker, self.last = settings, job_id, worker, 0.0

    def __call__(self, item: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < TILE_REPORT_INTERVAL_S and done:
            return
        self.last = now
        report_job(self.settings, self.job_id, self.worker, tiles={"done": done, "total": total, "item": item})


def _describe(error: BaseException) -> str:
    if isinstance(error, GeovigieError):
        return str(error)
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    return f"{type(error).__name__}: {error}" + (f" (at {Path(where.filename).name}:{where.lineno})" if where else "")


def run_job(settings: Settings, job: dict[str, Any], worker: str, *, client: Any = None) -> str:
    """Run one claimed job to its end; returns its final state (a signal leaves it running, to be resumed)."""
    job_id = job["id"]
    beating = threading.Event()

    def heartbeat() -> None:
        while not beating.wait(max(0.5, settings.job_stale_after_s / 4)):
            report_job(settings, job_id, worker)

    beat = threading.Thread(target=heartbeat, name=f"job-{job_id}-heartbeat", daemon=True)
    beat.start()
    config = None
    request = job["request"]
    areas = [name for name in request["tasks"] if name in AREA_TASKS]
    try:
        areas_done = _areas_done(settings, job_id)
        done, total, plan = sum(1 for a in areas if a in areas_done), len(areas), None
        if any(name in ITEM_TASKS for name in request["tasks"]):
            config = batch_config(job, settings)
            plan = run_batch(config, settings, dry_run=True, progress=False)
            done, total = done + plan.up_to_date, total + plan.up_to_date + len(plan.jobs)
            if plan.up_to_date + len(plan.jobs) == 0:
                raise InvalidInputError(f"no item of {', '.join(config.collections)} in the territory and period "
                                        f"({request.get('period') or 'any date'})")
        counted = f"{plan.items} items, " if plan is not None else ""
        if report_job(settings, job_id, worker, done=done, total=total, unit=PROGRESS_UNIT,
                      line=f"{counted}tasks: {total} ({done} already done)"):
            raise JobCancelledError

        def progress(line: str) -> None:
            nonlocal done
            done += line.startswith(("ok ", "FAILED "))  # the batch's notes on the search are not tasks
            if report_job(settings, job_id, worker, line=line, done=done):
                raise JobCancelledError

        failed: list[str] = []
        published = 0
        if config is not None:
            report = run_batch(config, settings, client=client, progress=False, log=progress,
                               tiles=_TileReporter(settings, job_id, worker))
            failed += [f"{j.item.id} {j.task.kind}: {e}" for j, e in report.failed]
            published += len(report.published)
        for name in areas:
            if name in areas_done:
                continue
            result = _run_area(settings, job_id, request, name, worker)
            if isinstance(result, str):
                failed.append(f"{name}: {result}")
                progress(f"FAILED  {name}: {result}")
                continue
            areas_done[name] = {"layers": [layer.id for layer in result.layers], "links": result.links}
            write_json_atomic(_areas_path(settings, job_id), areas_done)
            published += len(result.layers)
            progress(f"ok      {name}: " + ", ".join(f"{layer.id} ({layer.detail})" for layer in result.layers))
        state = "failed" if failed else "succeeded"
        finish_job(settings, job_id, worker, state, links=job_links(settings, config, job_id),
                   error="; ".join(failed) or None,
                   line=f"{state}: {published} published, {len(failed)} failed")
        return state
    except JobCancelledError:
        finish_job(settings, job_id, worker, "cancelled", links=job_links(settings, config, job_id), line="cancelled")
        return "cancelled"
    except Exception as err:  # noqa: BLE001 - the job fails with its reason; the runner carries on
        log.warning("job %s failed", job_id, exc_info=not isinstance(err, GeovigieError))
        finish_job(settings, job_id, worker, "failed", links=job_links(settings, config, job_id),
                   error=_describe(err), line="failed")
        return "failed"
    finally:
        beating.set()


def _run_area(settings: Settings, job_id: str, request: dict[str, Any], name: str, worker: str) -> AreaResult | str:
    """One area task; its failure as a one-line reason (the job's other tasks still run)."""
    def say(line: str) -> None:
        report_job(settings, job_id, worker, line=line)

    try:
        return AREA_RUNNERS[name](settings, job_id, request, say)
    except Exception as err:  # noqa: BLE001 - recorded as the task's failure
        log.warning("job %s: %s failed", job_id, name, exc_info=not isinstance(err, GeovigieError))
        return _describe(err)


def dask_state(settings: Settings, client: Any = None) -> dict[str, Any]:
    """The Dask cluster jobs run on, as this runner sees it: scheduler (or "local"), reachable, workers."""
    if client is not None:
        return {"scheduler": str(client.scheduler.address), "reachable": True,
                "workers": len(client.scheduler_info().get("workers", {}))}
    if not settings.dask_scheduler:
        return {"scheduler": "local", "reachable": True, "workers": settings.dask_workers,
                "note": "a LocalCluster started for each job"}
    from distributed import Client

    try:
        with Client(settings.dask_scheduler, timeout=DASK_CONNECT_TIMEOUT_S) as probe:
            workers = len(probe.scheduler_info().get("workers", {}))
    except (OSError, TimeoutError) as err:
        return {"scheduler": settings.dask_scheduler, "reachable": False, "workers": 0, "error": str(err)[:200]}
    return {"scheduler": settings.dask_scheduler, "reachable": True, "workers": workers}


def _runner_beats(settings: Settings, worker: str, client: Any, stop: threading.Event) -> threading.Thread:
    """A thread recording this runner's heartbeat and Dask state (probed every DASK_PROBE_INTERVAL_S)."""

    def beat() -> None:
        state, probed = None, 0.0
        while True:
            try:
                if state is None or time.monotonic() - probed > DASK_PROBE_INTERVAL_S:
                    state, probed = dask_state(settings, client), time.monotonic()
                beat_runner(settings, worker, state)
            except Exception as err:  # noqa: BLE001 - a missed beat is logged; the runner carries on
                log.warning("runner %s: heartbeat not recorded (%s)", worker, err)
            if stop.wait(max(0.5, settings.job_stale_after_s / 4)):
                return

    thread = threading.Thread(target=beat, name=f"runner-{worker}-heartbeat", daemon=True)
    thread.start()
    return thread


def run_jobs(settings: Settings, *, stop: threading.Event | None = None, poll_s: float = 2.0,
             until_empty: bool = False, client: Any = None, worker: str | None = None) -> int:
    """Claim and run jobs until `stop` is set (or, with `until_empty`, none is left); returns how many ran."""
    stop = stop or threading.Event()
    worker = worker or worker_id()
    count = 0
    beating = threading.Event()
    beats = _runner_beats(settings, worker, client, beating)
    try:
        while not stop.is_set():
            job = claim_job(settings, worker)
            if job is None:
                if until_empty:
                    break
                stop.wait(poll_s)
                continue
            log.info("job %s claimed by %s", job["id"], worker)
            run_job(settings, job, worker, client=client)
            count += 1
    finally:
        beating.set()
        beats.join(timeout=DASK_CONNECT_TIMEOUT_S + 5)
        try:
            forget_runner(settings, worker)
        except Exception as err:  # noqa: BLE001 - the row goes stale by itself
            log.warning("runner %s: not removed from the runners (%s)", worker, err)
    return count
