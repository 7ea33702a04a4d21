"""`geovigie diagnose ...` and `geovigie report`: the territorial diagnostics from the command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from geovigie.errors import InvalidInputError

diagnose_app = typer.Typer(help="Territorial diagnostics: per-zone figures, ZAN, dump sites, heat islands.",
                           no_args_is_help=True)
err = Console(stderr=True, markup=False, highlight=False)

ZonesOption = Annotated[Path, typer.Option("--zones", help="Zones file (GeoJSON / GeoPackage) with an id and a name.")]


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise InvalidInputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from error


def _zones(path: Path, departement: str | None = None):  # noqa: ANN202 - a GeoDataFrame
    from geovigie.diagnostics import read_zones

    return read_zones(path, departement=departement)


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001, C901
    """Add `diagnose` and `report` to the main app (errors go through the app's one error boundary)."""
    app.add_typer(diagnose_app, name="diagnose")

    @diagnose_app.command("vegetation")
    @friendly_errors
    def vegetation(layer: Annotated[str, typer.Argument(help="Id of a published NDVI layer.")], zones: ZonesOption,
                   place: Annotated[str, typer.Option(help="Name used in the layer id.")] = "zones",
                   departement: Annotated[str | None, typer.Option(help="Keep zones of this département.")] = None
                   ) -> None:
        """Per-zone NDVI figures and vegetation shares of a published NDVI layer."""
        from geovigie.workflows import vegetation_by_zone

        result = vegetation_by_zone(layer, settings_factory(), zones=_zones(zones, departement), place=place)
        err.print(result.table.to_string(index=False, max_rows=40))
        err.print(f"layer: {result.layers[0].id}")

    @diagnose_app.command("zan")
    @friendly_errors
    def zan(before: Annotated[Path, typer.Option(help="Class map at the first date.")],
            after: Annotated[Path, typer.Option(help="Class map at the second date, same grid.")],
            start: Annotated[str, typer.Option(help="First date, YYYY-MM-DD.")],
            end: Annotated[str, typer.Option(help="Second date, YYYY-MM-DD.")],
            zones: ZonesOption,
            mapping: Annotated[str, typer.Option(help="Shipped mapping name or a TOML file.")] = "odeon-naf",
            reference: Annotated[Path | None, typer.Option(help="2011-2021 consumption CSV per zone.")] = None,
            place: Annotated[str, typer.Option(help="Name used in the layer ids.")] = "zones",
            mmu_building: Annotated[float, typer.Option(help="MMU of buildings, m².")] = 200.0,
            mmu_other: Annotated[float, typer.Option(help="MMU of other features, m².")] = 500.0) -> None:
        """Hectares artificialised and renaturalised per zone between two dates, with and without MMU."""
        from geovigie.workflows import zan as run

        result = run(before, after, settings_factory(), place=place, zones=_zones(zones),
                     start=_day(start, "--start"), end=_day(end, "--end"), mapping=mapping, reference=reference,
                     mmu_building_m2=mmu_building, mmu_other_m2=mmu_other)
        columns = [c for c in ("zone_id", "zone_name", "artificialised_ha", "artificialised_ha_no_mmu",
                               "renaturalised_ha", "net_ha", "net_ha_per_year", "measured_vs_target", "illustrative")
                   if c in result.table.columns]
        err.print(result.table[columns].to_string(index=False, max_rows=40))
        err.print("layers: " + ", ".join(layer.id for layer in result.layers))

    @diagnose_app.command("dumps")
    @friendly_errors
    def dumps(layer: Annotated[Path, typer.Argument(help="Probability COG (value / 250) or class COG.")],
              watch: Annotated[str, typer.Option(help="Name of the area followed pass after pass.")],
              pass_date: Annotated[str, typer.Option("--date", help="Date of the imagery, YYYY-MM-DD.")],
              validated: Annotated[bool, typer.Option(help="The layer is a validated dump model's output.")] = False,
              threshold: Annotated[float, typer.Option(help="Probability threshold.")] = 0.5,
              class_value: Annotated[int | None, typer.Option(help="Class of dump sites in a class layer.")] = None,
              min_area: Annotated[float, typer.Option(help="Smallest site, m².")] = 20.0,
              dsm: Annotated[Path | None, typer.Option(help="Surface model for volumes.")] = None,
              dtm: Annotated[Path | None, typer.Option(help="Terrain model for volumes.")] = None,
              zones: Annotated[Path | None, typer.Option(help="Communes for each site's INSEE code.")] = None
              ) -> None:
        """Dump sites of a pass: polygons, areas, volumes, communes, status against earlier passes, exports."""
        from geovigie.workflows import dump_sites

        result = dump_sites(layer, settings_factory(), watch=watch, pass_date=_day(pass_date, "--date"),
                            candidate=not validated, threshold=threshold, class_value=class_value,
                            min_area_m2=min_area, dsm=dsm, dtm=dtm, zones=_zones(zones) if zones else None)
        err.print(f"{result.layer.detail if result.layer else ''}; {len(result.alerts)} alerts")
        for name, path in result.files.items():
            err.print(f"{name}: {path}")

    @diagnose_app.command("heat")
    @friendly_errors
    def heat(item: Annotated[Path, typer.Argument(help="STAC item JSON of a land surface temperature scene.")],
             urban: Annotated[Path, typer.Option(help="Urban zone polygon(s).")],
             place: Annotated[str, typer.Option(help="Name used in the layer ids.")],
             rural_mask: Annotated[Path | None, typer.Option(help="Land-cover raster for the rural filter.")] = None,
             rural_classes: Annotated[str | None, typer.Option(help="Rural vegetation classes, e.g. 3,4.")] = None,
             zones: Annotated[Path | None, typer.Option(help="Zones (default: a 1 km grid).")] = None) -> None:
        """Heat-island intensity above a rural reference, hot spots and per-zone figures."""
        import geopandas as gpd

        from geovigie.catalog import read_item
        from geovigie.workflows import heat_islands

        classes = [int(c) for c in rural_classes.split(",")] if rural_classes else None
        result = heat_islands(read_item(item), settings_factory(), urban=gpd.read_file(urban), place=place,
                              zones=_zones(zones) if zones else None, rural_mask=rural_mask, rural_classes=classes)
        for layer in result.layers:
            err.print(f"{layer.id}: {layer.detail}")

    @app.command("report")
    @friendly_errors
    def report(out: Annotated[Path | None, typer.Option(help="Report folder (default DATA_DIR/report).")] = None,
               title: Annotated[str, typer.Option(help="Page title.")] = "Diagnostic territorial") -> None:
        """Write one self-contained HTML page of every published diagnostic, with its CSV tables."""
        from geovigie.workflows import report as run

        err.print(f"report: {run(settings_factory(), out, title=title)}")
