"""Checks on STAC API search requests before they reach stac-fastapi and the database.

Every malformed request is a 400 naming the problem (a bbox that is not finite or not on the globe, a paging
token that is not one, a body that is not a JSON object, a filter calling an unknown function, `"fields": null`),
and the costly ones are bounded: geometry vertices, `limit` (lowered to its maximum) and the size of a search body.
Parsing and counting run in a worker thread, so one heavy request never holds the event loop.

Requests are also put in the form pgstac reads: a CQL2-text filter in a POST body (what pystac-client sends) is
converted to CQL2-JSON with the `cql2` library, a `query` (Query extension, every operator of the spec) becomes
the equivalent CQL2 filter, and a POST `collections` given as one string becomes a list.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_SEARCH_BODY_BYTES = 1 * 2**20
"""Largest search body (a 20,000-vertex polygon is about 0.5 MB)."""
MAX_ITEM_BODY_BYTES = 16 * 2**20
"""Largest item a Transaction request may send."""
MAX_VERTICES = 20_000
"""Most vertices of an `intersects` geometry or of the geometries in a filter."""
MAX_LIMIT = 1000
"""Most items per page (a larger `limit` is answered with this many, as the STAC API spec asks)."""
MAX_FILTER_CHARS = 100_000
TOKEN = re.compile(r"^(next|prev):[A-Za-z0-9_.:\-]{1,512}$")
CQL2_OPERATORS = frozenset({
    "and", "or", "not", "=", "<>", "<", "<=", ">", ">=", "like", "between", "in", "isnull", "casei", "accenti",
    "s_intersects", "s_equals", "s_disjoint", "s_touches", "s_within", "s_overlaps", "s_crosses", "s_contains",
    "t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedby", "t_finishes",
    "t_intersects", "t_meets", "t_metby", "t_overlappedby", "t_overlaps", "t_startedby", "t_starts",
    "a_equals", "a_contains", "a_containedby", "a_overlaps", "+", "-", "*", "/", "%", "div", "^",
})
"""CQL2 operators pgstac evaluates; any other `op` is a function call the database must not be asked to run."""
SEARCH_PATH = re.compile(r"^/(search|collections/[^/]+/items)$")
ITEMS_PATH = re.compile(r"^/collections/[^/]+/items$")
ITEM_PATH = re.compile(r"^/collections/[^/]+/items/[^/]+$")


class BadSearchError(ValueError):
    """A STAC search request that cannot be answered as sent."""


def _short(value: object, size: int = 60) -> str:
    text = str(value)
    return text if len(text) <= size else text[:size] + "…"


def check_bbox(values: list[Any]) -> None:
    """4 or 6 finite numbers, longitudes in [-180, 180], latitudes in [-90, 90], south ≤ north."""
    if not isinstance(values, list) or len(values) not in (4, 6):
        raise BadSearchError("bbox must have 4 (or 6) numbers: west,south,east,north")
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise BadSearchError(f"bbox must hold numbers (got {_short(values)})") from err
    if not all(math.isfinite(v) for v in numbers):
        raise BadSearchError("bbox must hold finite numbers (no nan or inf)")
    half = len(numbers) // 2
    west, south, east, north = numbers[0], numbers[1], numbers[half], numbers[half + 1]
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise BadSearchError("bbox must lie within -180,-90,180,90 with south <= north")


def count_vertices(geometry: Any, budget: int = MAX_VERTICES) -> int:
    """Positions in a GeoJSON geometry (or nested coordinate lists); raises once over `budget`."""
    count = 0
    stack = [geometry]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.get("geometries", []) if node.get("type") == "GeometryCollection"
                         else [node.get("coordinates")])
        elif isinstance(node, list):
            if node and all(isinstance(v, int | float) for v in node):
                count += 1
                if count > budget:
                    raise BadSearchError(f"geometry has more than {budget} vertices: simplify it")
            else:
                stack.extend(node)
    return count


def check_geometry(geometry: Any) -> None:
    """A GeoJSON geometry object of at most `MAX_VERTICES` finite positions."""
    if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
        raise BadSearchError("intersects must be a GeoJSON geometry object")
    count_vertices(geometry)


def check_filter(expression: Any, lang: str | None) -> None:
    """A CQL2 filter (text or JSON) that parses and calls no function pgstac would hand to the database."""
    import cql2

    try:
        if isinstance(expression, str):
            if len(expression) > MAX_FILTER_CHARS:
                raise BadSearchError(f"filter longer than {MAX_FILTER_CHARS} characters")
            parsed = (cql2.parse_json(expression) if (lang or "").endswith("json") or expression.lstrip()[:1] == "{"
                      else cql2.parse_text(expression))
            tree = parsed.to_json()
        else:
            tree = expression
            cql2.parse_json(json.dumps(tree))
    except (cql2.ParseError, ValueError, TypeError) as err:
        if isinstance(err, BadSearchError):
            raise
        first = str(err).strip().splitlines()
        raise BadSearchError(f"filter is not valid CQL2 ({_short(first[-1] if first else err, 120)})") from err
    vertices = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "op" in node:
                op = str(node["op"]).lower()
                if op not in CQL2_OPERATORS:
                    raise BadSearchError(f"filter calls an unknown function {_short(node['op'], 40)!r}")
            if "function" in node:
                raise BadSearchError("filter calls a function: none is supported")
            if "coordinates" in node or node.get("type") == "GeometryCollection":
                vertices += count_vertices(node, MAX_VERTICES - vertices)
                continue
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


QUERY_OPERATORS = {"eq": "=", "neq": "<>", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
"""Query extension comparison operators and their CQL2 form (`startsWith`, `endsWith`, `contains` are `like`,
`in` is `in`)."""


def _like_literal(value: Any, operator: str) -> str:
    if not isinstance(value, str):
        raise BadSearchError(f"query operator {operator} takes a string (got {_short(value)})")
    return re.sub(r"([\\%_])", r"\\\1", value)


def query_to_cql2(query: Any) -> dict[str, Any]:
    """The CQL2-JSON filter equivalent to a Query extension object (`{"eo:cloud_cover": {"lt": 20}}`).

    Raises:
        BadSearchError: not an object of properties to objects of known operators.
    """
    if not isinstance(query, dict) or not query:
        raise BadSearchError("query must be an object of properties, e.g. {\"eo:cloud_cover\": {\"lt\": 20}}")
    args: list[dict[str, Any]] = []
    for name, operations in query.items():
        prop = {"property": str(name)}
        if not isinstance(operations, dict) or not operations:
            raise BadSearchError(f"query on {_short(name, 40)!r} must be an object of operators, e.g. {{\"eq\": 1}}")
        for operator, value in operations.items():
            if operator in QUERY_OPERATORS:
                args.append({"op": QUERY_OPERATORS[operator], "args": [prop, value]})
            elif operator == "startsWith":
                args.append({"op": "like", "args": [prop, _like_literal(value, operator) + "%"]})
            elif operator == "endsWith":
                args.append({"op": "like", "args": [prop, "%" + _like_literal(value, operator)]})
            elif operator == "contains":
                args.append({"op": "like", "args": [prop, "%" + _like_literal(value, operator) + "%"]})
            elif operator == "in":
                if not isinstance(value, list) or not value:
                    raise BadSearchError(f"query operator in takes a non-empty list (got {_short(value)})")
                args.append({"op": "in", "args": [prop, value]})
            else:
                raise BadSearchError(f"unknown query operator {_short(operator, 40)!r}; known: "
                                     f"{', '.join([*QUERY_OPERATORS, 'startsWith', 'endsWith', 'contains', 'in'])}")
    return args[0] if len(args) == 1 else {"op": "and", "args": args}


def filter_as_json(expression: Any, lang: str | None) -> Any:
    """A filter as CQL2-JSON (a CQL2-text string is parsed with `cql2`; JSON text is loaded)."""
    import cql2

    if not isinstance(expression, str):
        return expression
    if (lang or "").endswith("json") or expression.lstrip()[:1] == "{":
        return json.loads(expression)
    return cql2.parse_text(expression).to_json()


def normalize_search(params: dict[str, Any], *, from_query: bool) -> bool:
    """Put a checked search (`check_search` first) in the form pgstac reads: `query` becomes a CQL2 filter (joined
    to a `filter` with `and`), a POST filter in CQL2 text becomes CQL2-JSON, a POST `collections` / `ids` string a
    list. GET filters stay text where no `query` is joined to them (stac-fastapi converts those itself).

    Returns:
        whether `params` was changed.

    Raises:
        BadSearchError: a `query` that is not one, `fields` given as null or not an object in a POST body.
    """
    changed = False
    lang_key = "filter-lang" if "filter-lang" in params or "filter_lang" not in params else "filter_lang"
    if params.get("query") not in (None, ""):
        query = params.pop("query")
        if isinstance(query, str):
            try:
                query = json.loads(query)
            except ValueError as err:
                raise BadSearchError(f"query is not valid JSON ({_short(err, 80)})") from err
        condition = query_to_cql2(query)
        if params.get("filter") not in (None, ""):
            condition = {"op": "and", "args": [filter_as_json(params["filter"], params.get(lang_key)), condition]}
        params.pop("filter_lang", None)
        params["filter"] = json.dumps(condition) if from_query else condition
        params["filter-lang"] = "cql2-json"
        changed = True
    elif "query" in params:
        params.pop("query")
        changed = True
    if from_query:
        return changed
    if isinstance(params.get("filter"), str):
        params["filter"] = filter_as_json(params["filter"], params.get(lang_key))
        params.pop("filter_lang", None)
        params["filter-lang"] = "cql2-json"
        changed = True
    for key in ("collections", "ids"):
        if isinstance(params.get(key), str):
            params[key] = [value for value in params[key].split(",") if value]
            changed = True
    if "fields" in params and not isinstance(params["fields"], dict):
        raise BadSearchError(f"fields must be an object with include and/or exclude lists (got "
                             f"{_short(json.dumps(params['fields']))})")
    return changed


def check_limit(value: Any) -> int:
    """A page size: an integer of at least 1; returns it clamped to `MAX_LIMIT` (the STAC API spec: a server
    answers a larger limit with its maximum, not an error)."""
    try:
        limit = int(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise BadSearchError(f"limit must be an integer (got {_short(value)})") from err
    if (isinstance(value, float) and value != limit) or limit < 1:
        raise BadSearchError(f"limit must be a whole number of at least 1 (got {_short(value)})")
    return min(limit, MAX_LIMIT)


def check_token(value: Any) -> None:
    """A paging token as the API hands them out (`next:...` / `prev:...`)."""
    if not isinstance(value, str) or not TOKEN.match(value):
        raise BadSearchError("invalid paging token: use the `next`/`prev` links the API returns")


def check_search(params: dict[str, Any], *, from_query: bool) -> bool:
    """Check a search's parameters (a POST body, or GET query parameters when `from_query`); a `limit` over
    `MAX_LIMIT` is lowered to it in `params`.

    Returns:
        whether `params` was changed.

    Raises:
        BadSearchError: the first problem found.
    """
    changed = False
    if "bbox" in params and params["bbox"] not in (None, ""):
        bbox = params["bbox"]
        check_bbox(bbox.split(",") if from_query and isinstance(bbox, str) else bbox)
    if "intersects" in params and params["intersects"] not in (None, ""):
        geometry = params["intersects"]
        if from_query:
            try:
                geometry = json.loads(geometry)
            except ValueError as err:
                raise BadSearchError("intersects is not valid JSON") from err
        check_geometry(geometry)
    if params.get("limit") not in (None, ""):
        limit = check_limit(params["limit"])
        if str(limit) != str(params["limit"]):
            params["limit"], changed = limit, True
    if params.get("token") not in (None, ""):
        check_token(params["token"])
    if params.get("filter") not in (None, ""):
        check_filter(params["filter"], params.get("filter-lang") or params.get("filter_lang"))
    return normalize_search(params, from_query=from_query) or changed


class StacRequestGuard:
    """ASGI middleware in front of the STAC API: search requests are checked (`check_search`) and answered 400
    when malformed; a search body over `MAX_SEARCH_BODY_BYTES` is answered 413 without being read whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].removeprefix(scope.get("root_path", "")) if scope["type"] == "http" else ""
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH", "DELETE") and (
                ITEM_PATH.match(path) or (scope["method"] == "POST" and ITEMS_PATH.match(path))):
            await _transaction(self.app, scope, receive, send)
            return
        if scope["type"] != "http" or not SEARCH_PATH.match(path):
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] == "GET":
                pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
                query = dict(pairs)
                if await run_in_threadpool(check_search, query, from_query=True):
                    rewritten = ("limit", "query", "filter", "filter-lang", "filter_lang")
                    kept = [(key, value) for key, value in pairs if key not in rewritten]
                    kept += [(key, query[key]) for key in rewritten if query.get(key) not in (None, "")]
                    scope = {**scope, "query_string": urlencode(kept).encode()}
            elif scope["method"] == "POST":
                body = await run_in_threadpool(_check_body, await _read_body(receive))
                receive = _replay(body, receive)
        except BadSearchError as err:
            await JSONResponse({"code": "BadRequest", "description": str(err)}, status_code=400)(scope, receive, send)
            return
        except _TooLargeError:
            await JSONResponse({"code": "PayloadTooLarge", "description": "search body too large (limit "
                                f"{MAX_SEARCH_BODY_BYTES} bytes): simplify the geometry"}, status_code=413)(
                scope, receive, send)
            return
        await self.app(scope, receive, send)


