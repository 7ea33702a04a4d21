"""The API docs and the map page (MapLibre) in headless Chromium, served by uvicorn on loopback: every request not to
the server is blocked and recorded, no console error.

The dashboard is checked on the demo run (real Gers, Montpellier and Münster data): groups, colours read back from
screenshots at known places, the pass slider, a commune's chart, a site's panel and feedback. The write endpoints
(`/sites/...`, `/jobs`) are answered by a test double router added to the app in these tests only (`_fake_writes`):
the page finds them in `/openapi.json` as it will find the real ones.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pytest
from fastapi import APIRouter, FastAPI, Header, HTTPException
from shapely import affinity

from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, VectorStyle, publish_layer, publish_vector_layer
from tests._support.browser import (
    IDLE,
    SET_RANGE,
    map_browser,
    map_pixels,
)
from tests._support.layers import CLASSES, class_cog
from tests._support.servers import free_port, served
from tests.conftest import DATA, GERS_DIR

INJECTED = '<img src="x" id="injected">Aignan'
TEST_KEY = "test-key-not-a-secret"


@contextmanager
def _serve(settings: Settings, extra: Callable[[FastAPI], None] | None = None) -> Iterator[str]:
    """The app for `settings` served by uvicorn on a free loopback port (its absolute links name that port)."""
    port = free_port()
    app = create_app(settings.model_copy(update={"host": "127.0.0.1", "port": port}))
    if extra is not None:
        extra(app)
    with served(app, port) as base:
        yield base




def _keep(page: Any, name: str) -> None:
    """A screenshot kept for a person to look at, when MAP_SCREENSHOTS names a folder."""
    if os.environ.get("MAP_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["MAP_SCREENSHOTS"]) / f"{name}.png"))


def _idle(page: Any) -> None:
    page.evaluate(IDLE)




def _pixel_of(page: Any, lon: float, lat: float) -> tuple[int, int]:
    """Where (lon, lat) is in the page's screenshot."""
    point = page.evaluate("([lon, lat]) => window.geovigie.map.project([lon, lat])", [lon, lat])
    box = page.locator("#map").bounding_box()
    return round(box["x"] + point["x"]), round(box["y"] + point["y"])


def _ramp(colors: list[str], fraction: float) -> np.ndarray:
    """The colour a value takes on a legend ramp (linear between its stops), as the page should draw it."""
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colors], dtype=float)
    x = min(1.0, max(0.0, fraction)) * (len(stops) - 1)
    i = min(len(stops) - 2, int(np.floor(x)))
    return stops[i] + (stops[i + 1] - stops[i]) * (x - i)


def _hex(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])


def _open_group(page: Any, group: str) -> None:
    page.evaluate("(g) => { document.querySelector(`details[data-group='${g}']`).open = true; }", group)


def _activate(page: Any, series: str, opacity: float | None = 1.0, zoom: bool = True) -> None:
    """Switch series `series` on (its Zoom button: on and framed), at full opacity so colours can be read back."""
    item = f'li[data-series="{series}"]'
    page.click(f"{item} button.zoom" if zoom else f"{item} input[type=checkbox]")
    page.wait_for_selector(f"#legend .legend-block[data-layer-id^='{series}']")
    if opacity is not None:
        page.locator(f"{item} input.opacity").evaluate(SET_RANGE, str(opacity))
    _idle(page)


def test_docs_render_operations_offline(tmp_path: Path) -> None:
    with _serve(Settings(data_dir=tmp_path / "gv")) as server, map_browser(server) as (page, problems):
        page.goto(server + "/docs")
        page.wait_for_selector(".opblock", timeout=20000)
        page.wait_for_load_state("networkidle")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        title = page.locator(".info .title").inner_text()
        operations = httpx.get(server + "/openapi.json").json()["paths"]
    assert {path.replace("\u200b", "") for path in paths} == set(operations)
    assert "geovigie" in title
    assert problems == []


