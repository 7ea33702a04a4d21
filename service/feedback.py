"""Dump sites and field feedback: a site with its history, feedback posted with a key, exported as training labels.

`GET /sites/{site_id}`: the site (GeoJSON Feature, latest pass) and its `history` (statuses across passes and
feedback records, oldest first). `POST /sites/{site_id}/feedback` (write key): confirmed / false_alarm / cleaned
and a comment, stored with the key's owner as author and the UTC time. `GET /feedback/export?format=geojson`: the
field-validation label file `geovigie train` reads (`[labels] source = "field-validation"`): one feature per site
(its latest feedback; `all=true` for every record) with `status`, `date` (YYYY-MM-DD), `author`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from geovigie.records import connect, sync_sites, sync_zones
from geovigie.service.auth import NO_NUL, READ_RESPONSES, WRITE_RESPONSES, Access, ApiKey, error_response
from geovigie.settings import Settings

SYNC_INTERVAL_S = 2.0
"""The dump-site files are checked for new passes at most this often."""
GEOJSON = "application/geo+json"
SiteId = Annotated[str, Path(max_length=200, pattern=NO_NUL, description="The site's id (site_id).")]


class GeoJSONResponse(JSONResponse):
    """JSON sent as `application/geo+json` (and documented so)."""

    media_type = GEOJSON


SITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: error_response("No such site."),
    409: error_response("The site id is in several watches: add ?watch=."),
}


class SiteSync:
    """`sync_sites` (and `sync_zones`, with `zones`) at most every `SYNC_INTERVAL_S` seconds, one thread at a
    time."""

    def __init__(self, settings: Settings, *, zones: bool = False) -> None:
        self.settings = settings
        self.zones = zones
        self._last = -SYNC_INTERVAL_S
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if time.monotonic() - self._last >= SYNC_INTERVAL_S:
                sync_sites(self.settings)
                if self.zones:
                    sync_zones(self.settings)
                self._last = time.monotonic()


class FeedbackIn(BaseModel):
    """What a field agent reports about a site."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["confirmed", "false_alarm", "cleaned"]
    comment: str = Field("", max_length=2000, pattern=NO_NUL)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "site_id": row["site_id"], "watch": row["watch"], "status": row["status"],
            "comment": row["comment"], "author": row["author"], "time": _iso(row["created"])}


def _find_site(conn: Any, site_id: str, watch: str | None) -> dict[str, Any]:
    rows = conn.execute("SELECT *, ST_AsGeoJSON(geom)::json AS geometry FROM geovigie.dump_sites WHERE site_id = %s "
                        "AND (%s::text IS NULL OR watch = %s) ORDER BY watch", (site_id, watch, watch)).fetchall()
    if not rows:
        raise HTTPException(404, f"no dump site {site_id!r}" + (f" in watch {watch!r}" if watch else ""))
    if len(rows) > 1:
        raise HTTPException(409, f"dump site {site_id!r} is in several watches ({', '.join(r['watch'] for r in rows)})"
                                 ": add ?watch=NAME")
    return dict(rows[0])


def site_feature(conn: Any, site: dict[str, Any]) -> dict[str, Any]:
    """The site as a GeoJSON Feature with its history (passes and feedback, oldest first)."""
    key = (site["watch"], site["site_id"])
    passes = conn.execute("SELECT pass_date, status, area_m2 FROM geovigie.dump_site_passes WHERE watch = %s AND "
                          "site_id = %s ORDER BY pass_date", key).fetchall()
    feedback = conn.execute("SELECT * FROM geovigie.feedback WHERE watch = %s AND site_id = %s ORDER BY created, id",
                            key).fetchall()
    history: list[dict[str, Any]] = [{"kind": "pass", "time": row["pass_date"].isoformat(), "status": row["status"],
                                      "area_m2": row["area_m2"]} for row in passes]
    history += [{"kind": "feedback", **_record(row)} for row in feedback]
    history.sort(key=lambda entry: entry["time"])  # a date sorts before the same day's feedback times
    properties = {**site["properties"], "watch": site["watch"], "site_id": site["site_id"],
                  "status": site["status"], "pass_date": site["pass_date"].isoformat(),
                  "feedback_status": feedback[-1]["status"] if feedback else None}
    return {"type": "Feature", "id": site["site_id"], "geometry": site["geometry"], "properties": properties,
            "history": history}


def export_features(conn: Any, every: bool) -> list[dict[str, Any]]:
    """Field-validation features: each site's latest feedback (or every record), on the site's geometry."""
    latest = "" if every else "DISTINCT ON (watch, site_id)"
    order = "created, id" if every else "watch, site_id, created DESC, id DESC"
    rows = conn.execute(f"SELECT {latest} *, ST_AsGeoJSON(geom)::json AS geometry FROM geovigie.feedback "
                        f"ORDER BY {order}").fetchall()
    features = []
    for row in rows:
        day = row["created"].astimezone(UTC).date().isoformat()
        # the field-validation record of training/_labels.py (`field_record`; the service does not import training)
        features.append({"type": "Feature", "geometry": row["geometry"], "properties": {
            "status": row["status"], "date": day, "author": row["author"], "site_id": row["site_id"],
            "watch": row["watch"], "comment": row["comment"], "time": _iso(row["created"])}})
    return features


def router(access: Access) -> APIRouter:
    """The sites and feedback endpoints."""
    settings = access.settings
    sync = SiteSync(settings)
    routes = APIRouter(tags=["sites and feedback"], responses=READ_RESPONSES)
    writer = Depends(access.writer())

    @routes.get("/sites/{site_id}", responses=SITE_RESPONSES, response_class=GeoJSONResponse,
                summary="A dump site (GeoJSON Feature) with its history across passes and its "
                "feedback, oldest first.")
    def get_site(site_id: SiteId, watch: Annotated[str | None, Query(
            pattern=NO_NUL, description="The watch, when the id is in several.")] = None) -> JSONResponse:
        sync()
        with connect(settings) as conn:
            feature = site_feature(conn, _find_site(conn, site_id, watch))
        return GeoJSONResponse(feature)

    @routes.post("/sites/{site_id}/feedback", status_code=201, responses={**WRITE_RESPONSES, **SITE_RESPONSES},
                 summary="Report a site confirmed, a false alarm or "
                 "cleaned (write key); the author is the key's owner.")
    def post_feedback(site_id: SiteId, body: FeedbackIn, watch: Annotated[str | None, Query(pattern=NO_NUL)] = None,
                      key: ApiKey = writer) -> dict[str, Any]:
        sync()
        with connect(settings) as conn:
            site = _find_site(conn, site_id, watch)
            row = conn.execute("INSERT INTO geovigie.feedback (watch, site_id, status, comment, author, geom) "
                               "SELECT watch, site_id, %s, %s, %s, geom FROM geovigie.dump_sites WHERE watch = %s "
                               "AND site_id = %s RETURNING *",
                               (body.status, body.comment, key.owner, site["watch"], site_id)).fetchone()
        return _record(row)

    @routes.get("/feedback/export", response_class=GeoJSONResponse,
                summary="Feedback as the field-validation labels `geovigie train` reads "
                "(GeoJSON: status, date, author per site).")
    def export(format: Annotated[Literal["geojson"], Query(description="Only geojson.")] = "geojson",
               all: Annotated[bool, Query(description="Every record, not only each site's latest.")] = False,
               ) -> JSONResponse:
        with connect(settings) as conn:
            features = export_features(conn, all)
        return GeoJSONResponse({"type": "FeatureCollection", "features": features},
                            headers={"Content-Disposition": 'attachment; filename="field-validation.geojson"'})

    return routes
