"""Property-based tests of the service's OpenAPI (schemathesis, in-process over ASGI, no network): no 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer
from tests.tiles.test_publish import CLASSES, _class_cog


def _app():  # noqa: ANN202
    """An app over one published layer (built at collection: schemathesis parametrizes from its schema)."""
    folder = Path(tempfile.mkdtemp(prefix="geovigie-schemathesis-"))
    config = Settings(data_dir=folder / "gv")
    publish_layer(config.results_dir, _class_cog(folder / "c.tif"),
                  LayerSpec("lc", "Land cover", "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))
    return create_app(config)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.path, case.path_parameters, response.text[:200])


def test_docs_page_needs_no_cdn(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(create_app(Settings(data_dir=tmp_path / "gv")))
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "/static/swagger-ui/swagger-ui-bundle.js" in page
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