class _TooLargeError(Exception):
    pass


def _geojson(send: Send) -> Send:
    """`send` with a created item's JSON typed `application/geo+json` (stac-fastapi says `application/json`)."""
    async def send_geojson(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 201:
            message = {**message, "headers": [(k, b"application/geo+json" if k.lower() == b"content-type" and
                                               v.startswith(b"application/json") else v)
                                              for k, v in message.get("headers", [])]}
        await send(message)

    return send_geojson


async def _transaction(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """A Transaction extension request as OGC API Features part 4 has them: an item sent without `links` is taken
    with none (the API writes its own), a successful PUT, PATCH or DELETE of an item answers 204 No Content."""
    if scope["method"] in ("POST", "PUT"):
        try:
            body = await _read_body(receive, MAX_ITEM_BODY_BYTES)
        except _TooLargeError:
            await JSONResponse({"code": "PayloadTooLarge", "description": "item body too large (limit "
                                f"{MAX_ITEM_BODY_BYTES} bytes)"}, status_code=413)(scope, receive, send)
            return
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None  # stac-fastapi names the problem
        if isinstance(payload, dict) and payload.get("type") == "Feature" and "links" not in payload:
            body = json.dumps({**payload, "links": []}).encode()
        receive = _replay(body, receive)
    if scope["method"] == "POST":
        await app(scope, receive, _geojson(send))
        return
    no_content = False

    async def send_no_content(message: Message) -> None:
        nonlocal no_content
        if message["type"] == "http.response.start" and message["status"] == 200:
            no_content = True
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"content-length",
                                                                                           b"content-type")]
            await send({**message, "status": 204, "headers": headers})
        elif message["type"] == "http.response.body" and no_content:
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await send(message)

    await app(scope, receive, send_no_content)


async def _read_body(receive: Receive, limit: int = MAX_SEARCH_BODY_BYTES) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _TooLargeError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _check_body(body: bytes) -> bytes:
    """The body checked (`check_search`), as sent or with its limit lowered."""
    try:
        payload = json.loads(body)
    except ValueError as err:
        raise BadSearchError(f"search body is not valid JSON ({_short(err, 80)})") from err
    if not isinstance(payload, dict):
        raise BadSearchError(f"search body must be a JSON object (got {type(payload).__name__})")
    return json.dumps(payload).encode() if check_search(payload, from_query=False) else body


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then whatever the client sends next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