def _publish_small_map(tmp_path: Path, settings: Settings) -> gpd.GeoDataFrame:
    """A class raster, a broken raster, the Gers communes (choropleth of population, two without a figure), a
    dump site with a hostile commune name, and the départements as base layer."""
    results = settings.results_dir
    for layer_id in ("landcover-lc", "landcover-broken"):
        publish_layer(results, class_cog(tmp_path / f"{layer_id}.tif"),
                      LayerSpec(layer_id, f"Occupation {layer_id}", "classes", classes=CLASSES),
                      Provenance(inputs=[], lineage="t"))
    (results / "geovigie-results" / "landcover-broken" / "data.tif").unlink()
    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson").to_crs(4326)
    communes = communes[["INSEE_COM", "NOM_COM", "POPULATION", "geometry"]].rename(
        columns={"INSEE_COM": "zone_id", "NOM_COM": "zone_name"})
    communes["POPULATION"] = communes["POPULATION"].astype(float)
    communes.loc[communes.index[:2], "POPULATION"] = np.nan  # no figure: hatched, never a colour of the ramp
    communes.to_file(tmp_path / "communes.geojson")
    publish_vector_layer(results, tmp_path / "communes.geojson", LayerSpec(
        "vegetation-zones-gers", "Communes du Gers", "vector",
        style=VectorStyle(color_by="POPULATION", colormap_name="ylgn", unit="hab.", label="zone_name")),
        Provenance(inputs=[], lineage="t"))
    # three sites over two passes, written by hand: the status history is a JSON object of each feature
    centre = communes[communes["zone_name"] == "Aignan"].to_crs(2154).geometry.representative_point().iloc[0]
    histories = {"a": {"2024-05-01": "new", "2024-09-01": "persisting"}, "b": {"2024-09-01": "new"},
                 "c": {"2024-05-01": "new", "2024-09-01": "removed"}}
    footprints = gpd.GeoSeries([affinity.translate(f, xoff=dx) for f, dx in zip(
        gpd.GeoSeries([centre.buffer(250)] * 3, crs=2154), (-900, 0, 900), strict=True)], crs=2154).to_crs(4326)
    features = [{"type": "Feature", "geometry": footprint.__geo_interface__, "properties": {
        "site_id": f"site-{key}", "status": list(history.values())[-1], "status_history": history,
        "commune_name": INJECTED if key == "a" else "Aignan", "area_m2": 1612.75, "volume_m3": None}}
        for (key, history), footprint in zip(histories.items(), footprints, strict=True)]
    (tmp_path / "sites.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    publish_vector_layer(results, tmp_path / "sites.geojson", LayerSpec(
        "dumps-test", "Dump sites test 2024-09-01", "vector", style=VectorStyle(label="site_id")),
        Provenance(inputs=[], lineage="t"))
    publish_vector_layer(results, DATA / "admin-express" / "departements_simplified_1km.geojson", LayerSpec(
        "base-departements", "Départements", "vector", style=VectorStyle(base=True)),
        Provenance(inputs=[], lineage="t"))
    return communes


