import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer
from tests._support.layers import CLASSES, class_cog


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path / "gv")
    publish_layer(settings.results_dir, class_cog(tmp_path / "c.tif"),
                  LayerSpec("lc", "Land cover", "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))
    (tmp_path / "secret.txt").write_text("outside the data directory")
    return TestClient(create_app(settings))


def test_health_and_layers(client: TestClient) -> None:
    assert client.get("/healthz").json()["layers"] == 1
    layers = client.get("/layers").json()
    assert [layer["id"] for layer in layers] == ["lc"]
    assert layers[0]["tiles"][0] == "http://127.0.0.1:8000/layers/lc/tiles/WebMercatorQuad/{z}/{x}/{y}.png"
    assert "path" not in layers[0]
    tilejson = client.get("/layers/lc/tilejson.json").json()  # redirected to TiTiler's TileJSON
    assert tilejson["tilejson"] == "3.0.0"
    assert tilejson["tiles"][0].startswith("http://127.0.0.1:8000/layers/lc/tiles/WebMercatorQuad/{z}/{x}/{y}")


def test_tile_png_has_class_colours(client: TestClient) -> None:
    import morecantile

    west, south, east, north = client.get("/layers/lc").json()["bounds"]
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 15)
    response = client.get(f"/layers/lc/tiles/{tile.z}/{tile.x}/{tile.y}.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    rgba = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA")).reshape(-1, 4)
    assert {tuple(p[:3]) for p in rgba if p[3] == 255} <= {(0, 0, 255), (0, 255, 0)}


def test_errors_map_to_http(client: TestClient) -> None:
    assert client.get("/layers/nope/tiles/1/1/1.png").status_code == 404
    assert "unknown layer" in client.get("/layers/nope").json()["detail"]
    assert client.get("/layers/lc/tiles/3/0/0.png").status_code == 404  # outside bounds
    assert client.get("/layers/lc/tiles/-1/0/0.png").status_code in (404, 422)


@pytest.mark.parametrize("path", ["/stac/../secret.txt", "/stac/%2e%2e/secret.txt", "/layers/..%2Fsecret.txt",
                                  "/stac/..%2F..%2Fsecret.txt"])
def test_nothing_outside_the_data_directory(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "outside the data directory" not in response.text


def test_static_results_catalog(client: TestClient) -> None:
    root = client.get("/stac/catalog.json").json()
    assert root["type"] == "Catalog"
    item = client.get("/stac/geovigie-results/lc/lc.json").json()
    assert item["assets"]["data"]["href"] == "./data.tif"
    assert client.get("/").status_code == 200
    assert client.get("/static/vendor/maplibre/maplibre-gl.mjs").status_code == 200


def _gers_communes(tmp_path: Path, settings: Settings, layer_id: str = "communes", **style: object) -> Path:
    """Publish the shipped Gers communes (IGN, EPSG:2154) as a vector layer; returns the source GeoJSON (4326)."""
    import geopandas as gpd

    from geovigie.tiles import VectorStyle, publish_vector_layer
    from tests.conftest import GERS_DIR

    columns = ["INSEE_COM", "NOM_COM", "POPULATION", "geometry"]
    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson").to_crs(4326)[columns]
    source = tmp_path / f"{layer_id}.geojson"
    communes.to_file(source)
    publish_vector_layer(settings.results_dir, source, LayerSpec(layer_id, "Communes du Gers", "vector",
                         style=VectorStyle(**style)), Provenance(inputs=[], lineage="test"))
    return source


def test_vector_layers_serve_features_not_tiles(tmp_path: Path) -> None:
    import geopandas as gpd

    settings = Settings(data_dir=tmp_path / "gv")
    source = _gers_communes(tmp_path, settings, color_by="POPULATION", label="NOM_COM", unit="hab.")
    client = TestClient(create_app(settings))
    info = client.get("/layers/communes").json()
    assert info["features"] == "http://127.0.0.1:8000/layers/communes/features.geojson" and "tiles" not in info
    assert info["legend"][0]["property"] == "POPULATION" and info["legend"][0]["unit"] == "hab."
    assert info["style"]["label"] == "NOM_COM"
    features = client.get(info["features"])
    assert features.status_code == 200 and features.headers["content-type"] == "application/geo+json"
    served = gpd.read_file(io.BytesIO(features.content))
    expected = gpd.read_file(source)
    assert served.crs.to_epsg() == 4326
    assert sorted(served["INSEE_COM"]) == sorted(expected["INSEE_COM"]) and len(served) == 19
    assert served["POPULATION"].sum() == expected["POPULATION"].sum()
    tile = client.get("/layers/communes/tiles/10/512/380.png")
    assert tile.status_code == 404 and "vector layer" in tile.json()["detail"]
    assert client.get("/layers/communes/tilejson.json").status_code == 404


def test_features_of_a_raster_layer_is_404(client: TestClient) -> None:
    response = client.get("/layers/lc/features.geojson")
    assert response.status_code == 404 and "'lc' is a raster" in response.json()["detail"]
    assert "features" not in client.get("/layers/lc").json()


def test_too_large_features_answer_413(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from geovigie.service.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from geovigie.service.factories import MAX_FEATURES_BYTES, LayerTilerFactory
    from geovigie.tiles import LayerIndex

    settings = Settings(data_dir=tmp_path / "gv")
    _gers_communes(tmp_path, settings)
    assert MAX_FEATURES_BYTES == 50 * 2**20
    size = (settings.results_dir / "geovigie-results" / "communes" / "data.geojson").stat().st_size
    app = FastAPI()
    app.include_router(LayerTilerFactory(index=LayerIndex(settings.results_dir), max_features_bytes=size - 1).router)
    add_exception_handlers(app, DEFAULT_STATUS_CODES)
    response = TestClient(app).get("/layers/communes/features.geojson")
    assert response.status_code == 413
    assert "'communes' is too large" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/", "/layers", "/layers/lc", "/layers/lc/tilejson.json", "/healthz", "/readyz",
                                  "/openapi.json", "/docs", "/static/app.js", "/stac/catalog.json", "/layers/nope"])
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code and head.status_code in (200, 404)
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(got.content)
    assert head.headers["content-type"] == got.headers["content-type"]


