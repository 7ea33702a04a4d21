"""Issue 18's "Done when", as far as the service goes, over real HTTP on 127.0.0.1 with the shipped data: a key is
created with `geovigie keys create`; a land-cover job is submitted with it and watched to completion (items and
tiles); its layer is listed, opens in WMTS and renders a tile; a dumps job on the LiDAR HD height model publishes
sites served as OGC API Features, and one gets feedback authored by the key's owner; /readyz and /metrics follow."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import httpx
import morecantile
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from geovigie.cli import app as cli_app
from geovigie.service import create_app
from geovigie.workflows import run_jobs
from tests._support.jobs import JOB, dumps_job
from tests._support.servers import free_port, served
from tests._support.writes import writes_settings


def _watch(base: str, job_id: str, seen: list[dict[str, Any]], seconds: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        job = httpx.get(f"{base}/jobs/{job_id}").json()
        seen.append(job["progress"])
        if job["state"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_a_user_submits_watches_sees_layers_and_sends_feedback(tmp_path, pgstac_url, inputs, dask_client,  # noqa: F811
                                                               monkeypatch) -> None:
    from geovigie.service import feedback

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = writes_settings(tmp_path / "gv", pgstac_url, catalog_sources={"samples": str(inputs)}, port=port,
                               public_url=base, chunk_tiles=1)
    for name, value in {"GEOVIGIE_DATA_DIR": str(settings.data_dir), "GEOVIGIE_STAC_BACKEND": "pgstac",
                        "GEOVIGIE_DATABASE_URL": pgstac_url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(feedback, "SYNC_INTERVAL_S", 0.0)
    created = CliRunner().invoke(cli_app, ["keys", "create", "--owner", "Service environnement"])
    assert created.exit_code == 0, created.output
    key = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[0]}"}

    stop = threading.Event()
    runner = threading.Thread(target=run_jobs, args=(settings,), kwargs={"stop": stop, "poll_s": 0.2,
                                                                         "client": dask_client})
    with served(create_app(settings), port):
        runner.start()
        try:
            assert httpx.post(f"{base}/jobs", json=JOB).status_code == 401  # no key, no job
            submitted = httpx.post(f"{base}/jobs", json=JOB, headers=key)
            assert submitted.status_code == 202, submitted.text
            seen: list[dict[str, Any]] = []
            job = _watch(base, submitted.json()["id"], seen)
            assert job["state"] == "succeeded", job
            assert job["owner"] == "Service environnement"
            assert job["progress"]["done"] == job["progress"]["total"] == 1
            assert job["progress"]["tiles"]["done"] == job["progress"]["tiles"]["total"] > 1

            layer = next(link["title"] for link in job["links"] if link["rel"] == "layer")
            assert layer in [entry["id"] for entry in httpx.get(f"{base}/layers").json()]
            described = httpx.get(f"{base}/layers/{layer}").json()
            assert described["wmts"] == f"{base}/layers/{layer}/WMTSCapabilities.xml"
            assert "<Capabilities" in httpx.get(described["wmts"]).text
            west, south, east, north = described["bounds"]
            tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 15)
            png = httpx.get(f"{base}/layers/{layer}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png")
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            assert np.asarray(Image.open(io.BytesIO(png.content)).convert("RGBA"))[..., 3].any()  # drawn pixels

            dumps = httpx.post(f"{base}/jobs", json=dumps_job(), headers=key)
            assert dumps.status_code == 202, dumps.text
            job = _watch(base, dumps.json()["id"], [])
            assert job["state"] == "succeeded", job
            features = next(link["href"] for link in job["links"] if link["rel"] == "features")
            sites = httpx.get(features).json()
            assert sites["numberMatched"] > 0
            site = sites["features"][0]["properties"]
            sent = httpx.post(f"{base}/sites/{site['site_id']}/feedback", params={"watch": site["watch"]},
                              json={"status": "false_alarm", "comment": "un toit, pas un dépôt"}, headers=key)
            assert sent.status_code == 201, sent.text
            shown = httpx.get(f"{base}/sites/{site['site_id']}", params={"watch": site["watch"]}).json()
            assert shown["history"][-1]["kind"] == "feedback" and shown["history"][-1]["author"] == \
                "Service environnement"

            ready = httpx.get(f"{base}/readyz").json()
            assert ready["dask"]["status"] == "ok" and ready["dask"]["workers"] >= 1
            families = text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
            states = {s.labels["state"]: s.value for f in families if f.name == "geovigie_jobs" for s in f.samples}
            assert states["succeeded"] == 2 and states["queued"] == states["running"] == 0
        finally:
            stop.set()
            runner.join(timeout=60)