def test_map_page_degrades_without_write_endpoints_and_shows_sites_through_passes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    communes = _publish_small_map(tmp_path, settings)
    with _serve(settings) as server, map_browser(server) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        listed = page.locator("#layers li").evaluate_all("items => items.map(i => i.dataset.layerId)")
        assert sorted(listed) == ["dumps-test", "landcover-lc", "vegetation-zones-gers"]  # no base, no broken
        assert "landcover-broken" in page.inner_text("#notice")
        groups = page.locator("#layers details summary").all_inner_texts()
        assert groups == ["Dépôts sauvages", "Végétation", "Occupation du sol"]
        # the choropleth is on at first: its ramp starts at 0 inhabitants, not at the smallest commune
        low, _, high = page.locator("#legend .ramp-labels span").all_inner_texts()
        assert low == "0\u00a0hab." and re.sub(r"\D", "", high) and "pas de données" in page.inner_text("#legend")
        assert page.locator(".no-data-label").count() == communes["POPULATION"].isna().sum() == 2
        # no write endpoint yet: the forms say so instead of failing
        assert "indisponibles" in page.inner_text("#jobs")
        _open_group(page, "dumps")
        _activate(page, "dumps-test")
        sites = gpd.read_file(tmp_path / "sites.geojson").set_index("site_id").geometry.representative_point()
        colours = {"new": "#e31a1c", "persisting": "#ff7f00", "removed": "#8c8c8c"}

        def site_colours() -> dict[str, np.ndarray]:
            shot, _ = map_pixels(page)
            return {key: shot[_pixel_of(page, p.x, p.y)[::-1]] for key, p in sites.items()}

        slider = page.locator("li[data-series='dumps-test'] input.time")
        assert slider.get_attribute("max") == "1" and slider.input_value() == "1"  # the last pass first
        latest = site_colours()
        for key, status in (("site-a", "persisting"), ("site-b", "new"), ("site-c", "removed")):
            assert np.abs(latest[key] - _hex(colours[status])).max() <= 6, (key, latest[key])
        slider.evaluate(SET_RANGE, "0")
        _idle(page)
        first = site_colours()
        assert np.abs(first["site-a"] - _hex(colours["new"])).max() <= 6
        assert np.abs(first["site-c"] - _hex(colours["new"])).max() <= 6
        assert np.abs(first["site-b"] - _hex(colours["new"])).max() > 60  # not found yet at the first pass
        assert "1 mai 2024" in page.inner_text("li[data-series='dumps-test']")
        page.mouse.click(*_pixel_of(page, sites["site-a"].x, sites["site-a"].y))
        panel = page.wait_for_selector("#details[data-kind=site]")
        text = panel.inner_text()
        assert INJECTED in text and page.locator("#injected").count() == 0  # data written as text, never HTML
        assert "1\u202f612,75\u00a0m²" in text  # French numbers
        assert "Avis indisponible" in text and page.locator("#feedback-form").count() == 0
        # the optional IGN base map cannot be reached here: the page says so and goes back to the offline base
        page.check("#base-plan")
        page.wait_for_selector("#notice >> text=Plan IGN injoignable")
        assert page.locator("#base-offline").is_checked()
        page.wait_for_load_state("networkidle")
    ign = [p for p in problems if "data.geopf.fr" in p]
    assert ign and all(p.startswith(("outside: https://data.geopf.fr/", "failed: https://data.geopf.fr/",
                                     "Failed to load resource: net::ERR_FAILED https://data.geopf.fr/"))
                       for p in ign)  # blocked by the test: never let through
    problems = [p for p in problems if p not in ign]
    assert problems == []


