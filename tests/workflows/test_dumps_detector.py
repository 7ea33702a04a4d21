"""`geovigie dumps` on what `geovigie predict` writes with the dump-site detector retrained from field feedback.

Real inputs end to end: a field export built by the test on the shipped IGN LiDAR HD tiles (tests/_support/detector.py
says how the made-up verdicts are chosen), `train` with the shipped feedback config, `predict` on the tiles, `dumps`
on its multi-band probability COG, its class COG and its STAC item. Then the edges of a pass (nodata inside a site,
a layer of nodata only, a probability exactly at the threshold, a card that says the detector was validated) and two
runs of one pass at once on one data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.features
from scipy import ndimage

from tests._support.detector import FeedbackDetector, feedback_detector
from tests._support.figures import run_cli
from tests._support.lidar import pixels_of

GEOVIGIE = str(Path(sys.executable).parent / "geovigie")
BUNDLE_ID = "dump-sites-feedback@1"
PASS = "2024-05-01"
MIN_PX = 80  # default min area 20 m² on the 0.5 m grid


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> FeedbackDetector:
    return feedback_detector(tmp_path_factory.mktemp("detector"))


@pytest.fixture(scope="module")
def predicted(detector: FeedbackDetector, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`geovigie predict` of the stack with the trained bundle (the real command line, in-process)."""
    work = tmp_path_factory.mktemp("predicted")
    with pytest.MonkeyPatch.context() as monkeypatch:
        code, stderr = run_cli(["predict", str(detector.stack), "--out", str(work / "pred"), "--bundle",
                                str(detector.bundle), "--device", "cpu"], work, monkeypatch)
    assert code == 0, stderr
    items = list((work / "gv" / "results" / "geovigie-results").glob("landcover-*/landcover-*.json"))
    assert len(items) == 1
    return {"probabilities": next((work / "pred").glob("*_probabilities.tif")),
            "classes": next((work / "pred").glob("*_classes.tif")), "item": items[0]}


def _dumps(layer: Path, work: Path, monkeypatch: pytest.MonkeyPatch, *extra: str, watch: str = "montpellier",
           day: str = PASS) -> str:
    code, stderr = run_cli(["diagnose", "dumps", str(layer), "--watch", watch, "--date", day, *extra], work,
                           monkeypatch)
    assert code == 0, stderr
    return stderr


def _exports(work: Path, watch: str = "montpellier", day: str = PASS) -> gpd.GeoDataFrame:
    folder = work / "gv" / "diagnostics" / "dumps" / watch / "exports"
    return gpd.read_file(folder / f"sites-{day.replace('-', '')}.gpkg")


def _item(work: Path, watch: str = "montpellier") -> dict:
    return json.loads((work / "gv" / "results" / "geovigie-results" / f"dumps-{watch}" / f"dumps-{watch}.json")
                      .read_text())


def _dump_band(path: Path) -> tuple[np.ndarray, np.ndarray, rasterio.Affine]:
    with rasterio.open(path) as src:
        assert src.descriptions == ("background", "dump")
        values = src.read(2)
        return values, values <= 250, src.transform


