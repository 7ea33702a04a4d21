"""The `geovigie` schema in the project's PostgreSQL: API keys, jobs, feedback and the dump sites served as features.

Used by the service (keys, feedback, jobs API, OGC API Features) and the job runner (`workflows`); it imports no
model code (the service never loads torch).

The same database as the STAC API (`tiles.results_database`): the private cluster under DATA_DIR/postgres, or the
configured server. Migrations are numbered SQL scripts applied once, in order, under an advisory lock (several
processes may start together); `connect` applies them on a process's first connection to a database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geovigie.errors import GeovigieError
from geovigie.settings import Settings
from geovigie.tiles import results_database

log = logging.getLogger(__name__)

SCHEMA = "geovigie"
MIGRATION_LOCK = 0x6765_6F76  # "geov": the advisory lock held while migrating

MIGRATIONS: tuple[str, ...] = (
    # 1: keys, jobs, feedback, dump sites and their passes
    """
    CREATE EXTENSION IF NOT EXISTS postgis;
    CREATE TABLE geovigie.api_keys (
        id text PRIMARY KEY,
        owner text NOT NULL,
        scopes text[] NOT NULL,
        sha256 bytea NOT NULL,
        created timestamptz NOT NULL DEFAULT now(),
        revoked timestamptz,
        last_used timestamptz
    );
    CREATE TABLE geovigie.jobs (
        id text PRIMARY KEY,
        owner text NOT NULL,
        idempotency_key text,
        request jsonb NOT NULL,
        state text NOT NULL DEFAULT 'queued'
            CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        progress_done integer NOT NULL DEFAULT 0,
        progress_total integer,
        progress_unit text NOT NULL DEFAULT 'item tasks',
        log jsonb NOT NULL DEFAULT '[]'::jsonb,
        links jsonb NOT NULL DEFAULT '[]'::jsonb,
        error text,
        cancel_requested boolean NOT NULL DEFAULT false,
        attempts integer NOT NULL DEFAULT 0,
        worker text,
        created timestamptz NOT NULL DEFAULT now(),
        started timestamptz,
        finished timestamptz,
        heartbeat timestamptz,
        UNIQUE (owner, idempotency_key)
    );
    CREATE INDEX jobs_state ON geovigie.jobs (state, created);
    CREATE TABLE geovigie.dump_sites (
        id text PRIMARY KEY,
        watch text NOT NULL,
        site_id text NOT NULL,
        pass_date date NOT NULL,
        status text NOT NULL,
        area_m2 double precision,
        volume_m3 double precision,
        commune_code text,
        commune_name text,
        first_seen date,
        last_seen date,
        candidate boolean,
        properties jsonb NOT NULL,
        geom geometry(Geometry, 4326) NOT NULL,
        UNIQUE (watch, site_id)
    );
    CREATE INDEX dump_sites_geom ON geovigie.dump_sites USING gist (geom);
    CREATE TABLE geovigie.dump_site_passes (
        watch text NOT NULL,
        site_id text NOT NULL,
        pass_date date NOT NULL,
        status text NOT NULL,
        area_m2 double precision,
        PRIMARY KEY (watch, site_id, pass_date)
    );
    CREATE TABLE geovigie.dump_site_sources (
        watch text PRIMARY KEY,
        signature text NOT NULL,
        loaded timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE geovigie.feedback (
        id bigserial PRIMARY KEY,
        watch text NOT NULL,
        site_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('confirmed', 'false_alarm', 'cleaned')),
        comment text NOT NULL DEFAULT '',
        author text NOT NULL,
        created timestamptz NOT NULL DEFAULT now(),
        geom geometry(Geometry, 4326) NOT NULL
    );
    CREATE INDEX feedback_site ON geovigie.feedback (watch, site_id, created);
    """,
    # 2: zone figures of the published diagnostics (vegetation, ZAN, heat islands)
    """
    CREATE TABLE geovigie.zone_figures (
        id text PRIMARY KEY,
        layer_id text NOT NULL,
        diagnostic text NOT NULL,
        zone_id text,
        zone_name text,
        period text,
        properties jsonb NOT NULL,
        geom geometry(Geometry, 4326) NOT NULL
    );
    CREATE INDEX zone_figures_geom ON geovigie.zone_figures USING gist (geom);
    CREATE INDEX zone_figures_layer ON geovigie.zone_figures (layer_id);
    CREATE TABLE geovigie.zone_figure_sources (
        layer_id text PRIMARY KEY,
        signature text NOT NULL,
        loaded timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 3: tiles done / total of the job's current inference run (its item tasks stay in progress_done / total);
    # the job runners and the Dask cluster each one uses, as they last saw it (read by /readyz)
    """
    ALTER TABLE geovigie.jobs ADD COLUMN progress_tiles jsonb;
    CREATE TABLE geovigie.runners (
        id text PRIMARY KEY,
        heartbeat timestamptz NOT NULL DEFAULT now(),
        dask jsonb NOT NULL
    );
    """,
)
"""Schema migrations, applied in order; never edit one that shipped: append a new one."""