class _FakeWrites:
    """TEST DOUBLE of the write endpoints (the fixture uses the service's own where it can): feedback kept in memory,
    a job that runs for two polls. It only answers as the documented contract says."""

    def __init__(self) -> None:
        self.feedback: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.watches: list[str | None] = []
        self.key = TEST_KEY
        self.router = APIRouter()
        self.router.add_api_route("/sites/{site_id}", self.site, methods=["GET"])
        self.router.add_api_route("/sites/{site_id}/feedback", self.post_feedback, methods=["POST"], status_code=201)
        self.router.add_api_route("/jobs", self.post_job, methods=["POST"], status_code=202)
        self.router.add_api_route("/jobs/{job_id}", self.job, methods=["GET"])

    def _check(self, authorization: str | None) -> str:
        if authorization != f"Bearer {self.key}":
            raise HTTPException(401, "missing or wrong key")
        return "agent"

    def site(self, site_id: str, watch: str | None = None) -> dict[str, Any]:
        # the shape of the real GET /sites/{id}: a Feature, its history (passes, then feedback) oldest first
        self.watches.append(watch)
        mine = [entry for entry in self.feedback if entry["site_id"] == site_id]
        history = [{"kind": "pass", "time": "2024-05-01", "status": "new", "area_m2": 1.0}]
        history += [{"kind": "feedback", **entry, "author": "agent"} for entry in mine]
        return {"type": "Feature", "id": site_id, "geometry": None, "history": history,
                "properties": {"site_id": site_id, "feedback_status": mine[-1]["status"] if mine else None}}

    def post_feedback(self, site_id: str, body: dict[str, Any], watch: str | None = None,
                      authorization: str | None = Header(None)) -> dict[str, Any]:
        self._check(authorization)
        if body.get("status") not in ("confirmed", "false_alarm", "cleaned") or set(body) != {"status", "comment"}:
            raise HTTPException(422, "status")
        entry = {"site_id": site_id, "watch": watch, "status": body["status"], "comment": body["comment"],
                 "time": "2026-12-04T10:00:00Z"}
        self.feedback.append(entry)
        return entry

    def post_job(self, body: dict[str, Any], authorization: str | None = Header(None)) -> dict[str, Any]:
        self._check(authorization)
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = {"body": body, "polls": 0}
        return {"id": job_id}

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        job["polls"] += 1
        done = min(job["polls"], 2)
        return {"id": job_id, "state": "running" if done < 2 else "succeeded",
                "progress": {"done": done, "total": 2, "unit": "tiles"}, "log": [f"tile {done}/2"],
                "links": [{"rel": "layer", "href": "/layers/ndvi-gers-20181023", "title": "NDVI"},
                          {"rel": "bad", "href": "javascript:alert(1)", "title": "never a link"}] if done == 2 else []}


@pytest.fixture(scope="module")
def dashboard(demo_run) -> Iterator[tuple[str, Settings, _FakeWrites]]:
    """The demo served with the REAL sites and feedback endpoints and a real write key when the demo runs on
    PostgreSQL (the test double answers them otherwise). Jobs: the test double where it takes the route; where the
    service's own jobs endpoint answers first (with its database), the job is taken and stays queued (no runner)."""
    settings, _ = demo_run
    writes = _FakeWrites()
    real_sites = settings.stac_backend == "pgstac"
    if real_sites:
        from tests._support.writes import make_key

        writes.key = make_key(settings.model_copy(update={"job_runner": False}), owner="agent")
    doubled = {"/jobs", "/jobs/{job_id}"} | (set() if real_sites else {"/sites/{site_id}", "/sites/{site_id}/feedback"})

    def fake(app: FastAPI) -> None:
        app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in doubled]
        app.router.routes.extend(r for r in writes.router.routes if getattr(r, "path", None) in doubled)

    with _serve(settings.model_copy(update={"job_runner": False}), fake) as server:
        yield server, settings, writes


def _features(server: str, layer_id: str) -> dict[str, Any]:
    info = httpx.get(f"{server}/layers/{layer_id}").json()
    return httpx.get(httpx.URL(server).join(info["features"])).json()


