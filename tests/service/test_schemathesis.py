"""Property-based tests of the service's OpenAPI (schemathesis, in-process over ASGI, no network).

Every operation, fed up to 30 generated requests, answers no 5xx, only status codes, content types, headers and
JSON bodies its schema documents.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer
from tests._support.layers import CLASSES, class_cog

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


def _app_over_one_layer() -> FastAPI:
    """An app over one published (small, hand-made) land-cover layer, in a temporary folder.

    Built at collection: schemathesis parametrizes from the schema. (`schemathesis.pytest.from_fixture` would use
    pytest's tmp_path, but schemathesis 4.32 reads `request.node._nodeid`, which pytest 9 no longer has.)
    """
    folder = Path(tempfile.mkdtemp(prefix="geovigie-schemathesis-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    # explicit: built at collection, before the fixture that sets the backend (the STAC API has its own tests)
    config = Settings(data_dir=folder / "gv", stac_backend="static")
    publish_layer(config.results_dir, class_cog(folder / "c.tif"),
                  LayerSpec("lc", "Land cover", "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))
    return create_app(config)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app_over_one_layer())


@schema.parametrize()
@settings(max_examples=30, deadline=5000, suppress_health_check=list(HealthCheck))
def test_operations_conform_to_their_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_docs_page_needs_no_cdn(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path / "gv")))
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "https://" not in page
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    bundle = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert client.get("/static/vendor/swagger-ui/swagger-ui.css").status_code == 200
    assert client.get("/redoc").status_code == 404  # dropped rather than served from a CDN
