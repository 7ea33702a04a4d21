"""Field feedback becomes labels: feedback posted to the real service on real dump passes (IGN LiDAR HD stand-in
sites, in a real PostgreSQL), exported by `GET /feedback/export`, read by `geovigie train` with the shipped
dump-site config; a retrain on new feedback changes the detector's output on the sites the field corrected.

The sites are trees and buildings from a height model (no labelled dump data ships): the field verdicts are made
up by the test (low objects "confirmed", tall ones "false alarms"), what is tested is the path from the service to
the detector, not a dump detector's quality.
"""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.features
from fastapi.testclient import TestClient

from geovigie.inference import PredictOptions, predict
from geovigie.models import load_bundle
from geovigie.service import create_app
from geovigie.training import LabelError, load_scenes, parse_config, run_experiment
from tests._support.detector import stack as lidar_stack
from tests._support.writes import make_key, two_dump_passes, writes_settings
from tests.conftest import REPO

CONFIG = REPO / "training" / "configs" / "dump-sites-feedback-lidarhd-montpellier.toml"
LOW_M = 6.0  # sites whose mean height is under this are "confirmed" by the test's made-up field visits


def _config(labels: Path, **label_options: Any) -> Any:
    data = tomllib.loads(CONFIG.read_text())
    data["labels"] = {**data["labels"], "path": str(labels), **label_options}
    return parse_config(data, CONFIG.parent, source=str(CONFIG))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, pgstac_cluster):
    from tests.conftest import fresh_database

    work = tmp_path_factory.mktemp("feedback-train")
    pgstac_url = fresh_database(pgstac_cluster)
    settings = writes_settings(work / "gv", pgstac_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # null volumes at the LiDAR edge: tested in tests/workflows
        _, second = two_dump_passes(settings, work)
    sites = second.sites[second.sites["status"] != "removed"].reset_index(drop=True)
    lidar = work / "lidar"
    stacked = lidar_stack(lidar / "montpellier-dsm.tif", lidar / "montpellier-dtm.tif", work / "stack.tif")
    with TestClient(create_app(settings)) as client:
        yield client, settings, sites, stacked, work


def _post(client: TestClient, key: str, site_id: str, status: str) -> None:
    answer = client.post(f"/sites/{site_id}/feedback", json={"status": status}, headers={"X-API-Key": key})
    assert answer.status_code == 201, answer.text


def _export(client: TestClient, path: Path, every: bool = False) -> Path:
    answer = client.get("/feedback/export", params={"format": "geojson", "all": str(every).lower()})
    assert answer.status_code == 200
    path.write_bytes(answer.content)
    return path


def _dump_probability(bundle: Path, stack: Path, out: Path, sites: Any) -> dict[str, float]:
    """Mean P(dump) of the detector over each site, from the tiled prediction's probability COG."""
    result = predict(stack, out, PredictOptions(tile_size=128, overlap=16, device="cpu"), bundle=bundle,
                     progress=False)
    with rasterio.open(result.probabilities_path) as src:
        assert src.descriptions[-1] == "dump"
        dump, transform = src.read(src.count).astype(np.float64) / 250, src.transform
    means = {}
    for site_id, geom in zip(sites["site_id"], sites.to_crs("EPSG:2154").geometry, strict=True):
        inside = rasterio.features.rasterize([(geom, 1)], out_shape=dump.shape, transform=transform).astype(bool)
        means[site_id] = float(dump[inside].mean())
    return means


def test_a_retrain_on_feedback_changes_the_detector_on_the_corrected_sites(service) -> None:
    client, settings, sites, stack, work = service
    agent = make_key(settings, "Agent de terrain")
    low = sites["height_mean_m"] < LOW_M
    for site_id, is_low in zip(sites["site_id"], low, strict=True):
        _post(client, agent, site_id, "confirmed" if is_low else "false_alarm")
    confirmed = list(sites.loc[low].sort_values("area_m2", ascending=False)["site_id"])
    corrected, kept = confirmed[:3], confirmed[3:]
    assert len(kept) >= 5 and (~low).sum() >= 2

    first = run_experiment(_config(_export(client, work / "round1.geojson")), work / "run1", device="cpu",
                           progress=False)
    assert first is not None
    before = _dump_probability(first.bundle.path, stack, work / "pred1", sites)

    for site_id in corrected:  # a second visit: these three were not dumps after all
        _post(client, agent, site_id, "false_alarm")
    _export(client, work / "round2-all.geojson", every=True)  # every record: the latest per site is kept
    second = run_experiment(_config(work / "round2-all.geojson"), work / "run2", device="cpu", progress=False)
    assert second is not None
    after = _dump_probability(second.bundle.path, stack, work / "pred2", sites)

    for site_id in corrected:
        assert before[site_id] > 0.5 > after[site_id], (site_id, before[site_id], after[site_id])
    # the sites still confirmed move far less (the forest now also has to tell them from the corrected ones)
    drop_corrected = np.mean([before[s] - after[s] for s in corrected])
    drop_kept = np.mean([before[s] - after[s] for s in kept])
    assert drop_corrected > drop_kept + 0.3, (drop_corrected, drop_kept)
    n_low, n_high = int(low.sum()), int((~low).sum())
    card1, card2 = load_bundle(first.bundle.path).card, load_bundle(second.bundle.path).card
    assert card1.provenance["labels"]["field_records"] == {"confirmed": n_low, "false_alarm": n_high, "cleaned": 0}
    assert card2.provenance["labels"]["field_records"] == {"confirmed": n_low - 3, "false_alarm": n_high + 3,
                                                           "cleaned": 0}
    assert card2.provenance["labels"]["field_records_learned_from"] == len(sites)
    assert card2.kind == "pixel-classifier" and "random forest" in card2.limitations


def test_too_few_field_records_is_refused_and_buffer_grows_the_sites(service) -> None:
    client, settings, sites, _, work = service
    agent = make_key(settings, "Agent")
    for site_id in sites["site_id"]:
        _post(client, agent, site_id, "confirmed")
    _post(client, agent, sites["site_id"].iloc[0], "false_alarm")
    path = _export(client, work / "few.geojson")
    with pytest.raises(LabelError, match=r"1 field record\(s\) for class 'background' \(status false_alarm\); at "
                                         r"least 5"):
        load_scenes(_config(path))
    loose = _config(path, min_records=1)
    plain = sum(int((s.labels == 1).sum()) for s in load_scenes(loose)[0])
    grown = sum(int((s.labels == 1).sum()) for s in load_scenes(_config(path, min_records=1, buffer_m=1.0))[0])
    shrunk = sum(int((s.labels == 1).sum()) for s in load_scenes(_config(path, min_records=1, buffer_m=-1.0))[0])
    assert shrunk < plain < grown
    perimeter = float(sites.iloc[1:].to_crs("EPSG:2154").geometry.length.sum())
    assert (grown - plain) * 0.25 == pytest.approx(perimeter * 1.0, rel=0.35)  # ~ perimeter × 1 m, 0.25 m² px


def test_card_counts_each_sites_latest_record_over_the_images(tmp_path: Path) -> None:
    """No service needed: an `all=true`-like export (several records per site, with times) and one site far away."""
    from shapely.geometry import box, mapping

    from geovigie.training import field_record, write_field_records
    from geovigie.training._data import mapping_of
    from geovigie.training._feedback import field_provenance

    x0, y0 = 770505.0, 6277545.0  # inside the first LiDAR tile
    records = []
    for i in range(6):
        site = mapping(box(x0 + 6 * i, y0 - 5, x0 + 6 * i + 4, y0 - 1))
        records.append(field_record(site, "confirmed", "2024-06-01", "a", site_id=f"s{i}", watch="w",
                                    time="2024-06-01T08:00:00Z"))
        if i < 2:  # revisited: the later record wins
            records.append(field_record(site, "false_alarm", "2024-06-03", "b", site_id=f"s{i}", watch="w",
                                        time="2024-06-03T09:00:00Z"))
    far = mapping(box(x0 + 50_000, y0, x0 + 50_010, y0 + 10))
    records.append(field_record(far, "cleaned", "2024-06-02", "a", site_id="far", watch="w",
                                time="2024-06-02T08:00:00Z"))
    path = write_field_records(tmp_path / "all.geojson", records, crs="EPSG:2154")
    config = _config(path, min_records=2)
    scenes, _ = load_scenes(config)
    counts = field_provenance(config, mapping_of(config), [s.grid for s in scenes])
    assert counts["field_records"] == {"confirmed": 4, "false_alarm": 2, "cleaned": 0}
    assert counts["field_records_per_class"] == {"background": 2, "dump": 4}
    assert counts["field_records_learned_from"] == 6


def test_cli_train_says_how_many_field_labels_it_learned_from(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._support.feedback import feedback_config
    from tests._support.figures import run_cli

    inputs, work = tmp_path / "in", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    config = feedback_config(inputs, "visits", ["confirmed"] * 5 + ["false_alarm"] * 5 + ["cleaned"])
    code, stderr = run_cli(["train", str(config), "--quiet", "--device", "cpu", "--out", str(work / "run")], work,
                           monkeypatch)
    assert code == 0, stderr
    assert ("field records: 5 confirmed, 5 false_alarm, 1 cleaned; learned from 10 (background 5, dump 5)"
            in stderr)
    card = load_bundle(work / "run" / "bundle").card
    assert card.provenance["labels"]["field_records_per_class"] == {"background": 5, "dump": 5}
