"""Operations of the jobs on a real PostgreSQL: `/readyz` says whether a job runner is alive and reaches its Dask
cluster (and how many workers it has); `/metrics` counts jobs by state from the jobs table at scrape time."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from geovigie.records import beat_runner, forget_runner
from geovigie.service import create_app
from geovigie.workflows import run_jobs
from geovigie.workflows._jobs import dask_state
from tests._support.jobs import JOB
from tests._support.servers import free_port
from tests._support.writes import make_key


def jobs_by_state(client: TestClient) -> dict[str, float]:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {s.labels["state"]: s.value for f in families if f.name == "geovigie_jobs" for s in f.samples}


def _wait_for(client: TestClient, check, seconds: float = 30.0) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while True:
        ready = client.get("/readyz").json()
        if check(ready) or time.monotonic() > deadline:
            return ready
        time.sleep(0.2)


def test_readyz_follows_the_runner_and_its_dask_workers_and_metrics_count_jobs(settings, dask_client) -> None:  # noqa: F811
    settings = settings.model_copy(update={"job_runner": True, "job_stale_after_s": 4.0})
    key = {"X-API-Key": make_key(settings)}
    with TestClient(create_app(settings)) as client:
        assert jobs_by_state(client) == dict.fromkeys(["queued", "running", "succeeded", "failed", "cancelled"], 0)
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded" and ready["dask"]["status"] == "no job runner"  # none started
        first = client.post("/jobs", json=JOB, headers=key).json()["id"]
        second = client.post("/jobs", json={**JOB, "period": "2016-01-01/2018-12-31"}, headers=key).json()["id"]
        client.delete(f"/jobs/{second}", headers=key)
        assert jobs_by_state(client) == {"queued": 1, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 1}

        stop = threading.Event()
        runner = threading.Thread(target=run_jobs, args=(settings,),
                                  kwargs={"stop": stop, "poll_s": 0.2, "client": dask_client, "worker": "test:1"})
        runner.start()
        try:
            ready = _wait_for(client, lambda r: r["dask"]["status"] == "ok")
            assert ready["status"] == "ok", ready
            [seen] = ready["dask"]["runners"]
            assert seen["id"] == "test:1" and seen["reachable"] and seen["seen_s_ago"] < 4
            workers = len(dask_client.scheduler_info()["workers"])
            assert seen["workers"] == ready["dask"]["workers"] == workers >= 1
            assert seen["scheduler"] == dask_client.scheduler.address
            deadline = time.monotonic() + 120
            while client.get(f"/jobs/{first}").json()["state"] != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.3)
            assert jobs_by_state(client)["succeeded"] == 1 and jobs_by_state(client)["queued"] == 0
        finally:
            stop.set()
            runner.join(timeout=60)
        assert client.get("/readyz").json()["dask"]["status"] == "no job runner"  # a stopped runner says so


def test_a_runner_whose_scheduler_does_not_answer_makes_the_service_degraded(settings) -> None:  # noqa: F811
    nowhere = settings.model_copy(update={"dask_scheduler": f"tcp://127.0.0.1:{free_port()}"})
    state = dask_state(nowhere)
    assert state["reachable"] is False and state["workers"] == 0 and state["error"]
    assert dask_state(settings)["scheduler"] == "local"  # no scheduler set: a LocalCluster per job
    beat_runner(settings, "far:2", state)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded" and ready["dask"]["status"] == "scheduler unreachable"
        assert ready["dask"]["runners"][0]["scheduler"] == nowhere.dask_scheduler
        forget_runner(settings, "far:2")
        assert client.get("/readyz").json()["status"] == "ok"  # job_runner off here: no runner expected