class WritesUnavailableError(GeovigieError, RuntimeError):
    """Keys, jobs and feedback need the project's PostgreSQL, which this configuration does not have."""


_migrated: set[str] = set()
_migrated_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    """The URL of the project's PostgreSQL (started on first use), its `geovigie` schema up to date.

    Raises:
        WritesUnavailableError: the static backend (no PostgreSQL configured or installed).
        DatabaseError: the database cannot be started or reached.
    """
    database = results_database(settings)
    if database is None:
        raise WritesUnavailableError(
            "keys, jobs and feedback need PostgreSQL: install it (apt-get install postgresql postgis) or set "
            "GEOVIGIE_DATABASE_URL, and use stac_backend auto or pgstac")
    url = database.url()
    with _migrated_lock:
        if url not in _migrated:
            migrate(url)
            _migrated.add(url)
    return url


def migrate(url: str) -> int:
    """Apply the migrations `url` lacks (one transaction each); returns the schema version."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations "
                         "(version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())")
            row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_migrations").fetchone()
            version = int(row[0]) if row else 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                with conn.transaction():
                    conn.execute(script.encode())
                    conn.execute(f"INSERT INTO {SCHEMA}.schema_migrations (version) VALUES (%s)", (number,))
                version = number
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return version


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[Any]:
    """A psycopg connection (dict rows) to the project's database, committed on success, rolled back on error."""
    import psycopg
    from psycopg.rows import dict_row

    from geovigie.errors import DatabaseError

    url = database_url(settings)
    try:
        conn = psycopg.connect(url, row_factory=dict_row)
    except psycopg.OperationalError as err:
        raise DatabaseError(f"cannot reach the database of keys and jobs: {str(err).strip().splitlines()[0]}") from err
    with conn:
        yield conn


# Dump sites into PostGIS. The dump-site workflow writes one tracked snapshot per pass under
# DATA_DIR/diagnostics/dumps/<watch>/passes/ (`workflows.dump_sites`). `sync_sites` copies the latest one of each
# watch into `geovigie.dump_sites` (one row per site, removed sites included) and every site's statuses across passes
# (the snapshot's `status_history` / `area_history` JSON columns) into `geovigie.dump_site_passes`; a watch is
# reloaded only when its pass files changed (names, sizes, modification times), and dropped when its folder is gone.

_PASS_FILE = re.compile(r"^\d{8}\.gpkg$")
COLUMNS = ("site_id", "status", "area_m2", "volume_m3", "commune_code", "commune_name", "first_seen", "last_seen",
           "candidate")


def dumps_root(settings: Settings) -> Path:
    """The folder of every watch's dump-site state."""
    return settings.data_dir / "diagnostics" / "dumps"


def _passes(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "passes").glob("*.gpkg") if _PASS_FILE.match(p.name))


def _signature(passes: list[Path]) -> str:
    return json.dumps([(p.name, (stat := p.stat()).st_size, stat.st_mtime_ns) for p in passes])