def test_first_view_is_the_gers_with_vegetation_per_commune_coloured_and_hatched(dashboard) -> None:
    server, settings, _ = dashboard
    info = httpx.get(f"{server}/layers/vegetation-zones-gers").json()
    zones = gpd.GeoDataFrame.from_features(_features(server, "vegetation-zones-gers")["features"], crs=4326)
    no_data = zones["covered_fraction"].eq(0) | zones["ndvi_mean"].isna() \
        | zones.get("status", zones["zone_id"]).isin(["partial", "not_covered"])
    with map_browser(server) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        assert page.locator("li[data-series='vegetation-zones-gers'] input[type=checkbox]").is_checked()
        page.locator("li[data-series='vegetation-zones-gers'] input.opacity").evaluate(SET_RANGE, "1")
        _idle(page)
        shot, _ = map_pixels(page)
        legend = info["legend"][0]
        checked = 0
        for _, zone in zones.iterrows():
            point = zone.geometry.representative_point()
            x, y = _pixel_of(page, point.x, point.y)
            patch = shot[y - 3:y + 4, x - 3:x + 4].reshape(-1, 3)
            if no_data[_]:
                # hatched: dark hatch lines and light background in the same few pixels, not one ramp colour
                assert patch.min(axis=1).min() < 170 and patch.min(axis=1).max() > 200, zone["zone_name"]
                continue
            expected = _ramp(legend["colors"], (zone["ndvi_mean"] - legend["min"]) / (legend["max"] - legend["min"]))
            centre = shot[y, x]
            if np.abs(patch - centre).max() < 3:  # not on a label or a boundary
                assert np.abs(centre - expected).max() <= 6, (zone["zone_name"], centre, expected)
                checked += 1
        assert checked >= min(3, int((~no_data).sum()) - 1) and no_data.any()
        assert page.locator(".no-data-label").count() == int(no_data.sum())
        boxes = page.locator(".no-data-label").evaluate_all(
            "ls => ls.filter(l => l.style.visibility !== 'hidden').map(l => l.getBoundingClientRect().toJSON())")
        assert len(boxes) >= int(no_data.sum()) // 2 and not any(  # labels shown where they fit, never over another
            a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]
            for i, a in enumerate(boxes) for b in boxes[i + 1:])
        # the map starts on the Gers, not on another territory
        lon, lat = page.evaluate("() => window.geovigie.map.getCenter().toArray()")
        assert -0.5 < lon < 0.5 and 43.3 < lat < 44.0
        _keep(page, "first-view")
    assert problems == []


def test_each_group_has_a_layer_that_draws_its_legend_colours(dashboard) -> None:
    server, settings, _ = dashboard
    layers = {layer["id"]: layer for layer in httpx.get(server + "/layers").json()}
    chosen = {"zan": "zan-gers-odeon-2016-2019", "heat": "uhi-hotspots-muenster",
              "landcover": "landcover-slovenia-reference-scene-2"}
    with map_browser(server) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        groups = page.locator("#layers details").evaluate_all("ds => ds.map(d => d.dataset.group)")
        assert groups == ["dumps", "zan", "vegetation", "heat", "landcover"]
        for group, series in chosen.items():
            _open_group(page, group)
            _activate(page, series)
            layer_id = page.locator(f"li[data-series='{series}']").get_attribute("data-layer-id")
            shot, box = map_pixels(page)
            inside = shot[int(box["y"]):int(box["y"] + box["height"]), int(box["x"]):int(box["x"] + box["width"])]
            colours = [_hex(c["color"]) for c in layers[layer_id]["legend"]]
            drawn = [int((np.abs(inside - colour).max(axis=2) <= 4).sum()) for colour in colours]
            assert sum(drawn) > 0.2 * inside.shape[0] * inside.shape[1], (series, drawn)  # the map shows the classes
            assert page.locator("#legend .legend-block").count() >= 2
            page.uncheck(f"li[data-series='{series}'] input[type=checkbox]")
            _idle(page)
            assert page.locator(f"#legend .legend-block[data-layer-id='{layer_id}']").count() == 0
        _keep(page, "groups")
    assert problems == []


