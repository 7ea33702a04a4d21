"""Prometheus metrics of the service: requests, tile latency, tile cache hits, load shedding, jobs by state
(`/metrics`).

Each app gets its own registry (tests build many apps). With several worker processes (`geovigie serve
--workers N`) and `PROMETHEUS_MULTIPROC_DIR` set, `/metrics` adds up every worker's samples.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator

import attrs
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("geovigie.service.access")
TILE_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
AREAS = ("layers", "tiles", "api", "assets", "stac", "static", "healthz", "readyz", "metrics", "jobs", "features",
         "sites", "colorMaps", "docs", "openapi.json")


class JobsByState(Collector):
    """`geovigie_jobs{state=...}`: jobs in each state, counted in the jobs table when scraped (one GROUP BY on an
    indexed column); nothing is exported when the database cannot be read (the scrape itself still answers)."""

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self.count = count

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.count()
        except Exception as err:  # noqa: BLE001 - DatabaseError, psycopg errors: the other metrics still go out
            logging.getLogger(__name__).warning("jobs by state not counted: %s", err)
            return
        gauge = GaugeMetricFamily("geovigie_jobs", "Jobs by state (the jobs table, at scrape time)",
                                  labels=["state"])
        for state, number in counts.items():
            gauge.add_metric([state], number)
        yield gauge


@attrs.define
class Metrics:
    """The service's metrics in one registry; `jobs` counts jobs by state at scrape time (None: no jobs)."""

    jobs: Callable[[], dict[str, int]] | None = None
    registry: CollectorRegistry = attrs.field(factory=lambda: CollectorRegistry(auto_describe=True))
    requests: Counter = attrs.field(init=False)
    latency: Histogram = attrs.field(init=False)
    tile_latency: Histogram = attrs.field(init=False)
    tile_cache: Counter = attrs.field(init=False)
    shed: Counter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.requests = Counter("geovigie_requests", "HTTP requests by area, method and status class",
                                ["area", "method", "status"], registry=self.registry)
        self.latency = Histogram("geovigie_request_seconds", "HTTP request latency by area", ["area"],
                                 registry=self.registry)
        self.tile_latency = Histogram("geovigie_tile_seconds", "Tile latency (cache hit or rendered)", ["cache"],
                                      buckets=TILE_BUCKETS, registry=self.registry)
        self.tile_cache = Counter("geovigie_tile_cache", "Tile cache lookups by result (hit, miss)", ["result"],
                                  registry=self.registry)
        self.shed = Counter("geovigie_shed", "Requests answered 503 because too many tiles were rendering",
                            registry=self.registry)
        if self.jobs is not None:
            self.registry.register(JobsByState(self.jobs))

    def render(self) -> Response:
        """The `/metrics` response (every worker's samples in multiprocess mode)."""
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            if self.jobs is not None:  # read from the database, not the worker files: counted once
                registry.register(JobsByState(self.jobs))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def area_of(path: str) -> str:
    """A bounded label for a path: its first segment when known (`tiles` for tile requests), else `other`."""
    parts = path.strip("/").split("/")
    if len(parts) > 2 and parts[0] == "layers" and parts[2] == "tiles":
        return "tiles"
    return parts[0] if parts[0] in AREAS else ("root" if parts[0] == "" else "other")


class RequestMetrics:
    """Count requests, time them by area, and log one access line each (ASGI middleware)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500
        area = area_of(scope["path"])

        async def timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            elapsed = time.perf_counter() - start
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(area, method, f"{status // 100}xx").inc()
            self.metrics.latency.labels(area).observe(elapsed)
            access.info("%s %s %d %.1f ms", scope["method"], scope["path"][:200], status, elapsed * 1000)


def metrics_endpoint(metrics: Metrics) -> object:
    """The `/metrics` endpoint function."""

    def endpoint(request: Request) -> Response:
        return metrics.render()

    return endpoint
