"""Jobs over HTTP: `POST /jobs` (write key) queues a batch over a territory, `GET /jobs[/{id}]` watches it,
`DELETE /jobs/{id}` (write key) cancels it. The runner is `geovigie jobs worker` (started by `geovigie serve`): it
runs the same batch workflow as `geovigie batch` (workflows.run_jobs); this module only checks and records requests.

A request names its territory (`insee:CODE`, `dep:CODE`, `west,south,east,north`, or a GeoJSON Polygon /
MultiPolygon, Feature or FeatureCollection in WGS84), its period (`start/end`, ISO dates), its tasks, the source
collection (item tasks), optionally a source (a configured source name or an allow-listed STAC API URL) and a
shipped model bundle's name; the area tasks' inputs in `zan` and `dumps` (`service.job_inputs`). With an
`Idempotency-Key` header, a retried POST returns the job the first one created.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from geovigie.errors import GeovigieError
from geovigie.records import (
    AREA_TASKS,
    FINISHED,
    ITEM_TASKS,
    JOB_STATES,
    cancel_job,
    get_job,
    insert_job,
    list_jobs,
)
from geovigie.service.auth import NO_NUL, READ_RESPONSES, WRITE_RESPONSES, Access, ApiKey, error_response
from geovigie.service.job_inputs import DumpsIn, ZanIn, check_dumps, check_zan
from geovigie.settings import Settings
from geovigie.url_guard import check_redirects

PLAIN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
GEOJSON_MAX_VERTICES = 100_000
JobId = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="The job's id.")]


class JobIn(BaseModel):
    """A job request."""

    model_config = ConfigDict(extra="forbid")

    territory: str | dict[str, Any] = Field(
        description="insee:CODE (commune), dep:CODE, west,south,east,north, or a GeoJSON Polygon/MultiPolygon "
        "(geometry, Feature or FeatureCollection, WGS84).", examples=["insee:32001"])
    period: str = Field(description="start/end, ISO dates (inclusive).", examples=["2018-01-01/2018-12-31"],
                        max_length=60)
    tasks: list[Literal["landcover", "vegetation", "zan", "dumps", "heat"]] = Field(min_length=1, max_length=5)
    collection: str | None = Field(None, pattern=PLAIN_ID, description="The source collection of the item tasks "
                                   "(landcover, vegetation, heat), e.g. s2-l2a-theia-gers.")
    source: str | None = Field(None, max_length=500, pattern=NO_NUL, description="A configured source name or an "
                               "allow-listed STAC API URL; the local catalog when omitted.")
    bundle: str | None = Field(None, pattern=PLAIN_ID, description="A shipped model bundle's name (landcover).")
    zan: ZanIn | None = Field(None, description="Inputs of the zan task: two published class layers, zones, mapping.")
    dumps: DumpsIn | None = Field(None, description="Inputs of the dumps task: a shipped height model, options.")


def _refuse(message: str) -> HTTPException:
    return HTTPException(422, message)


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text[:10]) if len(text) <= 10 else datetime.fromisoformat(
            text.replace("Z", "+00:00")).date()
    except ValueError:
        raise _refuse(f"period: {what} {text!r} is not an ISO date (YYYY-MM-DD)") from None


def check_period(period: str) -> str:
    """`start/end` with start <= end, else 422."""
    start, slash, end = period.strip().partition("/")
    if not slash or not start or not end:
        raise _refuse(f"period {period!r}: give start/end, e.g. 2018-01-01/2018-12-31")
    first, last = _day(start, "start"), _day(end, "end")
    if first > last:
        raise _refuse(f"period {period!r}: the start is after the end")
    return f"{start}/{end}"


def _geojson_shape(value: dict[str, Any]) -> Any:
    from shapely.geometry import shape
    from shapely.ops import unary_union

    kind = value.get("type")
    try:
        if kind == "Feature":
            return _geojson_shape(value.get("geometry") or {})
        if kind == "FeatureCollection":
            return unary_union([_geojson_shape(f) for f in value.get("features") or []])
        if kind not in ("Polygon", "MultiPolygon"):
            raise _refuse(f"territory: a GeoJSON Polygon or MultiPolygon is needed, not {kind!r}")
        if len(json.dumps(value.get("coordinates"))) > GEOJSON_MAX_VERTICES * 40:
            raise _refuse("territory: the geometry has too many vertices (simplify it)")
        return shape(value)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise _refuse(f"territory: not a valid GeoJSON geometry ({err})") from None


def resolve_territory(settings: Settings, territory: str | dict[str, Any]) -> tuple[Any, str]:
    """The territory as a shapely geometry in WGS84 and a label, else 422."""
    from shapely.validation import explain_validity

    if isinstance(territory, str):
        from geovigie.catalog.imagery import parse_aoi

        kind = territory.strip().partition(":")[0].lower()
        if kind not in ("insee", "dep") and not re.fullmatch(r"[0-9.,\s+eE-]+", territory):
            raise _refuse(f"territory {territory!r}: use insee:CODE, dep:CODE, west,south,east,north or GeoJSON")
        try:
            aoi = parse_aoi(territory, sample_dir=settings.sample_data_path())
        except GeovigieError as err:
            raise _refuse(f"territory: {err}") from None
        return aoi.geometry, aoi.label
    geometry = _geojson_shape(territory)
    if not geometry.is_empty and not geometry.is_valid:
        raise _refuse(f"territory: invalid geometry ({explain_validity(geometry)})")
    if geometry.is_empty or geometry.area == 0:
        raise _refuse("territory: the geometry is empty")
    west, south, east, north = geometry.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise _refuse("territory: coordinates outside WGS84 longitude/latitude (GeoJSON is EPSG:4326)")
    return geometry, "GeoJSON territory"


def area_km2(geometry: Any) -> float:
    """Geodesic area of a WGS84 geometry, km²."""
    from pyproj import Geod

    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(geometry)
    return abs(area) / 1e6


def check_source(settings: Settings, source: str | None) -> None:
    """A configured source name, or an allow-listed URL that passes the SSRF guard (422 otherwise)."""
    if source is None or source in settings.catalog_sources:
        return
    if not source.startswith(("http://", "https://")):
        known = ", ".join(sorted(settings.catalog_sources)) or "none configured"
        raise _refuse(f"source {source!r}: give a STAC API URL or a configured source name ({known})")
    try:
        check_redirects(source, settings.remote_url_allow_list)
    except GeovigieError as err:
        raise _refuse(f"source: {err}") from None


def check_task_inputs(body: JobIn) -> None:
    """Item tasks need a collection; each area task its inputs (and inputs only for the tasks asked), else 422."""
    items = [t for t in body.tasks if t in ITEM_TASKS]
    if items and body.collection is None:
        raise _refuse(f"collection: the {', '.join(items)} task(s) run on the items of a collection; name it")
    for name in AREA_TASKS:
        given = getattr(body, name) is not None
        if name in body.tasks and not given:
            needed = "before and after (two published class layers)" if name == "zan" else "height_model"
            raise _refuse(f"{name}: the {name} task needs its inputs in the request's {name!r} object: {needed}")
        if given and name not in body.tasks:
            raise _refuse(f"{name}: inputs given but {name!r} is not in tasks")


def check_bundle(name: str | None) -> None:
    """A job's bundle is a shipped one (not a retired one: the 422 names its successor), else 422. Read from the
    package's folder without importing `geovigie.models` (no torch in the service)."""
    if name is None:
        return
    from importlib.util import find_spec
    from pathlib import Path as FilePath

    from geovigie.retired_bundles import retired_message

    message = retired_message(name)
    if message is not None:
        raise _refuse(f"bundle: {message}")
    spec = find_spec("geovigie.models")
    folders = [FilePath(root) / "bundles" for root in (spec.submodule_search_locations or [])] if spec else []
    if not any((folder / name / "card.json").is_file() for folder in folders):
        known = ", ".join(sorted(p.name for folder in folders if folder.is_dir() for p in folder.iterdir()
                                 if (p / "card.json").is_file()))
        raise _refuse(f"bundle {name!r}: no shipped bundle of that name (shipped: {known})")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def job_view(settings: Settings, row: dict[str, Any]) -> dict[str, Any]:
    """A job as the API shows it."""
    base = settings.public_base_url
    request = {k: v for k, v in row["request"].items() if k != "geometry"}
    return {
        "id": row["id"], "state": row["state"], "owner": row["owner"], "request": request,
        "progress": {"done": row["progress_done"], "total": row["progress_total"], "unit": row["progress_unit"],
                     "tiles": row.get("progress_tiles")},
        "log": row["log"], "error": row["error"], "cancel_requested": row["cancel_requested"],
        "attempts": row["attempts"], "created": _iso(row["created"]), "started": _iso(row["started"]),
        "finished": _iso(row["finished"]),
        "links": [{"rel": "self", "href": f"{base}/jobs/{row['id']}", "type": "application/json"}, *row["links"]],
    }