def test_feedback_detector_sites_appear_where_it_says_with_its_probability(
        detector: FeedbackDetector, predicted: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = _dumps(predicted["probabilities"], tmp_path, monkeypatch, "--bundle", str(detector.bundle), "--dsm",
                    str(detector.dsm), "--dtm", str(detector.dtm))
    assert f"detector: {BUNDLE_ID}, class 'dump' (probability band 2), threshold 0.5" in stderr
    assert "candidats (not a validated dump detector)" in stderr
    assert "is not validated on held-out field labels" in stderr and "learned from 15 field records" in stderr
    sites = _exports(tmp_path)
    values, valid, transform = _dump_band(predicted["probabilities"])
    p = values.astype(np.float64) / 250
    assert len(sites) >= 3
    covered = np.zeros(values.shape, bool)
    for _, site in sites.to_crs("EPSG:2154").iterrows():
        inside = pixels_of(site.geometry, values.shape, transform)
        covered |= inside
        measured = inside & valid
        assert site["mean_confidence"] == pytest.approx(p[measured].mean())
        assert site["max_confidence"] == pytest.approx(p[measured].max())
        assert site["area_m2"] == pytest.approx(measured.sum() * 0.25)
        assert site["nodata_px"] == (inside & ~valid).sum()
    # the sites are the detector's P(dump) >= 0.5, sieved (groups and holes under 20 m², 4-connected), nothing else
    cleaned = rasterio.features.sieve((valid & (p >= 0.5)).astype(np.uint8), size=MIN_PX, connectivity=4) > 0
    patches, _ = ndimage.label(cleaned)  # 4-connectivity
    measured_px = np.bincount(patches[valid].ravel(), minlength=patches.max() + 1)
    kept = np.isin(patches, np.flatnonzero(measured_px >= MIN_PX)) & (patches > 0)
    assert np.array_equal(covered, kept)
    assert (p[covered & valid] >= 0.5).mean() > 0.8
    assert (sites["model_bundle"] == BUNDLE_ID).all() and (sites["model_version"] == "1").all()
    assert (sites["detector_class"] == "dump").all() and sites["candidate"].all()
    assert sites["note"].str.startswith(f"candidats: detector {BUNDLE_ID} is not validated").all()
    assert sites["volume_m3"].notna().all()
    # the detector learned the field's verdicts: its sites cover the confirmed sites, not the false alarms
    visited = detector.visited.to_crs("EPSG:2154")
    union = sites.to_crs("EPSG:2154").geometry.union_all()
    share = {s: float(g.intersection(union).area.sum() / g.area.sum())
             for s, g in visited.groupby("status").geometry}
    assert share["confirmed"] > 0.8 > 0.2 > share["false_alarm"], share

    exports = tmp_path / "gv" / "diagnostics" / "dumps" / "montpellier" / "exports"
    table = pd.read_csv(exports / "sites-20240501.csv")
    geojson = json.loads((exports / "sites-20240501.geojson").read_text())["features"]
    assert sorted(table["detection_id"]) == sorted(sites["detection_id"]) == sorted(
        f["properties"]["detection_id"] for f in geojson)
    assert {f["properties"]["model_bundle"] for f in geojson} == {BUNDLE_ID}
    assert (table["mean_confidence"] >= 0.5).all() and (table["model_version"] == 1).all()
    item = _item(tmp_path)
    props = item["properties"]
    assert props["title"].startswith("Candidats: dump sites") and props["geovigie:candidate"] is True
    assert props["geovigie:model_bundle"] == BUNDLE_ID and "model-card" in item["assets"]
    assert props["geovigie:detector"] == {
        "bundle": BUNDLE_ID, "version": "1", "class": "dump", "layer_kind": "probability", "band": 2,
        "class_value": None, "threshold": 0.5, "validated": False, "note": sites["note"].iloc[0]}
    assert "not validated on held-out field labels" in props["description"]


def test_the_prediction_item_carries_the_card_and_the_class_map_gives_the_same_places(
        detector: FeedbackDetector, predicted: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _dumps(predicted["probabilities"], tmp_path, monkeypatch, "--bundle", str(detector.bundle))
    by_bundle = _exports(tmp_path)
    stderr = _dumps(predicted["item"], tmp_path, monkeypatch, watch="from-item")  # no --bundle: the item's card
    assert "learned from 15 field records" in stderr
    from_item = _exports(tmp_path, "from-item")
    assert sorted(from_item["detection_id"]) == sorted(by_bundle["detection_id"])
    assert from_item["note"].tolist() == by_bundle["note"].tolist()
    stderr = _dumps(predicted["probabilities"], tmp_path, monkeypatch, watch="no-card")
    assert f"predicted by {BUNDLE_ID}, whose card was not given" in stderr
    assert sorted(_exports(tmp_path, "no-card")["detection_id"]) == sorted(by_bundle["detection_id"])
    # the class COG (argmax): class 'dump' by name from the card, no probability to carry
    stderr = _dumps(predicted["classes"], tmp_path, monkeypatch, "--bundle", str(detector.bundle), watch="classes")
    assert "class 'dump' (class band 1)" in stderr
    classes = _exports(tmp_path, "classes")
    assert len(classes) and classes["mean_confidence"].isna().all() and (classes["model_bundle"] == BUNDLE_ID).all()
    assert (classes["detector_class"] == "dump").all()
    overlap = classes.geometry.union_all().intersection(by_bundle.geometry.union_all()).area
    assert overlap > 0.9 * classes.geometry.area.sum()  # argmax dump = P(dump) > 0.5 on two classes


def _edited(source: Path, target: Path, edit) -> Path:  # noqa: ANN001 - a function of the dump band
    """A copy of predict's probability COG with its dump band edited (what the test changes is said where used)."""
    with rasterio.open(source) as src:
        data, profile, descriptions, tags = src.read(), src.profile, src.descriptions, src.tags()
    data[1] = edit(data[1].copy())
    profile.update(driver="GTiff")
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions
        dst.update_tags(**tags)
    return target


def test_nodata_inside_a_site_counts_neither_in_its_area_nor_its_probability(
        detector: FeedbackDetector, predicted: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _dumps(predicted["probabilities"], tmp_path, monkeypatch, "--bundle", str(detector.bundle), watch="whole")
    whole = _exports(tmp_path, "whole").sort_values("area_m2", ascending=False).iloc[0]
    values, valid, transform = _dump_band(predicted["probabilities"])
    inside = pixels_of(whole.geometry, values.shape, transform) & valid & (values >= 125)
    rows, cols = np.nonzero(ndimage.binary_erosion(inside, iterations=3))
    r, c = rows[len(rows) // 2], cols[len(cols) // 2]
    hole = np.zeros(values.shape, bool)
    hole[r - 1:r + 2, c - 1:c + 2] = True  # 9 px of nodata in the middle of the largest site (edited in)

    def punch(band: np.ndarray) -> np.ndarray:
        band[hole] = 255
        return band

    partial = _edited(predicted["probabilities"], tmp_path / "partial.tif", punch)
    stderr = _dumps(partial, tmp_path, monkeypatch, "--bundle", str(detector.bundle), watch="partial")
    site = _exports(tmp_path, "partial").sort_values("area_m2", ascending=False).iloc[0]
    assert site.geometry.equals(whole.geometry)  # the sieve fills the hole: one site, one outline
    assert site["nodata_px"] == whole["nodata_px"] + 9
    assert site["area_m2"] == pytest.approx(whole["area_m2"] - 9 * 0.25)
    kept = pixels_of(site.geometry, values.shape, transform) & valid & ~hole
    assert site["mean_confidence"] == pytest.approx(values[kept].mean() / 250)
    assert f"nodata inside sites: {int(whole['nodata_px']) + 9} px" in stderr


def test_a_layer_of_nodata_only_is_no_site_and_no_pass(detector: FeedbackDetector, predicted: dict[str, Path],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = ("--bundle", str(detector.bundle))
    _dumps(predicted["probabilities"], tmp_path, monkeypatch, *bundle)
    first = _exports(tmp_path)
    blank = _edited(predicted["probabilities"], tmp_path / "blank.tif", lambda band: np.full_like(band, 255))
    stderr = _dumps(blank, tmp_path, monkeypatch, *bundle, day="2024-06-01")
    assert "no site: the layer holds only nodata (60000 px)" in stderr and "0 alerts" in stderr
    assert len(_exports(tmp_path, day="2024-06-01")) == 0
    passes = tmp_path / "gv" / "diagnostics" / "dumps" / "montpellier" / "passes"
    assert sorted(p.name for p in passes.glob("*.gpkg")) == ["20240501.gpkg"]  # nothing observed, nothing removed
    assert _item(tmp_path)["properties"]["geovigie:observed"] is False
    _dumps(predicted["probabilities"], tmp_path, monkeypatch, *bundle, day="2024-07-01")
    third = _exports(tmp_path, day="2024-07-01")
    assert set(third["status"]) == {"persisting"} and sorted(third["site_id"]) == sorted(first["site_id"])


def test_a_probability_exactly_at_the_threshold_is_a_site(detector: FeedbackDetector, predicted: dict[str, Path],
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = ("--bundle", str(detector.bundle))
    _dumps(predicted["probabilities"], tmp_path, monkeypatch, *bundle, watch="plain")
    plain = _exports(tmp_path, "plain")
    at = _edited(predicted["probabilities"], tmp_path / "at.tif",  # every pixel >= 0.5 set to exactly 0.5
                 lambda band: np.where((band >= 125) & (band <= 250), 125, band).astype(np.uint8))
    below = _edited(predicted["probabilities"], tmp_path / "below.tif",  # ... and to one step under it
                    lambda band: np.where((band >= 125) & (band <= 250), 124, band).astype(np.uint8))
    _dumps(at, tmp_path, monkeypatch, *bundle, watch="at")
    on = _exports(tmp_path, "at")
    assert sorted(on["detection_id"]) == sorted(plain["detection_id"])
    assert (on["max_confidence"] == 0.5).all()
    _dumps(below, tmp_path, monkeypatch, *bundle, watch="below")
    assert len(_exports(tmp_path, "below")) == 0


def test_a_card_that_records_a_field_validation_lifts_the_candidats_label(
        detector: FeedbackDetector, predicted: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the trained bundle whose card says (written by the test) it was checked on 40 held-out records."""
    bundle = tmp_path / "validated-bundle"
    shutil.copytree(detector.bundle, bundle)
    card = json.loads((bundle / "card.json").read_text())
    card["provenance"]["validation"] = {"held_out_field_labels": 40, "report": "test: a made-up field campaign"}
    (bundle / "card.json").write_text(json.dumps(card))
    stderr = _dumps(predicted["probabilities"], tmp_path, monkeypatch, "--bundle", str(bundle), "--validated")
    sites = _exports(tmp_path)
    assert len(sites) and not sites["candidate"].any() and (sites["source_kind"] == "validated_model").all()
    assert (sites["note"] == f"detector {BUNDLE_ID} validated on 40 held-out field labels (test: a made-up field "
                             "campaign)").all()
    assert "dump sites:" in stderr and "candidats (" not in stderr and "note: candidats" not in stderr
    props = _item(tmp_path)["properties"]
    assert props["title"].startswith("Dump sites") and props["geovigie:candidate"] is False


def test_two_runs_of_one_pass_at_once_leave_one_consistent_set(
        detector: FeedbackDetector, predicted: dict[str, Path], tmp_path: Path) -> None:
    """Two real processes, the same watch and pass, two thresholds: the last to finish wins, wholly."""
    env = {**os.environ, "GEOVIGIE_DATA_DIR": str(tmp_path / "gv"), "GEOVIGIE_STAC_BACKEND": "static",
           "GEOVIGIE_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("# no settings\n")
    runs = {}
    for threshold in ("0.3", "0.7"):
        runs[threshold] = subprocess.Popen(
            [GEOVIGIE, "diagnose", "dumps", str(predicted["probabilities"]), "--bundle", str(detector.bundle),
             "--watch", "montpellier", "--date", PASS, "--threshold", threshold, "--dsm", str(detector.dsm),
             "--dtm", str(detector.dtm)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for process in runs.values():
        output = process.communicate(timeout=600)[0].decode(errors="replace")
        assert process.returncode == 0, output
    folder = tmp_path / "gv" / "diagnostics" / "dumps" / "montpellier"
    leftovers = [p for p in folder.rglob("*") if ".gvtmp-" in p.name]
    assert not leftovers
    snapshot = gpd.read_file(folder / "passes" / "20240501.gpkg")
    exports = _exports(tmp_path)
    table = pd.read_csv(folder / "exports" / "sites-20240501.csv")
    geojson = json.loads((folder / "exports" / "sites-20240501.geojson").read_text())["features"]
    published = json.loads((tmp_path / "gv" / "results" / "geovigie-results" / "dumps-montpellier" /
                            "data.geojson").read_text())["features"]
    ids = sorted(snapshot["detection_id"])
    assert ids == sorted(exports["detection_id"]) == sorted(table["detection_id"])
    assert ids == sorted(f["properties"]["detection_id"] for f in geojson)
    assert ids == sorted(f["properties"]["detection_id"] for f in published)
    assert set(snapshot["status"]) == {"new"}  # the pass tracked against nothing earlier, not against its twin
    # the set is one of the two runs', whole
    alone = {}
    (tmp_path / "alone").mkdir()
    for threshold in runs:
        watch = f"alone-{threshold.replace('.', '')}"
        with pytest.MonkeyPatch.context() as monkeypatch:
            _dumps(predicted["probabilities"], tmp_path / "alone", monkeypatch, "--bundle", str(detector.bundle),
                   "--threshold", threshold, watch=watch)
        alone[threshold] = sorted(_exports(tmp_path / "alone", watch)["detection_id"])
    assert alone["0.3"] != alone["0.7"] and ids in (alone["0.3"], alone["0.7"])


def test_a_second_run_of_a_pass_waits_for_the_first_to_finish(
        detector: FeedbackDetector, predicted: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first run is held between its snapshot and its exports (the test pauses it there); the second, started
    meanwhile, may not write anything until the first is done, so the set left is the second's, whole."""
    import threading
    from datetime import date

    from geovigie.settings import Settings
    from geovigie.workflows import _dumps, dump_sites, watch_folder

    settings = Settings(data_dir=tmp_path / "gv")
    reached, release = threading.Event(), threading.Event()
    write_sites = _dumps.write_sites

    def paused(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - write_sites' own signature
        if threading.current_thread().name == "first":
            reached.set()
            release.wait(120)
        return write_sites(*args, **kwargs)

    monkeypatch.setattr(_dumps, "write_sites", paused)
    results = {}

    def run(name: str, threshold: float) -> None:
        results[name] = dump_sites(predicted["probabilities"], settings, watch="montpellier",
                                   pass_date=date(2024, 5, 1), threshold=threshold, bundle=detector.bundle)

    first = threading.Thread(target=run, args=("first", 0.3), name="first")
    second = threading.Thread(target=run, args=("second", 0.7), name="second")
    first.start()
    assert reached.wait(120)
    second.start()
    second.join(5)
    waited = second.is_alive()  # held by the watch's lock
    release.set()
    first.join(120)
    second.join(120)
    assert waited and set(results) == {"first", "second"}
    folder = watch_folder(settings, "montpellier")
    snapshot = sorted(gpd.read_file(folder / "passes" / "20240501.gpkg")["detection_id"])
    assert snapshot == sorted(_exports(tmp_path)["detection_id"]) == sorted(results["second"].sites["detection_id"])
    assert snapshot != sorted(results["first"].sites["detection_id"])
