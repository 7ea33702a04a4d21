"""The end-to-end demo on the real sample data: catalog -> NDVI -> land cover -> temperature -> publish.

This module sits at the entry layer with the CLI: it only wires the subpackages together.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from geovigie.settings import Settings


@dataclass
class DemoReport:
    """What the demo published, for printing and for tests."""

    layers: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def run_demo(settings: Settings, console: Console | None = None, client: Any = None) -> DemoReport:
    """Run the whole demo into `settings.data_dir` and return what was published."""
    from geovigie.catalog import CatalogClient, build_sample_catalog
    from geovigie.catalog._build import GERS, MUENSTER, SLOVENIA
    from geovigie.diagnostics import ndvi_layer, temperature_layer
    from geovigie.inference import predict
    from geovigie.inference._cluster import dask_client
    from geovigie.tiles import LayerClass, LayerSpec, Provenance, layer_folder, publish_layer

    console = console or Console(stderr=True)
    started = time.perf_counter()
    report = DemoReport()
    results = settings.results_dir

    console.rule("1/4 catalog")
    build_sample_catalog(settings.sample_data_dir, settings.catalog_dir)
    catalog = CatalogClient.open(settings.catalog_dir)
    collections = ", ".join(catalog.collection_ids())
    console.print(f"local STAC catalog: {settings.catalog_dir / 'catalog.json'} ({collections})")

    console.rule("2/4 vegetation (NDVI, Gers, clouds masked)")
    for item in catalog.search(collections=[GERS]).item_list():
        layer_id = f"ndvi-gers-{item.datetime:%Y%m%d}"
        target = layer_folder(results, layer_id) / "data.tif"
        summary = ndvi_layer([item], target, crs="EPSG:2154", resolution=10)
        publish_layer(results, target, LayerSpec(
            layer_id, f"NDVI Gers {item.datetime:%Y-%m-%d}", "continuous", rescale=(0.0, 0.9),
            colormap_name="rdylgn", unit="NDVI",
            description=f"Mean NDVI of clear pixels (Theia CLM and EDG masks); {summary.masked_fraction:.2%} masked.",
        ), Provenance(inputs=[item.get_self_href() or item.id], datetime=item.datetime,
                      lineage="NDVI = (B08 - B04) / (B08 + B04) on Theia FRE reflectance, EPSG:2154 10 m grid, "
                              "pixels with CLM or EDG != 0 masked"))
        report.layers.append({"id": layer_id, "kind": "NDVI", "detail": f"mean {summary.mean_ndvi:.3f}, "
                              f"{summary.masked_fraction:.2%} masked (cloud, shadow, outside the scene)"})

    console.rule("3/4 land cover (baseline bundle, Slovenia scenes)")
    predictions = settings.data_dir / "predictions"
    with (dask_client(settings) if client is None else contextlib.nullcontext(client)) as active:
        for item in catalog.search(collections=[SLOVENIA]).item_list():
            if item.properties.get("geovigie:cloudy"):
                console.print(f"skipped {item.id}: cloudy, and no cloud mask ships for it")
                continue
            result = predict(item.get_self_href(), predictions, settings, client=active)
            card = result.bundle.card
            layer_id = f"landcover-{item.id}"
            publish_layer(results, result.classes_path, LayerSpec(
                layer_id, f"Land cover {item.id.removeprefix('slovenia-')}", "classes",
                classes=[LayerClass(c.value, c.name, c.color) for c in card.classes],
                description=f"Predicted by {result.bundle.id}; see the bundle card for its (small) training data.",
            ), Provenance(inputs=[item.get_self_href() or item.id], bundle_id=result.bundle.id,
                          bundle_card=str((result.bundle.path / "card.json").resolve()),
                          start_datetime=item.common_metadata.start_datetime,
                          end_datetime=item.common_metadata.end_datetime,
                          lineage=f"tiled inference, tile {settings.tile_size} px, overlap {settings.overlap} px, "
                                  "linear-ramp logit blending",
                          extra_assets={"probabilities": (result.probabilities_path,
                                                          "Class probabilities (value / 250)")}))
            report.layers.append({"id": layer_id, "kind": "land cover",
                                  "detail": f"{result.tiles} tiles, {result.seconds:.1f} s"
                                            + (" (up to date)" if result.skipped else "")})

    console.rule("4/4 surface temperature (Landsat, Münster)")
    for item in catalog.search(collections=[MUENSTER]).item_list():
        day = item.common_metadata.start_datetime
        layer_id = f"lst-muenster-{day:%Y%m%d}"
        target = layer_folder(results, layer_id) / "data.tif"
        stats = temperature_layer(item, target)
        publish_layer(results, target, LayerSpec(
            layer_id, f"Surface temperature Münster {day:%Y-%m-%d}", "continuous",
            rescale=(round(stats.p02, 1), round(stats.p98, 1)), colormap_name="inferno", unit="celsius",
        ), Provenance(inputs=[item.get_self_href() or item.id], start_datetime=day,
                      end_datetime=item.common_metadata.end_datetime,
                      lineage="Landsat C2 L2 ST_B10 converted to °C by the data provider; copied as COG"))
        report.layers.append({"id": layer_id, "kind": "temperature",
                              "detail": f"{stats.p02:.1f}–{stats.p98:.1f} °C (p2–p98), mean {stats.mean:.1f} °C"})

    report.seconds = time.perf_counter() - started
    table = Table(title=f"published layers ({report.seconds:.0f} s)")
    for column in ("layer", "kind", "figures"):
        table.add_column(column)
    for layer in report.layers:
        table.add_row(layer["id"], layer["kind"], layer["detail"])
    console.print(table)
    console.print(f"results catalog: {Path(results).resolve() / 'catalog.json'}")
    return report