def dask_readiness(settings: Settings) -> tuple[dict[str, Any], bool]:
    """The job runners heard from lately and the Dask cluster each sees (scheduler, reachable, workers), and
    whether that makes the service degraded: no runner while `job_runner` is on, or no runner reaching its
    scheduler (queued jobs then wait)."""
    from geovigie.records import live_runners

    try:
        runners = live_runners(settings)
    except GeovigieError as err:
        return {"status": "unknown", "error": str(err)[:300]}, True
    reachable = [r for r in runners if r.get("reachable")]
    if not runners:
        status = "no job runner" if settings.job_runner else "no job runner (job_runner off)"
        return {"status": status, "runners": [], "workers": 0}, settings.job_runner
    status = "ok" if reachable else "scheduler unreachable"
    return {"status": status, "runners": runners, "workers": sum(int(r.get("workers") or 0) for r in reachable)}, \
        not reachable


def router(access: Access) -> APIRouter:
    """The jobs endpoints."""
    settings = access.settings
    routes = APIRouter(tags=["jobs"], responses=READ_RESPONSES)
    writer = Depends(access.writer())
    _missing = error_response("No such job.")
    _conflict = error_response("Idempotency-Key reused for another request, or the job has already finished.")

    @routes.post("/jobs", status_code=202, responses={**WRITE_RESPONSES, 409: _conflict},
                 summary="Queue a job (write key): territory, period, tasks, collection.")
    def submit(body: JobIn, response: Response, key: ApiKey = writer,
               idempotency_key: Annotated[str | None, Header(max_length=200, pattern=NO_NUL)] = None,
               ) -> dict[str, Any]:
        given = body.model_dump(mode="json")
        if len(set(body.tasks)) != len(body.tasks):
            raise _refuse("tasks: each task once")
        check_task_inputs(body)
        check_bundle(body.bundle)
        period = check_period(body.period)
        geometry, label = resolve_territory(settings, body.territory)
        area = area_km2(geometry)
        if area > settings.job_max_area_km2:
            raise _refuse(f"territory {label}: {area:,.0f} km² is larger than the {settings.job_max_area_km2:,.0f} "
                          "km² a job may cover (job_max_area_km2); split it")
        check_source(settings, body.source)
        if body.zan is not None:
            check_zan(settings, body.zan, geometry, label)
        if body.dumps is not None:
            check_dumps(settings, body.dumps, geometry, label)
        from shapely.geometry import mapping

        given["period"] = period
        request = {**given, "territory_label": label, "area_km2": round(area, 3),
                   "geometry": mapping(geometry)}
        row, created = insert_job(settings, key.owner, request, idempotency_key)
        if not created:
            stored = {k: row["request"].get(k) for k in given}
            if stored != given:
                raise HTTPException(409, f"Idempotency-Key {idempotency_key!r} was used for another request "
                                         f"(job {row['id']})")
            response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"{settings.public_base_url}/jobs/{row['id']}"
        return job_view(settings, row)

    @routes.get("/jobs", summary="Jobs, newest first.")
    def jobs(state: Annotated[Literal["queued", "running", "succeeded", "failed", "cancelled"] | None,
                              Query()] = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 100,
             offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> dict[str, Any]:
        rows = list_jobs(settings, state=state, limit=limit, offset=offset)
        return {"jobs": [job_view(settings, row) for row in rows], "states": list(JOB_STATES)}

    @routes.get("/jobs/{job_id}", responses={404: _missing},
                summary="One job: state, progress, log lines, links to what it published.")
    def job(job_id: JobId) -> dict[str, Any]:
        row = get_job(settings, job_id)
        if row is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job_view(settings, row)

    @routes.delete("/jobs/{job_id}", status_code=202, responses={**WRITE_RESPONSES, 404: _missing, 409: _conflict},
                   summary="Cancel a job (write key): a queued job at once, a "
                   "running one after its current item.")
    def cancel(job_id: JobId, key: ApiKey = writer) -> dict[str, Any]:
        row = cancel_job(settings, job_id, key.owner)
        if row is None:
            raise HTTPException(404, f"no job {job_id!r}")
        if row["state"] in FINISHED and not row["cancel_requested"]:
            raise HTTPException(409, f"job {job_id} already {row['state']}")
        return job_view(settings, row)

    return routes
