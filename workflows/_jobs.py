"""The job runner: jobs submitted over HTTP (`POST /jobs`) run through the same batch workflow as `geovigie batch`.

A job's request (territory geometry, period, tasks, collection, source, bundle) becomes a `BatchConfig` named
`job-<id>` whose state file lives beside the outputs (DATA_DIR/batch/job-<id>.json): a job claimed again after its
runner died skips the items it finished and, inside an interrupted prediction, the chunks in the run journal.
Progress is counted in item tasks (one task on one item); a cancel is honoured between them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from pathlib import Path
from typing import Any

from geovigie.atomic import write_json_atomic
from geovigie.errors import GeovigieError, InvalidInputError
from geovigie.records import RUNNABLE_TASKS, claim_job, finish_job, report_job
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION, stac_backend
from geovigie.url_guard import check_redirects
from geovigie.workflows._batch import run_batch, state_path
from geovigie.workflows._batch_config import BatchConfig, BatchTask, LandcoverTask, NdviTask, TemperatureTask
from geovigie.workflows._batch_state import BatchState

log = logging.getLogger(__name__)

PROGRESS_UNIT = "item tasks"


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
        "tasks": [_task(name, request.get("bundle")) for name in request["tasks"]]})


def job_links(settings: Settings, config: BatchConfig) -> list[dict[str, Any]]:
    """Links to the layers (and STAC items) the job's batch has published so far."""
    base = settings.public_base_url
    links = []
    for record in BatchState.load(state_path(config, settings)).done.values():
        layer = record.get("layer")
        if not layer:
            continue
        links.append({"rel": "layer", "href": f"{base}/layers/{layer}", "type": "application/json", "title": layer})
        if stac_backend(settings) == "pgstac":
            links.append({"rel": "item", "href": f"{base}/api/stac/collections/{RESULTS_COLLECTION}/items/{layer}",
                          "type": "application/geo+json", "title": layer})
    return links


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
    try:
        config = batch_config(job, settings)
        plan = run_batch(config, settings, dry_run=True, progress=False)
        done, total = plan.up_to_date, plan.up_to_date + len(plan.jobs)
        if total == 0:
            raise InvalidInputError(f"no item of {', '.join(config.collections)} in the territory and period "
                                    f"({job['request'].get('period') or 'any date'})")
        if report_job(settings, job_id, worker, done=done, total=total, unit=PROGRESS_UNIT,
                      line=f"{plan.items} items, {total} item tasks ({done} already done)"):
            raise JobCancelledError

        def progress(line: str) -> None:
            nonlocal done
            done += 1
            if report_job(settings, job_id, worker, line=line, done=done):
                raise JobCancelledError

        report = run_batch(config, settings, client=client, progress=False, log=progress)
        state = "succeeded" if report.ok else "failed"
        error = "; ".join(f"{j.item.id} {j.task.kind}: {e}" for j, e in report.failed) or None
        finish_job(settings, job_id, worker, state, links=job_links(settings, config), error=error,
                   line=f"{state}: {len(report.published)} published, {len(report.failed)} failed")
        return state
    except JobCancelledError:
        links = job_links(settings, config) if config is not None else []
        finish_job(settings, job_id, worker, "cancelled", links=links, line="cancelled")
        return "cancelled"
    except Exception as err:  # noqa: BLE001 - the job fails with its reason; the runner carries on
        log.warning("job %s failed", job_id, exc_info=not isinstance(err, GeovigieError))
        links = job_links(settings, config) if config is not None else []
        finish_job(settings, job_id, worker, "failed", links=links, error=_describe(err), line="failed")
        return "failed"
    finally:
        beating.set()


def run_jobs(settings: Settings, *, stop: threading.Event | None = None, poll_s: float = 2.0,
             until_empty: bool = False, client: Any = None, worker: str | None = None) -> int:
    """Claim and run jobs until `stop` is set (or, with `until_empty`, none is left); returns how many ran."""
    stop = stop or threading.Event()
    worker = worker or worker_id()
    count = 0
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
    return count