def _value(value: Any) -> Any:
    """A frame value as SQL/JSON wants it (None for NaN/NaT)."""
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _day(value: Any) -> str | None:
    value = _value(value)
    return None if value in (None, "") else str(value)[:10]


def _rows(snapshot: Path, watch: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    import geopandas as gpd
    import shapely

    frame = gpd.read_file(snapshot, engine="pyogrio")
    if frame.empty:
        return [], []
    frame = frame.to_crs("EPSG:4326")
    pass_date = f"{snapshot.stem[:4]}-{snapshot.stem[4:6]}-{snapshot.stem[6:]}"
    attributes = json.loads(frame.drop(columns=frame.geometry.name).to_json(orient="records", date_format="iso"))
    sites = []
    for record, geometry in zip(attributes, frame.geometry, strict=True):
        record.pop("area_history", None)
        record.pop("status_history", None)
        get = record.get
        sites.append((watch, str(get("site_id")), pass_date, str(get("status")), get("area_m2"), get("volume_m3"),
                      get("commune_code"), get("commune_name"), _day(get("first_seen")), _day(get("last_seen")),
                      None if get("candidate") is None else bool(get("candidate")), json.dumps(record),
                      shapely.to_wkb(geometry)))
    history = []
    for site_id, areas, statuses in zip(frame["site_id"], frame["area_history"], frame["status_history"],
                                        strict=True):
        area_by_pass, status_by_pass = json.loads(areas or "{}"), json.loads(statuses or "{}")
        history += [(watch, str(site_id), _day(day), str(status), _value(area_by_pass.get(day)))
                    for day, status in status_by_pass.items() if status is not None]
    return sites, history


def sync_sites(settings: Settings) -> int:
    """Bring `geovigie.dump_sites` up to date with the watches' snapshots; returns how many watches were reloaded."""
    root = dumps_root(settings)
    watches = {p.name: _passes(p) for p in sorted(root.iterdir()) if p.is_dir()} if root.is_dir() else {}
    reloaded = 0
    with connect(settings) as conn:
        known = {row["watch"]: row["signature"] for row in conn.execute("SELECT * FROM geovigie.dump_site_sources")}
        for gone in set(known) - {w for w, passes in watches.items() if passes}:
            for table in ("dump_sites", "dump_site_passes", "dump_site_sources"):
                conn.execute(f"DELETE FROM geovigie.{table} WHERE watch = %s", (gone,))
        for watch, passes in watches.items():
            if not passes or known.get(watch) == (signature := _signature(passes)):
                continue
            try:
                sites, history = _rows(passes[-1], watch)
            except Exception as err:  # noqa: BLE001 - pyogrio/JSON errors: one bad file must not hide the others
                log.warning("dump sites of watch %s not reloaded: %s is unreadable (%s)", watch, passes[-1], err)
                continue
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"geovigie.sites:{watch}",))
                conn.execute("DELETE FROM geovigie.dump_sites WHERE watch = %s", (watch,))
                conn.execute("DELETE FROM geovigie.dump_site_passes WHERE watch = %s", (watch,))
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO geovigie.dump_sites (id, watch, site_id, pass_date, status, area_m2, volume_m3, "
                        "commune_code, commune_name, first_seen, last_seen, candidate, properties, geom) VALUES "
                        "(%s || ':' || %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, ST_GeomFromWKB(%s, 4326))",
                        [(row[0], row[1], *row) for row in sites])
                    cursor.executemany("INSERT INTO geovigie.dump_site_passes VALUES (%s, %s, %s, %s, %s) "
                                       "ON CONFLICT DO NOTHING", history)
                conn.execute("INSERT INTO geovigie.dump_site_sources (watch, signature) VALUES (%s, %s) ON CONFLICT "
                             "(watch) DO UPDATE SET signature = excluded.signature, loaded = now()",
                             (watch, signature))
            reloaded += 1
    return reloaded


# Zone figures. The zone diagnostics publish one GeoJSON layer of figures per zone (communes, patches, grid cells);
# `sync_zones` copies every such layer of the results store into `geovigie.zone_figures` (one row per zone and
# layer), reloading a layer when its file changes and dropping layers no longer published.