def test_pass_slider_moves_between_the_two_muenster_passes_and_a_cell_charts_both(dashboard) -> None:
    server, settings, _ = dashboard
    cells = {day: _features(server, f"uhi-zones-muenster-{day}") for day in ("20240813", "20250511")}
    with map_browser(server) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        _open_group(page, "heat")
        _activate(page, "uhi-muenster")
        item = page.locator("li[data-series='uhi-muenster']")
        assert item.get_attribute("data-layer-id") == "uhi-muenster-20250511"  # the latest pass first
        assert "mai 2025" in item.inner_text()
        after, _ = map_pixels(page)
        item.locator("input.time").evaluate(SET_RANGE, "0")
        page.wait_for_selector("#legend .legend-block[data-layer-id='uhi-muenster-20240813']")
        _idle(page)
        before, _ = map_pixels(page)
        assert item.get_attribute("data-layer-id") == "uhi-muenster-20240813" and "août 2024" in item.inner_text()
        assert (np.abs(before - after).max(axis=2) > 30).sum() > 1000  # another pass, other colours
        # a cell of the intensity per cell: its chart has one bar per pass with that pass's mean
        _activate(page, "uhi-zones-muenster")
        seen_2024 = {f["properties"]["zone_id"] for f in cells["20240813"]["features"]
                     if f["properties"]["mean"] is not None}
        hottest = max((f for f in cells["20250511"]["features"] if f["properties"]["mean"] is not None
                       and f["properties"]["zone_id"] in seen_2024), key=lambda f: f["properties"]["mean"])
        zone = gpd.GeoDataFrame.from_features([hottest], crs=4326).geometry.iloc[0].representative_point()
        page.mouse.click(*_pixel_of(page, zone.x, zone.y))
        page.wait_for_selector(f"#details[data-id='{hottest['properties']['zone_id']}'] figure.chart")
        bars = page.locator("#details figure.chart g.bar").evaluate_all(
            "gs => gs.map(g => [g.dataset.label, Number(g.dataset.value), g.textContent])")
        means = {day: next(f["properties"]["mean"] for f in cells[day]["features"]
                           if f["properties"]["zone_id"] == hottest["properties"]["zone_id"]) for day in cells}
        assert [b[1] for b in bars] == pytest.approx([means["20240813"], means["20250511"]])
        assert [b[0] for b in bars] == ["13 août 2024", "11 mai 2025"]
        assert "°C" in bars[1][2] and "," in bars[1][2]  # French decimals
        _keep(page, "heat-cell")
    assert problems == []


def test_click_a_commune_reads_its_figures_and_chart_in_french_then_english(dashboard) -> None:
    server, settings, _ = dashboard
    zones = {f["properties"]["zone_name"]: f for f in _features(server, "vegetation-zones-gers")["features"]}
    aignan = zones["Aignan"]
    point = gpd.GeoDataFrame.from_features([aignan], crs=4326).geometry.iloc[0].representative_point()
    with map_browser(server) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        page.mouse.click(*_pixel_of(page, point.x, point.y))
        panel = page.wait_for_selector("#details[data-kind=zone]")
        assert panel.query_selector("h2").inner_text() == "Aignan"
        bars = page.locator("#details figure.chart g.bar").evaluate_all(
            "gs => gs.map(g => [g.dataset.label, Number(g.dataset.value), g.textContent])")
        props = aignan["properties"]
        assert [b[0] for b in bars] == ["dense", "clairsemée"]
        assert [b[1] for b in bars] == pytest.approx([100 * props["dense_vegetation_share"],
                                                      100 * props["sparse_vegetation_share"]])
        table = dict(page.locator("#details table.figures tr").evaluate_all(
            "rs => rs.map(r => [r.dataset.field, r.cells[0].textContent + ' = ' + r.cells[1].textContent])"))
        assert table["ndvi_mean"].startswith("NDVI moyen = 0,")
        assert table["zone_area_m2"] == "Surface de la zone = " + format(round(props["zone_area_m2"]), ",").replace(
            ",", "\u202f") + "\u00a0m²"
        assert table["covered_fraction"].startswith("Part couverte par l'image = ") and table[
            "covered_fraction"].endswith("\u00a0%")
        _keep(page, "commune")
        # the same panel without a pointer: the zone list under the legend
        page.click("#details .close")
        page.select_option("#legend select.zone-picker", label="Sabazan")
        page.wait_for_selector("#details[data-id='32354'] h2 >> text=Sabazan")
        page.click("#lang")
        page.wait_for_selector("#details table.figures tr[data-field=ndvi_mean] >> text=Mean NDVI")
        assert page.locator("#layers details summary").first.inner_text() == "Illegal dumps"
    assert problems == []


