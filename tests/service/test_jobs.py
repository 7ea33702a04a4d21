"""Jobs over HTTP on a real PostgreSQL: a job submitted with a key runs through the batch workflow on the real
Slovenia scenes and publishes its layers; requests are checked; Idempotency-Key; cancel; a runner killed mid-job
is replaced and the job completes without predicting its finished chunks again."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geovigie.records import get_job
from geovigie.service import create_app
from geovigie.workflows import run_jobs
from tests._support.jobs import JOB
from tests._support.writes import make_key, writes_settings
from tests.conftest import kill_after_journal_chunks


def test_a_job_submitted_over_http_runs_the_batch_and_publishes_its_layer(settings, dask_client) -> None:
    key = {"Authorization": f"Bearer {make_key(settings, 'Opérateur batch')}"}
    with TestClient(create_app(settings)) as client:
        assert client.post("/jobs", json=JOB).status_code == 401
        submitted = client.post("/jobs", json=JOB, headers=key)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        assert submitted.headers["location"] == f"https://geo.example.fr/geovigie/jobs/{job_id}"
        queued = client.get(f"/jobs/{job_id}").json()
        assert queued["state"] == "queued" and queued["owner"] == "Opérateur batch"
        assert queued["request"]["area_km2"] == pytest.approx(1.02, abs=0.05)  # 1.0 km x 1.0 km at 45.87° N

        assert run_jobs(settings, until_empty=True, client=dask_client) == 1

        done = client.get(f"/jobs/{job_id}").json()
        assert done["state"] == "succeeded", done
        assert done["progress"] == {"done": 1, "total": 1, "unit": "item tasks",
                                    "tiles": {"done": 4, "total": 4, "item": "slovenia-reference-scene-2"}}
        assert any("slovenia-reference-scene-2" in line for line in done["log"])
        layer = "landcover-slovenia-reference-scene-2"
        links = {link["rel"]: link["href"] for link in done["links"]}
        assert links["layer"] == f"https://geo.example.fr/geovigie/layers/{layer}"
        described = client.get(links["layer"].removeprefix("https://geo.example.fr/geovigie"))
        assert described.status_code == 200 and described.json()["kind"] == "classes"
        assert layer in [entry["id"] for entry in client.get("/layers").json()]
        item = client.get(links["item"].removeprefix("https://geo.example.fr/geovigie"))
        assert item.status_code == 200 and item.json()["id"] == layer
        assert [j["id"] for j in client.get("/jobs").json()["jobs"]] == [job_id]
        assert client.get("/jobs", params={"state": "queued"}).json()["jobs"] == []
        # a finished job cannot be cancelled
        assert client.delete(f"/jobs/{job_id}", headers=key).status_code == 409


def test_idempotency_key_returns_the_same_job(settings) -> None:
    key = make_key(settings)
    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": key, "Idempotency-Key": "run-2024-06-01"}
        first = client.post("/jobs", json=JOB, headers=headers)
        again = client.post("/jobs", json=JOB, headers=headers)
        assert first.status_code == again.status_code == 202
        assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
        other = client.post("/jobs", json={**JOB, "period": "2016-01-01/2016-12-31"}, headers=headers)
        assert other.status_code == 409 and first.json()["id"] in other.json()["detail"]
        without = client.post("/jobs", json=JOB, headers={"X-API-Key": key})
        assert without.json()["id"] != first.json()["id"]
        # another key's owner may use the same Idempotency-Key for its own job
        someone = client.post("/jobs", json=JOB, headers={**headers, "X-API-Key": make_key(settings, "Autre")})
        assert someone.json()["id"] != first.json()["id"]
        assert len(client.get("/jobs").json()["jobs"]) == 3


def test_a_queued_job_is_cancelled_and_never_runs(settings, dask_client) -> None:
    key = {"X-API-Key": make_key(settings)}
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/jobs", json=JOB, headers=key).json()["id"]
        assert client.delete(f"/jobs/{job_id}").status_code == 401
        cancelled = client.delete(f"/jobs/{job_id}", headers=key)
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
        assert run_jobs(settings, until_empty=True, client=dask_client) == 0
        assert client.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
        assert not (settings.data_dir / "predictions").exists()
        assert client.delete("/jobs/nope", headers=key).status_code == 404


@pytest.mark.parametrize(("change", "message"), [
    ({"tasks": ["landcover", "snow"]}, "tasks"),
    ({"tasks": []}, "tasks"),
    ({"tasks": ["zan"]}, "zan: the zan task needs its inputs"),
    ({"tasks": ["landcover", "landcover"]}, "each task once"),
    ({"period": "2018-12-31/2018-01-01"}, "start is after the end"),
    ({"period": "2018-01-01"}, "give start/end"),
    ({"period": "2018-13-01/2018-12-31"}, "not an ISO date"),
    ({"territory": "dep:32"}, "larger than the 5,000 km²"),  # the Gers: 6,300 km²
    ({"territory": "insee:99999"}, "not in the shipped boundaries"),
    ({"territory": "/etc/passwd"}, "use insee:CODE"),
    ({"territory": {"type": "Point", "coordinates": [14.5, 45.8]}}, "Polygon or MultiPolygon"),
    ({"territory": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
     "invalid geometry"),
    ({"territory": {"type": "Polygon", "coordinates": [[[500000, 6e6], [500100, 6e6], [500100, 6.0001e6],
                                                         [500000, 6e6]]]}}, "outside WGS84"),
    ({"territory": {"type": "Polygon", "coordinates": "nope"}}, "not a valid GeoJSON"),
    ({"collection": "../../etc"}, "collection"),
    ({"bundle": "/models/bundles/x"}, "bundle"),
    ({"source": "http://169.254.169.254/latest/"}, "loopback, private or link-local"),
    ({"source": "http://127.0.0.1:8000/api/stac"}, "loopback, private or link-local"),
    ({"source": "https://stac.example.com/"}, "not in the allow-list"),
    ({"source": "/data/other-catalog"}, "configured source name"),
    ({"source": "samples\x00"}, "source"),
    ({"extra": 1}, "extra"),
])
def test_bad_job_requests_are_refused_with_the_reason(settings, change: dict, message: str) -> None:
    settings = settings.model_copy(update={"job_max_area_km2": 5000.0})
    key = {"X-API-Key": make_key(settings)}
    with TestClient(create_app(settings)) as client:
        answer = client.post("/jobs", json={**JOB, **change}, headers=key)
        assert answer.status_code == 422, answer.text
        assert message in answer.text
        assert client.get("/jobs").json()["jobs"] == []  # nothing queued


KILLED_RUNNER = """
import sys, time
from pathlib import Path
from geovigie.inference import _predict, _worker