ZONE_DIAGNOSTICS = ("vegetation", "zan", "heat-island")
"""`geovigie:diagnostic` values of the published layers whose features are zone figures."""


def _zone_layers(settings: Settings) -> dict[str, tuple[str, Path, str]]:
    """layer id -> (diagnostic, GeoJSON file, period) of the published zone-figure layers."""
    from geovigie.catalog.stac import SearchQuery
    from geovigie.errors import UnknownCollectionError
    from geovigie.tiles import RESULTS_COLLECTION, results_store_for

    layers: dict[str, tuple[str, Path, str]] = {}
    try:
        items = list(results_store_for(settings).search(SearchQuery(collections=(RESULTS_COLLECTION,),
                                                                    max_items=None)))
    except UnknownCollectionError:  # nothing published yet
        return layers
    for item in items:
        diagnostic = item.properties.get("geovigie:diagnostic")
        asset = item.assets.get("data")
        if diagnostic not in ZONE_DIAGNOSTICS or asset is None:
            continue
        path = Path(asset.get_absolute_href() or "")
        if path.suffix.lower() != ".geojson" or not path.is_file():
            continue
        props = item.properties
        start, end = props.get("start_datetime"), props.get("end_datetime")
        period = f"{start}/{end}" if start and end else str(props.get("datetime") or "")
        layers[item.id] = (str(diagnostic), path, period)
    return layers


def sync_zones(settings: Settings) -> int:
    """Bring `geovigie.zone_figures` up to date with the published zone layers; returns how many were reloaded."""
    layers = _zone_layers(settings)
    reloaded = 0
    with connect(settings) as conn:
        known = {r["layer_id"]: r["signature"] for r in conn.execute("SELECT * FROM geovigie.zone_figure_sources")}
        for gone in set(known) - set(layers):
            conn.execute("DELETE FROM geovigie.zone_figures WHERE layer_id = %s", (gone,))
            conn.execute("DELETE FROM geovigie.zone_figure_sources WHERE layer_id = %s", (gone,))
        for layer_id, (diagnostic, path, period) in layers.items():
            stat = path.stat()
            signature = json.dumps([str(path), stat.st_size, stat.st_mtime_ns, period])
            if known.get(layer_id) == signature:
                continue
            try:
                features = json.loads(path.read_text(encoding="utf-8")).get("features") or []
            except (OSError, ValueError, AttributeError) as err:
                log.warning("zone figures of layer %s not reloaded: %s is unreadable (%s)", layer_id, path, err)
                continue
            rows = []
            for number, feature in enumerate(features):
                props = feature.get("properties") or {}
                if not feature.get("geometry"):
                    continue
                zone = props.get("zone_id", props.get("code", number))
                rows.append((f"{layer_id}:{zone}", layer_id, diagnostic, None if zone is None else str(zone),
                             props.get("zone_name", props.get("nom")), period, json.dumps(props),
                             json.dumps(feature["geometry"])))
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"geovigie.zones:{layer_id}",))
                conn.execute("DELETE FROM geovigie.zone_figures WHERE layer_id = %s", (layer_id,))
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO geovigie.zone_figures VALUES (%s, %s, %s, %s, %s, %s, %s, "
                        "ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) ON CONFLICT (id) DO NOTHING", rows)
                conn.execute("INSERT INTO geovigie.zone_figure_sources (layer_id, signature) VALUES (%s, %s) "
                             "ON CONFLICT (layer_id) DO UPDATE SET signature = excluded.signature, loaded = now()",
                             (layer_id, signature))
            reloaded += 1
    return reloaded

