"""The end-to-end demo on the real sample data: a short script over the workflows.

This module sits at the entry layer with the CLI: it only calls `geovigie.workflows`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from geovigie.settings import Settings
from geovigie.terminal import note, print_table, section, stderr_console

ADMIN_EXPRESS_EDITION = (datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 12, 31, 23, 59, 59, tzinfo=UTC))
"""The year the shipped départements describe (IGN Admin Express 2018, INSEE COG 2018: data/admin-express)."""


@dataclass
class DemoReport:
    """What the demo published, for printing and for tests."""

    layers: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def run_demo(settings: Settings, console: Console | None = None, client: Any = None) -> DemoReport:
    """Run the whole demo into `settings.data_dir` and return what was published.

    Layers go into the STAC API's database when the backend is pgstac (`tiles.stac_backend`), with the static
    catalog under `settings.results_dir` as its export; a private PostgreSQL the demo started is stopped at the end.
    """
    from geovigie.tiles import stop_results_database

    try:
        return _run_demo(settings, console or stderr_console(), client)
    finally:
        stop_results_database(settings)


def _run_demo(settings: Settings, console: Console, client: Any) -> DemoReport:
    from geovigie import workflows
    from geovigie.catalog.samples import GERS, MUENSTER, SLOVENIA, build_sample_catalog
    from geovigie.catalog.stac import DEFAULT_MAX_CLOUD, CatalogClient, cloud_skip_reason
    from geovigie.inference import dask_client
    from geovigie.service import stac_api_url
    from geovigie.tiles import index_inputs, results_database

    started = time.perf_counter()
    report = DemoReport()
    database = results_database(settings)
    if database is not None:
        console.print(f"publishing into the STAC API database: {database.location}")

    def record(*layers: workflows.PublishedLayer) -> None:
        report.layers += [{"id": layer.id, "kind": layer.kind, "detail": layer.detail} for layer in layers]

    section(console, "1/5 catalog and base map")
    build_sample_catalog(settings.sample_data_path(), settings.catalog_dir)
    indexed = index_inputs(settings)  # the input imagery goes into the STAC API beside the layers
    catalog = CatalogClient.open(settings.catalog_dir)
    collections = ", ".join(catalog.collection_ids())
    console.print(f"local STAC catalog: {settings.catalog_dir / 'catalog.json'} ({collections})"
                  + (f"; {indexed} items in the STAC API" if indexed else ""))
    samples = settings.sample_data_path()
    record(workflows.boundaries(settings, samples / "admin-express" / "departements_simplified_1km.geojson",
                                layer_id="base-departements", title="Départements", code_field="code",
                                name_field="nom", edition=ADMIN_EXPRESS_EDITION))
    record(workflows.boundaries(settings, samples / "s2-l2a-theia-gers" / "COMMUNE_32xxx.geojson",
                                layer_id="base-communes-gers", title="Communes (Gers, 19 around Aignan)",
                                code_field="INSEE_COM", name_field="NOM_COM"))

    section(console, "2/5 vegetation (NDVI, Gers, clouds masked)")
    for item in catalog.search(collections=[GERS]).item_list():
        record(workflows.ndvi(item, settings))

    section(console, "3/5 land cover (baseline bundle, Slovenia scenes)")
    with (dask_client(settings) if client is None else contextlib.nullcontext(client)) as active:
        for item in catalog.search(collections=[SLOVENIA]).item_list():
            if (why := cloud_skip_reason(item, DEFAULT_MAX_CLOUD)) is not None:  # the batch's rule too
                console.print(f"skipped {item.id}: {why}")
                continue
            record(workflows.landcover(item, settings, client=active))

    section(console, "4/5 surface temperature (Landsat, Münster)")
    for item in catalog.search(collections=[MUENSTER]).item_list():
        record(workflows.surface_temperature(item, settings))

    section(console, "5/5 territorial diagnostics")
    run_diagnostics(settings, samples, record, console)

    report.seconds = time.perf_counter() - started
    print_table(console, ("layer", "kind", "figures"), [(x["id"], x["kind"], x["detail"]) for x in report.layers],
                title=f"published layers ({report.seconds:.0f} s)")
    stac = stac_api_url(settings)
    export = Path(settings.results_dir).resolve() / "catalog.json"
    if stac:
        console.print(f"STAC API (while `geovigie serve` runs): {stac}   static export: {export}")
    else:
        console.print(f"results catalog: {export} (static only: no STAC API, see the notice above)")
    return report


def run_diagnostics(settings: Settings, samples: Path, record: Any, console: Console) -> None:
    """The territorial diagnostics on the shipped data, then the report."""
    import warnings
    from datetime import date

    import geopandas as gpd

    from geovigie import workflows
    from geovigie.catalog.samples import MUENSTER
    from geovigie.catalog.stac import CatalogClient
    from geovigie.diagnostics import read_zones
    from geovigie.errors import DiagnosticsWarning

    scratch = settings.data_dir / "demo-inputs"
    timings: dict[str, float] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        communes = read_zones(samples / "s2-l2a-theia-gers" / "COMMUNE_32xxx.geojson")
        vegetation = workflows.vegetation_by_zone("ndvi-gers-20181023", settings, zones=communes, place="gers")
        timings["vegetation per commune"] = vegetation.seconds
        record(*vegetation.layers)

        before, after, patches = workflows.odeon_mosaics(samples, scratch)
        land_take = workflows.zan(before, after, settings, place="gers-odeon", zones=gpd.read_file(patches),
                                  start=date(2016, 7, 1), end=date(2019, 7, 1), mapping="odeon-naf",
                                  reference=samples / "odeon-change-labels-2016-2019" /
                                  "reference_consumption_ILLUSTRATIVE.csv")
        timings["ZAN"] = land_take.seconds
        record(*land_take.layers)

        dsm, dtm, standin = workflows.lidar_models(samples, scratch)
        dumps = workflows.dump_sites(standin, settings, watch="montpellier-lidar", pass_date=date(2024, 5, 1),
                                     candidate=True, threshold=0.2, dsm=dsm, dtm=dtm,
                                     source_note="Stand-in layer: height above ground from IGN LiDAR HD "
                                                 "(buildings, trees), to show areas and volumes on real elevation.")
        timings["dump sites"] = dumps.seconds
        record(dumps.layer)

        urban = gpd.read_file(samples / "landsat-lst-muenster-extra" / "muenster_urban_core.geojson")
        for item in CatalogClient.open(settings.catalog_dir).search(collections=[MUENSTER]).item_list():
            heat = workflows.heat_islands(item, settings, urban=urban, place="muenster",
                                          rural_mask=samples / "landsat-lst-muenster-extra" /
                                          "classification_rf_derived.tif", rural_classes=[3, 4])
            timings[f"heat islands {item.id[17:25]}"] = heat.seconds
            record(*heat.layers)
    for warning in caught:
        if issubclass(warning.category, DiagnosticsWarning):
            note(console, "warning", str(warning.message))
    page = workflows.report(settings, title="Diagnostic territorial — démonstration",
                            territory="Gers (19 communes, odeon patches), Montpellier (LiDAR), Münster (Landsat)",
                            period="2016–2025")
    console.print("step times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    console.print(f"report: {page}")