def slow(*args, **kwargs):
    time.sleep(0.2)
    return _worker.predict_chunk(*args, **kwargs)

_predict.predict_chunk = slow
from geovigie.settings import Settings
from geovigie.workflows import run_jobs
settings = Settings(data_dir=Path(sys.argv[1]), stac_backend="pgstac", database_url=sys.argv[2],
                    catalog_sources={"samples": sys.argv[3]}, tile_size=32, overlap=8, batch_size=4, device="cpu",
                    chunk_tiles=1, dask_workers=1, dask_threads_per_worker=1)
run_jobs(settings, until_empty=True)
"""


@pytest.mark.slow
def test_a_runner_killed_mid_job_is_replaced_and_the_job_completes(settings, inputs, tmp_path, monkeypatch) -> None:
    """`kill -9` of the runner during the prediction: the next runner on this machine sees it is gone, claims the
    job at once and predicts only the chunks the journal lacks."""
    from geovigie.inference import _predict
    from geovigie.inference._journal import PARTIAL_FOLDER
    from tests._support.chunks import CHUNK_REPORTS, counted_predict_chunk

    key = {"X-API-Key": make_key(settings)}
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/jobs", json=JOB, headers=key).json()["id"]
    command = [sys.executable, "-c", KILLED_RUNNER, str(settings.data_dir), settings.database_url, str(inputs)]
    left = kill_after_journal_chunks(command, settings.data_dir, 3, {**os.environ, "OMP_NUM_THREADS": "1"})
    assert 3 <= left < 16  # 100 × 101 px in tiles of 32 px: 16 one-tile chunks
    killed = get_job(settings, job_id)
    assert killed is not None and killed["state"] == "running"  # the dead runner never finished it
    monkeypatch.setattr(_predict, "predict_chunk", counted_predict_chunk)
    CHUNK_REPORTS.clear()
    resumed = settings.model_copy(update={"tile_size": 32, "overlap": 8, "chunk_tiles": 1})
    started = time.monotonic()
    assert run_jobs(resumed, until_empty=True) == 1  # claimed at once: its runner's process is gone
    assert time.monotonic() - started < resumed.job_stale_after_s + 60
    job = get_job(settings, job_id)
    assert job is not None and job["state"] == "succeeded", job
    assert job["attempts"] == 2 and any(line.startswith("resumed by") for line in job["log"])
    assert len(CHUNK_REPORTS) == 16 - left and not any(CHUNK_REPORTS)  # the journal's chunks were not submitted
    assert any(f"resumed: {left} chunks" in line for line in job["log"])
    assert not list(settings.data_dir.rglob(PARTIAL_FOLDER))  # the journal is gone once the COGs are published


@pytest.mark.slow
def test_geovigie_serve_runs_submitted_jobs_in_its_worker(tmp_path: Path, pgstac_url: str, catalog_dir: Path) -> None:
    """As a user runs it: `geovigie serve` (which starts `geovigie jobs worker`), a job posted over HTTP on a
    commune's INSEE code, watched until it publishes its NDVI layer; stopping the service stops the worker."""
    import json
    import signal
    import subprocess

    import httpx

    from geovigie.service.auth import create_key
    from tests._support.servers import free_port

    port = free_port()
    env = {**os.environ, "GEOVIGIE_DATA_DIR": str(tmp_path / "gv"), "GEOVIGIE_STAC_BACKEND": "pgstac",
           "GEOVIGIE_DATABASE_URL": pgstac_url, "GEOVIGIE_PORT": str(port), "GEOVIGIE_DEVICE": "cpu",
           "GEOVIGIE_CATALOG_SOURCES": json.dumps({"samples": str(catalog_dir)}), "OMP_NUM_THREADS": "1"}
    key = create_key(writes_settings(tmp_path / "gv", pgstac_url), "Service environnement")[1]
    geovigie = str(Path(sys.executable).parent / "geovigie")
    server = subprocess.Popen([geovigie, "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        job = httpx.post(f"{base}/jobs", headers={"Authorization": f"Bearer {key}"}, json={
            "territory": "insee:32001", "period": "2018-10-01/2018-10-31", "tasks": ["vegetation"],
            "collection": "s2-l2a-theia-gers", "source": "samples"})
        assert job.status_code == 202, job.text
        watched = job.json()
        deadline = time.monotonic() + 240
        while watched["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
            watched = httpx.get(f"{base}/jobs/{watched['id']}").json()
        assert watched["state"] == "succeeded", watched
        assert watched["request"]["territory_label"] == "commune 32001 Aignan"
        layer = next(link["href"] for link in watched["links"] if link["rel"] == "layer")
        assert httpx.get(layer).json()["kind"] == "continuous"
        assert layer.rsplit("/", 1)[1] in [entry["id"] for entry in httpx.get(f"{base}/layers").json()]
        worker_pid = int(watched["log"][0].rsplit(":", 1)[1])  # "started by host:pid"
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
    assert "job runner" in output
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
