import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer
from tests.tiles.test_publish import CLASSES, _class_cog


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path / "gv")
    publish_layer(settings.results_dir, _class_cog(tmp_path / "c.tif"),
                  LayerSpec("lc", "Land cover", "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))
    (tmp_path / "secret.txt").write_text("outside the data directory")
    return TestClient(create_app(settings))


def test_health_and_layers(client: TestClient) -> None:
    assert client.get("/healthz").json()["layers"] == 1
    layers = client.get("/layers").json()
    assert [layer["id"] for layer in layers] == ["lc"]
    assert layers[0]["tiles"][0].endswith("/layers/lc/tiles/{z}/{x}/{y}.png")
    assert "path" not in layers[0]
    assert client.get("/layers/lc/tilejson.json").json()["tilejson"] == "3.0.0"


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
    assert client.get("/layers/lc/tiles/-1/0/0.png").status_code == 422


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
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200


def test_vector_layers_serve_features_not_tiles(tmp_path: Path) -> None:
    import geopandas as gpd

    from geovigie.tiles import VectorStyle, publish_vector_layer
    from tests.conftest import GERS_DIR

    settings = Settings(data_dir=tmp_path / "gv")
    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson").to_crs(4326)[["INSEE_COM", "NOM_COM", "geometry"]]
    communes.to_file(tmp_path / "communes.geojson")
    publish_vector_layer(settings.results_dir, tmp_path / "communes.geojson", LayerSpec(
        "communes", "Communes", "vector", style=VectorStyle(color_by="POPULATION", label="NOM_COM")),
        Provenance(inputs=[], lineage="test"))
    client = TestClient(create_app(settings))
    info = client.get("/layers/communes").json()
    assert info["features"] == "/layers/communes/features.geojson" and info["tiles"] == []
    assert info["legend"][0]["property"] == "POPULATION"
    features = client.get(info["features"])
    assert features.headers["content-type"] == "application/geo+json"
    assert len(features.json()["features"]) == 19
    assert client.get("/layers/communes/tiles/10/512/380.png").status_code == 404
    assert client.head(info["features"]).status_code == 200


def test_one_broken_layer_leaves_the_others_working(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    for layer_id in ("good", "corrupt", "missing"):
        publish_layer(settings.results_dir, _class_cog(tmp_path / "c.tif"),
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
    long_id = "x" * 10_000
    response = client.get(f"/layers/{long_id}")
    assert response.status_code == 404 and len(response.text) < 300
    evil = client.get("/layers", headers={"Host": "evil.example"})
    assert "evil.example" not in evil.text


def test_page_security_headers(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in page.headers["content-security-policy"]
