"""A `dumps` job on a published prediction of the dump-site detector retrained from field feedback (real PostgreSQL,
the shipped IGN LiDAR HD tiles; the made-up field export is described in tests/_support/detector.py): the job reads
the dump class's probability band, its sites carry the detector and stay « candidats »; a class the layer does not
have, or a validation its card does not record, is refused at POST time naming the field."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fastapi.testclient import TestClient

from geovigie.service import create_app
from geovigie.workflows import landcover, run_jobs
from tests._support.detector import feedback_detector
from tests._support.jobs import dumps_job
from tests._support.writes import make_key, writes_settings

BUNDLE_ID = "dump-sites-feedback@1"


def test_a_dumps_job_on_the_feedback_detectors_prediction(tmp_path: Path, pgstac_url: str, dask_client) -> None:
    settings = writes_settings(tmp_path / "gv", pgstac_url)
    detector = feedback_detector(tmp_path / "detector")
    layer = landcover(detector.stack, settings, bundle=detector.bundle, client=dask_client, out_dir=tmp_path / "pred",
                      progress=False)
    key = {"X-API-Key": make_key(settings)}
    with TestClient(create_app(settings)) as client:
        for options, refusal in (
                ({"class_name": "decharge"}, "dumps.class_name: "),
                ({"validated": True}, "dumps.validated: the layer's detector dump-sites-feedback@1 is not validated")):
            body = dumps_job(layer=layer.id, threshold=0.5, watch="refused", **options)
            answer = client.post("/jobs", json=body, headers=key)
            assert answer.status_code == 422 and refusal in answer.text, answer.text
        assert "no class 'decharge'; its classes are 'background', 'dump'" in client.post(
            "/jobs", json=dumps_job(layer=layer.id, class_name="decharge"), headers=key).text

        submitted = client.post("/jobs", json=dumps_job(layer=layer.id, threshold=0.5, class_name="dump",
                                                         watch="detector"), headers=key)
        assert submitted.status_code == 202, submitted.text
        assert run_jobs(settings, until_empty=True) == 1
        job = client.get(f"/jobs/{submitted.json()['id']}").json()
        assert job["state"] == "succeeded", job
        assert any(line.startswith(f"note: candidats: detector {BUNDLE_ID} is not validated on held-out field labels")
                   for line in job["log"]), job["log"]
        links = {link.get("title"): link["href"] for link in job["links"]}
        rows = list(csv.DictReader(io.StringIO(client.get(links["Sites for field teams (CSV)"]).text)))
        assert rows and {r["model_bundle"] for r in rows} == {BUNDLE_ID}
        assert {r["detector_class"] for r in rows} == {"dump"} and {r["candidate"] for r in rows} == {"True"}
        assert all(0.5 <= float(r["mean_confidence"]) <= float(r["max_confidence"]) <= 1 for r in rows)
        features = client.get(links["Sites (OGC API Features, PostGIS dump_sites)"]).json()
        assert features["numberMatched"] == len(rows)
        assert {f["properties"]["properties"]["model_bundle"] for f in features["features"]} == {BUNDLE_ID}
        item = client.get("/layers/dumps-detector").json()
        assert item["title"].startswith("Candidats: dump sites")