# Jobs. A job is a row of `geovigie.jobs`: queued by the API (`insert_job`), claimed by a runner (`claim_job`, with
# FOR UPDATE SKIP LOCKED so two runners never take the same one), reported on while it runs (`report_job`,
# `heartbeat`), finished (`finish_job`). A running job whose runner stopped reporting for `job_stale_after_s`, or
# whose runner process on this machine is gone, is claimed again: it resumes from its batch state and the run journal.

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
JOB_TASKS = ("landcover", "vegetation", "zan", "dumps", "heat")
"""Tasks a job request may name."""
ITEM_TASKS = ("landcover", "vegetation", "heat")
"""Tasks run on each item the job's search finds (through the batch workflow)."""
AREA_TASKS = ("zan", "dumps")
"""Tasks run once over the job's territory on inputs the request names (two class layers; a height model)."""
RUNNABLE_TASKS = ITEM_TASKS + AREA_TASKS
FINISHED = ("succeeded", "failed", "cancelled")
LOG_LINES_KEPT = 200


def insert_job(settings: Settings, owner: str, request: dict[str, Any],
               idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
    """Queue a job; returns its row and whether it is new (False: the same owner's `idempotency_key` was used)."""
    import secrets

    with connect(settings) as conn:
        if idempotency_key is not None:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"job:{owner}:{idempotency_key}",))
            row = conn.execute("SELECT * FROM geovigie.jobs WHERE owner = %s AND idempotency_key = %s",
                               (owner, idempotency_key)).fetchone()
            if row is not None:
                return dict(row), False
        row = conn.execute("INSERT INTO geovigie.jobs (id, owner, idempotency_key, request) VALUES (%s, %s, %s, %s) "
                           "RETURNING *", (secrets.token_hex(8), owner, idempotency_key, json.dumps(request)),
                           ).fetchone()
    return dict(row), True