def test_site_panel_feedback_and_job_through_the_test_double(dashboard) -> None:
    server, settings, writes = dashboard
    sites = _features(server, "dumps-montpellier-lidar")["features"]
    site = max(sites, key=lambda f: f["properties"]["area_m2"])
    point = gpd.GeoDataFrame.from_features([site], crs=4326).geometry.iloc[0].representative_point()
    with map_browser(server) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        assert "clé API" in page.inner_text("#jobs")  # offered, once a key is given
        page.fill("#api-key", writes.key)
        page.click("#key-save")
        assert page.evaluate("() => localStorage.getItem('geovigie.apiKey')") == writes.key
        _open_group(page, "dumps")
        _activate(page, "dumps-montpellier-lidar", opacity=1.0)
        x, y = _pixel_of(page, point.x, point.y)
        shot, _ = map_pixels(page)
        assert np.abs(shot[y, x] - _hex("#e31a1c")).max() <= 6  # a new site: red over the LiDAR hillshade
        page.mouse.click(x, y)
        panel = page.wait_for_selector(f"#details[data-id='{site['properties']['site_id']}']")
        text = panel.inner_text()
        volume = format(round(site["properties"]["volume_m3"]), ",").replace(",", "\u202f")
        uncertainty = site["properties"].get("volume_uncertainty_m3")
        if uncertainty is None:
            assert f"{volume}\u00a0m³ (incertitude non estimée)" in text
        else:  # volume ± its uncertainty, both the French way
            assert f"{volume}\u00a0m³ ± {int(uncertainty):,}".replace(",", "\u202f") in text
        assert "Distance aux zones sensibles : non calculée" in text and "nouveau" in text
        page.check("#feedback-false_alarm")
        page.fill("#feedback-form textarea", "un tas de terre de chantier, autorisé")
        page.click("#feedback-form button[type=submit]")
        page.wait_for_selector("#details .feedback .result >> text=Avis enregistré")
        site_id = site["properties"]["site_id"]
        if writes.key == TEST_KEY:  # the test double took it
            assert writes.feedback[-1] == {"site_id": site_id, "watch": "montpellier-lidar", "status": "false_alarm",
                                           "comment": "un tas de terre de chantier, autorisé",
                                           "time": writes.feedback[-1]["time"]}
        else:  # the service stored it, with the key's owner
            stored = httpx.get(f"{server}/sites/{site_id}", params={"watch": "montpellier-lidar"}).json()
            assert stored["history"][-1]["status"] == "false_alarm" and stored["history"][-1]["author"] == "agent"
        assert "un tas de terre de chantier" in page.inner_text("#details .history")  # the history shows it
        _idle(page)
        x, y = _pixel_of(page, point.x, point.y)  # the panel took its place beside the map: the map moved
        shot, _ = map_pixels(page)
        assert np.abs(shot[y, x] - _hex("#2c7fb8")).max() <= 6  # the site takes the colour of its feedback
        _keep(page, "site")
        page.fill("#job-form input[name=territory]", "insee:32001")
        page.click("#job-form button[type=submit]")
        request = {"territory": "insee:32001", "period": "2018-01-01/2018-12-31", "tasks": ["vegetation"],
                   "collection": "s2-l2a-theia-gers"}
        page.wait_for_selector("#job-status[data-state]", timeout=15000)
        if not writes.jobs:  # the service's own jobs endpoint took it (no runner in this test): shown queued
            assert page.get_attribute("#job-status", "data-state") == "queued"
            assert "queued" in page.inner_text("#job-status")
        else:  # the test double: it runs for two polls and links what it made
            page.wait_for_selector("#job-status[data-state=succeeded]", timeout=15000)
            assert writes.jobs["job-1"]["body"] == request
            assert page.locator("#job-status progress").get_attribute("value") == "2"
            assert page.locator("#job-status a").evaluate_all("as => as.map(a => a.getAttribute('href'))") == [
                "/layers/ndvi-gers-20181023"]  # only http(s) or same-server links
    assert problems == []
