"""Bad STAC API searches and items as the request guard meets them: one 400 naming the problem, before stac-fastapi
or the database; good ones put in the form pgstac reads (CQL2-text POST filters as CQL2-JSON, `query` as CQL2).

The guard wraps an app that echoes what reached it, so what pgstac would be asked is checked directly (the whole
service over PostgreSQL is in tests/service/test_stac_api.py).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from geovigie.catalog.stac._pgstac import queryable_definitions
from geovigie.service.stac_guard import StacRequestGuard, query_to_cql2


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"query": dict(parse_qsl(request.url.query)), "body": json.loads(body) if body else None})


async def _item(request: Request) -> Response:
    if request.method == "POST":
        return JSONResponse(await request.json(), status_code=201)
    return JSONResponse({"id": "x"}, status_code=200 if request.path_params["item"] != "missing" else 404)


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = Starlette(routes=[Route("/search", _echo, methods=["GET", "POST"]),
                            Route("/collections/{c}/items", _item, methods=["POST"]),
                            Route("/collections/{c}/items/{item}", _item, methods=["PUT", "PATCH", "DELETE"])])
    return TestClient(StacRequestGuard(app))


@pytest.mark.parametrize(("body", "named"), [
    ({"fields": None}, "fields must be an object"),
    ({"fields": ["id"]}, "fields must be an object"),
    ({"query": {"platform": {"matches": "s2"}}}, "unknown query operator 'matches'"),
    ({"query": {"platform": "sentinel-2b"}}, "query on 'platform' must be an object of operators"),
    ({"query": {}}, "query must be an object of properties"),
    ({"query": {"platform": {"startsWith": 2}}}, "startsWith takes a string"),
    ({"query": {"platform": {"in": []}}}, "in takes a non-empty list"),
    ({"filter": "eo:cloud_cover <", "filter-lang": "cql2-text"}, "filter is not valid CQL2"),
])
def test_bad_search_bodies_are_one_400_naming_the_problem(client: TestClient, body: dict, named: str) -> None:
    answer = client.post("/search", json=body)
    assert answer.status_code == 400 and named in answer.json()["description"], answer.text


def test_bad_query_in_a_get_is_a_400(client: TestClient) -> None:
    answer = client.get("/search", params={"query": "{not json"})
    assert answer.status_code == 400 and "query is not valid JSON" in answer.json()["description"]


def test_cql2_text_post_reaches_pgstac_as_cql2_json(client: TestClient) -> None:
    sent = client.post("/search", json={"filter": "eo:cloud_cover < 20 AND platform = 'sentinel-2b'",
                                        "filter-lang": "cql2-text", "collections": "a,b"}).json()["body"]
    assert sent["filter-lang"] == "cql2-json" and sent["collections"] == ["a", "b"]
    assert sent["filter"] == {"op": "and", "args": [{"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
                                                    {"op": "=", "args": [{"property": "platform"}, "sentinel-2b"]}]}
    untouched = {"filter": {"op": "=", "args": [{"property": "id"}, "x"]}, "filter-lang": "cql2-json"}
    assert client.post("/search", json=untouched).json()["body"] == untouched


def test_query_becomes_cql2_joined_to_the_filter(client: TestClient) -> None:
    sent = client.get("/search", params={"query": json.dumps({"id": {"startsWith": "a_%"}}),
                                         "filter": "eo:cloud_cover < 5"}).json()["query"]
    assert "query" not in sent and sent["filter-lang"] == "cql2-json"
    assert json.loads(sent["filter"]) == {"op": "and", "args": [
        {"op": "<", "args": [{"property": "eo:cloud_cover"}, 5]},
        {"op": "like", "args": [{"property": "id"}, "a\\_\\%%"]}]}  # the value's _ and % are literal
    assert query_to_cql2({"p": {"endsWith": "x", "contains": "y", "neq": 1}}) == {"op": "and", "args": [
        {"op": "like", "args": [{"property": "p"}, "%x"]}, {"op": "like", "args": [{"property": "p"}, "%y%"]},
        {"op": "<>", "args": [{"property": "p"}, 1]}]}


def test_transactions_answer_as_ogc_api_features_part_4(client: TestClient) -> None:
    created = client.post("/collections/c/items", json={"type": "Feature", "id": "x"})
    assert created.status_code == 201 and created.json()["links"] == []  # taken without links
    assert created.headers["content-type"].startswith("application/geo+json")
    for method in ("PUT", "PATCH", "DELETE"):
        answer = client.request(method, "/collections/c/items/x", json={"type": "Feature", "id": "x"})
        assert answer.status_code == 204 and answer.content == b""
    assert client.delete("/collections/c/items/missing").status_code == 404  # a missing item stays 404


def test_queryables_of_the_properties_present() -> None:
    records = [{"properties": {"eo:cloud_cover": 0, "platform": "s2", "instruments": ["msi"], "datetime": None,
                               "created": "2024-01-02T03:04:05Z", "processing:software": {"geovigie": "1"},
                               "geovigie:cloudy": False}},
               {"properties": {"eo:cloud_cover": 12.5, "mixed": [1, "a"]}}, {"properties": {}}, {}]
    found = queryable_definitions(records)
    assert found["eo:cloud_cover"]["type"] == "number"  # never "integer": 12.5 would be read as 12
    assert found["created"] == {"title": "created", "type": "string", "format": "date-time"}
    assert found["instruments"]["items"] == {"type": "string"} and found["mixed"] == {"title": "mixed",
                                                                                      "type": "array"}
    assert found["geovigie:cloudy"]["type"] == "boolean" and found["platform"]["type"] == "string"
    assert "processing:software" not in found and "datetime" not in found  # an object, a null
    assert queryable_definitions([]) == {}