def test_long_layer_id_is_truncated_in_the_404(client: TestClient) -> None:
    long_id = "x" * 10_000
    for path in (f"/layers/{long_id}", f"/layers/{long_id}/tiles/1/1/1.png", f"/layers/{long_id}/features.geojson"):
        response = client.get(path)
        assert response.status_code == 404 and len(response.content) < 200
        assert response.json()["detail"] == f"invalid layer id '{'x' * 40}…'"


@pytest.mark.parametrize("path", ["/layers", "/layers/lc", "/layers/lc/tilejson.json", "/stac/catalog.json",
                                  "/stac/geovigie-results/lc/lc.json", "/stac", "/layers/", "/healthz/", "/docs",
                                  "/openapi.json", "/nope"])
def test_host_header_never_reflected(client: TestClient, path: str) -> None:
    response = TestClient(client.app, follow_redirects=False).get(path, headers={"Host": "evil.example"})
    assert response.status_code < 500
    assert "evil.example" not in response.text
    assert not any("evil.example" in value for value in response.headers.values())


def test_every_response_says_nosniff(client: TestClient) -> None:
    for path in ("/layers", "/nope", "/static/app.js", "/stac/catalog.json"):
        assert client.get(path).headers["x-content-type-options"] == "nosniff"


def test_one_broken_layer_leaves_the_others_working(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    for layer_id in ("good", "corrupt", "missing"):
        publish_layer(settings.results_dir, class_cog(tmp_path / "c.tif"),
                      LayerSpec(layer_id, layer_id, "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))
    folder = settings.results_dir / "geovigie-results"
    (folder / "corrupt" / "corrupt.json").write_text("{not json")
    (folder / "missing" / "data.tif").unlink()
    client = TestClient(create_app(settings))
    assert [layer["id"] for layer in client.get("/layers").json()] == ["good"]
    ready = client.get("/readyz").json()
    assert ready["status"] == "degraded" and set(ready["broken"]) == {"corrupt", "missing"}
    assert client.get("/layers/good/tiles/0/0/0.png").status_code in (200, 404)
    assert client.get("/layers/missing").status_code == 404
    assert "data file is missing" in ready["broken"]["missing"] and "item cannot be read" in ready["broken"]["corrupt"]
    assert client.get("/readyz").status_code == 200  # degraded, not down: the good layers are served
    assert client.get("/healthz").json()["layers"] == 3


def test_page_security_headers(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["x-content-type-options"] == "nosniff"
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'" and "'unsafe-inline'" not in policy.get("script-src", "")
    # MapLibre: tiles fetched (connect-src), decoded through blob: URLs where createImageBitmap is missing; the
    # layers' absolute links start with the public URL (http://HOST:PORT by default)
    assert policy["img-src"].split() == ["'self'", "data:", "blob:", "http://127.0.0.1:8000", "https://data.geopf.fr"]
    assert policy["connect-src"].split() == ["'self'", "http://127.0.0.1:8000", "https://data.geopf.fr"]
    assert policy["worker-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