def get_job(settings: Settings, job_id: str) -> dict[str, Any] | None:
    """The job's row, or None."""
    with connect(settings) as conn:
        row = conn.execute("SELECT * FROM geovigie.jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else dict(row)


def list_jobs(settings: Settings, *, state: str | None = None, limit: int = 100, offset: int = 0,
              ) -> list[dict[str, Any]]:
    """Jobs, newest first."""
    with connect(settings) as conn:
        rows = conn.execute("SELECT * FROM geovigie.jobs WHERE (%s::text IS NULL OR state = %s) "
                            "ORDER BY created DESC, id LIMIT %s OFFSET %s", (state, state, limit, offset)).fetchall()
    return [dict(row) for row in rows]


def cancel_job(settings: Settings, job_id: str, by: str) -> dict[str, Any] | None:
    """Cancel a queued job now, ask a running one to stop (between items); a finished job is left as it is."""
    line = f"cancel requested by {by}"
    with connect(settings) as conn:
        row = conn.execute(
            "UPDATE geovigie.jobs SET cancel_requested = true, "
            "state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, "
            "finished = CASE WHEN state = 'queued' THEN now() ELSE finished END, "
            "log = log || to_jsonb(%s::text) WHERE id = %s AND state IN ('queued', 'running') RETURNING *",
            (line, job_id)).fetchone()
        if row is None:
            row = conn.execute("SELECT * FROM geovigie.jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else dict(row)


def _dead_local_workers(conn: Any) -> list[str]:
    """Runner ids (`host:pid`) of running jobs whose process on this machine no longer exists."""
    import os
    import socket

    host = socket.gethostname()
    dead = []
    for row in conn.execute("SELECT DISTINCT worker FROM geovigie.jobs WHERE state = 'running'"):
        name, _, pid = str(row["worker"] or "").rpartition(":")
        if name != host or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(row["worker"])
        except PermissionError:
            pass
    return dead


def claim_job(settings: Settings, worker: str) -> dict[str, Any] | None:
    """Take the oldest queued job, or a running one its runner abandoned; None when there is none."""
    with connect(settings) as conn:
        dead = _dead_local_workers(conn)
        row = conn.execute(
            "UPDATE geovigie.jobs SET state = 'running', worker = %s, heartbeat = now(), attempts = attempts + 1, "
            "started = coalesce(started, now()), log = log || to_jsonb(CASE WHEN state = 'running' THEN "
            "'resumed by ' || %s || ' (runner ' || coalesce(worker, '?') || ' stopped)' ELSE 'started by ' || %s END) "
            "WHERE id = (SELECT id FROM geovigie.jobs WHERE state = 'queued' OR (state = 'running' AND "
            "(heartbeat < now() - make_interval(secs => %s) OR worker = ANY(%s))) "
            "ORDER BY created FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *",
            (worker, worker, worker, settings.job_stale_after_s, dead)).fetchone()
    return None if row is None else dict(row)


def report_job(settings: Settings, job_id: str, worker: str, *, line: str | None = None, done: int | None = None,
               total: int | None = None, unit: str | None = None, tiles: dict[str, Any] | None = None) -> bool:
    """Record progress (item tasks; `tiles`: done / total of the current inference run) and a log line (the
    heartbeat too); returns whether a cancel was requested."""
    with connect(settings) as conn:
        row = conn.execute(
            "UPDATE geovigie.jobs SET heartbeat = now(), progress_done = coalesce(%s, progress_done), "
            "progress_total = coalesce(%s, progress_total), progress_unit = coalesce(%s, progress_unit), "
            "progress_tiles = coalesce(%s, progress_tiles), "
            "log = CASE WHEN %s::text IS NULL THEN log ELSE (SELECT coalesce(jsonb_agg(value ORDER BY n), '[]') "
            "FROM (SELECT value, n FROM jsonb_array_elements(log || to_jsonb(%s::text)) WITH ORDINALITY AS e(value, n) "
            "ORDER BY n DESC LIMIT %s) kept) END "
            "WHERE id = %s AND worker = %s RETURNING cancel_requested",
            (done, total, unit, None if tiles is None else json.dumps(tiles), line, line, LOG_LINES_KEPT, job_id,
             worker)).fetchone()
    return bool(row and row["cancel_requested"])


def finish_job(settings: Settings, job_id: str, worker: str, state: str, *, links: list[dict[str, Any]],
               error: str | None = None, line: str | None = None) -> None:
    """Set a job's final state, links and error (only if `worker` still holds it)."""
    with connect(settings) as conn:
        conn.execute("UPDATE geovigie.jobs SET state = %s, links = %s, error = %s, finished = now(), "
                     "heartbeat = now(), log = CASE WHEN %s::text IS NULL THEN log ELSE log || to_jsonb(%s::text) END "
                     "WHERE id = %s AND worker = %s",
                     (state, json.dumps(links), error, line, line, job_id, worker))


def count_jobs_by_state(settings: Settings) -> dict[str, int]:
    """How many jobs are in each state (every state present, 0 included): one indexed aggregate."""
    with connect(settings) as conn:
        rows = conn.execute("SELECT state, count(*) AS n FROM geovigie.jobs GROUP BY state").fetchall()
    counts = dict.fromkeys(JOB_STATES, 0)
    counts.update({row["state"]: int(row["n"]) for row in rows})
    return counts


# Runners. Each job runner records its heartbeat and the state of its Dask cluster (scheduler address or "local",
# reachable, workers) in `geovigie.runners`, so that `/readyz` in the service tells whether jobs can run.


def beat_runner(settings: Settings, runner: str, dask: dict[str, Any]) -> None:
    """Record that `runner` is alive and what it sees of its Dask cluster."""
    with connect(settings) as conn:
        conn.execute("INSERT INTO geovigie.runners (id, dask) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET "
                     "heartbeat = now(), dask = excluded.dask", (runner, json.dumps(dask)))


def forget_runner(settings: Settings, runner: str) -> None:
    """A runner stopping removes its row."""
    with connect(settings) as conn:
        conn.execute("DELETE FROM geovigie.runners WHERE id = %s", (runner,))


def live_runners(settings: Settings) -> list[dict[str, Any]]:
    """Runners heard from within `job_stale_after_s`: id, seconds since their heartbeat, their Dask state."""
    with connect(settings) as conn:
        rows = conn.execute("SELECT id, extract(epoch FROM now() - heartbeat)::float AS age_s, dask FROM "
                            "geovigie.runners WHERE heartbeat > now() - make_interval(secs => %s) ORDER BY id",
                            (settings.job_stale_after_s,)).fetchall()
    return [{"id": row["id"], "seen_s_ago": round(row["age_s"], 1), **row["dask"]} for row in rows]
