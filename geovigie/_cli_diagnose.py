"""`geovigie diagnose ...` and `geovigie report`: the territorial diagnostics from the command line."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from geovigie._cli_help import shipped_names
from geovigie.errors import DiagnosticsWarning, InvalidInputError
from geovigie.terminal import frame_rows, listed, print_table, stderr_console

diagnose_app = typer.Typer(help="Territorial diagnostics: per-zone figures, ZAN, dump sites, heat islands.",
                           no_args_is_help=True)
err = stderr_console()
MAPPINGS = shipped_names("geovigie.diagnostics", "zan_mappings", ".toml")

ZonesOption = Annotated[Path, typer.Option("--zones", help="Zones file (GeoJSON / GeoPackage) with an id and a name.")]
ZonesCrsOption = Annotated[str | None, typer.Option(
    "--zones-crs", help="CRS of vector files that have none (a shapefile without .prj), e.g. EPSG:2154.")]
MIN_COVERAGE_HELP = ("Observed share of a zone below which its figures are null (status partial); "
                     "nothing observed: not_covered.")


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise InvalidInputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from error


def _zones(path: Path, departement: str | None = None, crs: str | None = None):  # noqa: ANN202 - a GeoDataFrame
    from geovigie.diagnostics import read_zones

    return read_zones(path, departement=departement, crs=crs)


def _finite(value: float, option: str, low: float = 0.0, high: float = float("inf")) -> float:
    if not (low <= value <= high):  # NaN fails too
        raise InvalidInputError(f"{option} {value}: must be a number in [{low:g}, {high:g}]")
    return value


def _classes(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError as error:
        raise InvalidInputError(f"--rural-classes {text!r}: give class values as integers, e.g. 3,4") from error


def _sensitive(specs: list[str] | None, crs: str | None):  # noqa: ANN202 - dict of GeoDataFrames
    """`--sensitive NAME=FILE` (repeatable; a bare FILE is named by its stem): layers to measure distances to."""
    from geovigie.diagnostics import read_vector

    layers = {}
    for spec in specs or []:
        name, sep, file = spec.partition("=")
        path = Path(file if sep else name)
        key = (name if sep else path.stem).strip().lower().replace("-", "_")
        if key in layers:
            raise InvalidInputError(f"--sensitive {spec!r}: the name {key!r} is given twice")
        layer = read_vector(path, f"sensitive layer {key!r}", crs=crs)
        if not {"name", "zone_name"} & set(layer.columns):
            raise InvalidInputError(f"--sensitive {spec}: {path} needs a 'name' (or 'zone_name') column naming each "
                                    f"feature (has {', '.join(c for c in layer.columns if c != 'geometry')})")
        layers[key] = layer
    return layers


VEGETATION_COLUMNS = ("zone_id", "zone_name", "status", "covered_fraction", "ndvi_mean", "ndvi_median",
                      "dense_vegetation_share", "sparse_vegetation_share")
ZAN_COLUMNS = ("zone_id", "zone_name", "artificialised_ha", "artificialised_ha_no_mmu", "renaturalised_ha", "net_ha",
               "net_ha_per_year", "measured_vs_target", "illustrative")
SHOWN_ROWS = 40


def _print_zones(table, columns: tuple[str, ...], csv: str) -> None:  # noqa: ANN001 - a DataFrame
    """The first zones of a figure table, units in the headers, fixed notation; the rest is in the CSV."""
    headers, rows, more = frame_rows(table, columns, SHOWN_ROWS)
    print_table(err, headers, rows, more=more, more_what=f"zones in {csv}")


def _csv(layers) -> str:  # noqa: ANN001 - PublishedLayers
    """Where the whole figure table of these layers is (their `table` asset)."""
    for layer in layers:
        if "table" in layer.item.assets:
            return str(layer.item.assets["table"].get_absolute_href())
    return "the layer's CSV"


def _coverage_line(table, min_coverage: float) -> None:  # noqa: ANN001 - a DataFrame
    from geovigie.diagnostics import coverage_summary

    err.print(coverage_summary(table, min_coverage), soft_wrap=True)


def _scene(path: Path, when: str | None, unit: str | None):  # noqa: ANN202 - a pystac.Item
    """A temperature scene as a STAC item: the item file itself, or a GeoTIFF described on the fly (rio-stac)."""
    from geovigie.catalog.stac import is_raster_file, raster_item, read_item

    if unit is not None and unit not in ("celsius", "kelvin"):
        raise InvalidInputError(f"--unit {unit!r}: celsius or kelvin")
    if not path.is_file() or not is_raster_file(path):
        if when is not None or unit is not None:
            raise InvalidInputError(f"{path}: a STAC item carries its own date and unit; --datetime and --unit are "
                                    "for a GeoTIFF")
        return read_item(path)
    import rasterio

    if unit is None:
        try:
            with rasterio.open(path) as src:
                unit = src.tags().get("UNIT") or (src.units[0] if src.units and src.units[0] else None)
        except rasterio.errors.RasterioIOError:
            unit = None  # raster_item names the unreadable file
    return raster_item(path, datetime_=when, asset="lst", unit=unit)


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001, C901
    """Add `diagnose` and `report` to the main app (errors go through the app's one error boundary)."""
    app.add_typer(diagnose_app, name="diagnose")

    @diagnose_app.command("vegetation")
    @friendly_errors
    def vegetation(layer: Annotated[str, typer.Argument(help="Id of a published NDVI layer.")], zones: ZonesOption,
                   place: Annotated[str, typer.Option(help="Name used in the layer id.")] = "zones",
                   departement: Annotated[str | None, typer.Option(help="Keep zones of this département.")] = None,
                   min_coverage: Annotated[float, typer.Option(help=MIN_COVERAGE_HELP)] = 0.5,
                   zones_crs: ZonesCrsOption = None) -> None:
        """Per-zone NDVI figures and vegetation shares of a published NDVI layer."""
        from geovigie.workflows import vegetation_by_zone

        _finite(min_coverage, "--min-coverage", 0.0, 1.0)
        result = vegetation_by_zone(layer, settings_factory(), zones=_zones(zones, departement, zones_crs),
                                    place=place, min_coverage=min_coverage)
        _print_zones(result.table, VEGETATION_COLUMNS, _csv(result.layers))
        _coverage_line(result.table, min_coverage)
        err.print(f"layer: {result.layers[0].id}")

    @diagnose_app.command("zan")
    @friendly_errors
    def zan(before: Annotated[Path, typer.Option(help="Class map at the first date.")],
            after: Annotated[Path, typer.Option(help="Class map at the second date, same grid.")],
            start: Annotated[str, typer.Option(help="First date, YYYY-MM-DD.")],
            end: Annotated[str, typer.Option(help="Second date, YYYY-MM-DD.")],
            zones: ZonesOption,
            mapping: Annotated[str, typer.Option(
                metavar="NAME|FILE", help=f"Class mapping: a shipped one ({', '.join(MAPPINGS)}) or a TOML file "
                                          "(diagnostics/zan_mappings/ shows the format).")] = "odeon-naf",
            reference: Annotated[Path | None, typer.Option(help="2011-2021 consumption CSV per zone.")] = None,
            place: Annotated[str, typer.Option(help="Name used in the layer ids.")] = "zones",
            mmu_building: Annotated[float, typer.Option(help="MMU of buildings, m².")] = 200.0,
            mmu_other: Annotated[float, typer.Option(help="MMU of other features, m².")] = 500.0,
            min_coverage: Annotated[float, typer.Option(help=MIN_COVERAGE_HELP + " Totals: default 0.95.")] = 0.95,
            zones_crs: ZonesCrsOption = None) -> None:
        """Hectares artificialised and renaturalised per zone between two dates, with and without MMU."""
        from geovigie.workflows import zan as run

        _finite(mmu_building, "--mmu-building")
        _finite(mmu_other, "--mmu-other")
        _finite(min_coverage, "--min-coverage", 0.0, 1.0)
        result = run(before, after, settings_factory(), place=place, zones=_zones(zones, crs=zones_crs),
                     start=_day(start, "--start"), end=_day(end, "--end"), mapping=mapping, reference=reference,
                     mmu_building_m2=mmu_building, mmu_other_m2=mmu_other, min_coverage=min_coverage)
        _print_zones(result.table, ZAN_COLUMNS, _csv(result.layers))
        _coverage_line(result.table, min_coverage)
        err.print("layers: " + ", ".join(layer.id for layer in result.layers))

    @diagnose_app.command("dumps")
    @friendly_errors
    def dumps(layer: Annotated[Path, typer.Argument(
                  help="What `predict` wrote: its probability COG (8-bit values 0-250 for a probability of 0-100 %, "
                       "one band per class: the dump class's is read), its class COG, or its layer's STAC item JSON; "
                       "or any single-band probability COG.")],
              watch: Annotated[str, typer.Option(help="Name of the area followed pass after pass.")],
              pass_date: Annotated[str, typer.Option("--date", help="Date of the imagery, YYYY-MM-DD.")],
              validated: Annotated[bool, typer.Option(
                  help="The layer is a validated dump model's output (refused when its bundle card does not say "
                       "so).")] = False,
              threshold: Annotated[float, typer.Option(help="Probability from which a pixel is a site, 0-1.")
                                   ] = 0.5,
              class_name: Annotated[str | None, typer.Option(
                  help="Class of the dump sites, by name (default: the bundle's one class that is not "
                       "background).")] = None,
              class_value: Annotated[int | None, typer.Option(help="Class of dump sites in a class layer.")] = None,
              bundle: Annotated[Path | None, typer.Option(
                  help="The model bundle that wrote the layer (its card names the classes and says whether the "
                       "detector was validated); not needed with the layer's STAC item.")] = None,
              min_area: Annotated[float, typer.Option(help="Smallest site, m².")] = 20.0,
              dsm: Annotated[Path | None, typer.Option(help="Surface model for volumes.")] = None,
              dtm: Annotated[Path | None, typer.Option(help="Terrain model for volumes.")] = None,
              zones: Annotated[Path | None, typer.Option(help="Communes for each site's INSEE code.")] = None,
              min_height: Annotated[float, typer.Option(
                  help="A pixel counts in a volume when it stands more than this above the terrain, m "
                       "(its whole height counts).")] = 0.2,
              sensitive: Annotated[list[str] | None, typer.Option(
                  help="NAME=FILE of a layer to measure distances to, in metres (Natura 2000, ZNIEFF, water); "
                       "repeatable. Features need a 'name' column.")] = None,
              min_observed: Annotated[float, typer.Option(
                  help="Share of an earlier site's footprint this pass must observe (pixels with data) to call it "
                       "removed; below it is not_observed (« non observé ») and kept, 0-1.")] = 0.5,
              zones_crs: ZonesCrsOption = None) -> None:
        """Dump sites of a pass: polygons, areas, volumes, communes, status against earlier passes, exports."""
        from geovigie.diagnostics import check_min_observed
        from geovigie.workflows import dump_sites

        _finite(min_height, "--min-height", 0.0, 1000.0)
        check_min_observed(min_observed, "--min-observed")  # NaN fails too
        layers = _sensitive(sensitive, zones_crs)
        result = dump_sites(layer, settings_factory(), watch=watch, pass_date=_day(pass_date, "--date"),
                            candidate=False if validated else None, threshold=threshold, class_value=class_value,
                            class_name=class_name, bundle=bundle, min_area_m2=min_area, dsm=dsm, dtm=dtm,
                            zones=_zones(zones, crs=zones_crs) if zones else None, sensitive=layers or None,
                            min_height_m=min_height, min_observed=min_observed)
        sites = result.sites
        label = result.layer.kind if result.layer else ""
        err.print(f"{label}: {result.layer.detail if result.layer else ''}; {len(result.alerts)} alerts",
                  soft_wrap=True)
        detector = result.layer.item.properties.get("geovigie:detector") if result.layer else None
        if detector:
            err.print(f"detector: {detector['bundle']}, class {detector['class']!r} ({detector['layer_kind']} band "
                      f"{detector['band']}), threshold {threshold:g}", soft_wrap=True)
        if result.note:
            err.print(f"note: {result.note}", soft_wrap=True)
        if "nodata_px" in sites.columns and sites["nodata_px"].fillna(0).sum() > 0:
            partial = sites[sites["nodata_px"].fillna(0) > 0]
            err.print(f"nodata inside sites: {int(partial['nodata_px'].sum())} px in {len(partial)} of {len(sites)} "
                      "sites (not counted in their area nor probability)", soft_wrap=True)
        unseen = int((sites["status"] == "not_observed").sum()) if "status" in sites.columns else 0
        if unseen:
            err.print(f"not observed (non observé): {unseen} earlier sites under this pass's nodata (less than "
                      f"{min_observed:.0%} of their footprint observed), kept with their ids, not removed",
                      soft_wrap=True)
        if dsm is not None and "volume_note" in sites.columns and len(sites):
            null = sites[sites["volume_m3"].isna()]
            err.print(f"volumes: {len(sites) - len(null)} of {len(sites)} sites measured"
                      + (f"; null: {listed(list(null['site_id']))}" if len(null) else ""))
        for name, path in result.files.items():
            err.print(f"{name}: {path}")

    @diagnose_app.command("dumps-change")
    @friendly_errors
    def dumps_change(
            dsm_before: Annotated[Path, typer.Option(help="Height model (DSM) of the earlier pass.")],
            dsm_after: Annotated[Path, typer.Option(help="Height model of the later pass, same CRS.")],
            watch: Annotated[str, typer.Option(help="Name of the area followed pass after pass.")],
            pass_date: Annotated[str, typer.Option("--date", help="Date of the later pass, YYYY-MM-DD.")],
            min_rise: Annotated[float, typer.Option(help="Rise a pixel must exceed to count, m.")] = 0.5,
            min_area: Annotated[float, typer.Option(help="Smallest candidate, m².")] = 20.0,
            buildings: Annotated[Path | None, typer.Option(
                help="Building footprints (GeoPackage / GeoJSON) masked out of the detection.")] = None,
            zones: Annotated[Path | None, typer.Option(help="Communes for each candidate's INSEE code.")] = None,
            sensitive: Annotated[list[str] | None, typer.Option(
                help="NAME=FILE of a layer to measure distances to, in metres; repeatable. Features need a "
                     "'name' column.")] = None,
            block: Annotated[int, typer.Option(
                help="Side of the blocks read at once, pixels: memory grows with its square, never with the "
                     "rasters' size.")] = 1024,
            zones_crs: ZonesCrsOption = None) -> None:
        """Dump candidates without labels: ground that rose between two height models (« candidats »)."""
        from geovigie.diagnostics import read_vector
        from geovigie.workflows import dump_change

        _finite(min_rise, "--min-rise", 0.0, 1000.0)
        if min_rise == 0:
            raise InvalidInputError("--min-rise 0: give a rise above 0 m (noise alone would cross it)")
        _finite(min_area, "--min-area", 0.0, 1e9)
        _block(block, 2, "the stable-ground margin")
        layers = _sensitive(sensitive, zones_crs)
        footprints = read_vector(buildings, "buildings", crs=zones_crs) if buildings else None
        result = dump_change(dsm_before, dsm_after, settings_factory(), watch=watch,
                             pass_date=_day(pass_date, "--date"), min_rise_m=min_rise, min_area_m2=min_area,
                             buildings=footprints, zones=_zones(zones, crs=zones_crs) if zones else None,
                             sensitive=layers or None, block_px=block, progress=True)
        _print_change(result)

    @diagnose_app.command("dumps-appearance")
    @friendly_errors
    def dumps_appearance(
            before: Annotated[Path, typer.Option(
                help="Image of the earlier pass: Sentinel-2 bands named B02, B03, B04 (B08, B11), or an orthophoto "
                     "RGB / RGB + NIR (bands named red, green, blue, nir, or RGB colour interpretation).")],
            after: Annotated[Path, typer.Option(help="Image of the later pass, same CRS and bands.")],
            watch: Annotated[str, typer.Option(help="Name of the area followed pass after pass.")],
            pass_date: Annotated[str, typer.Option("--date", help="Date of the later pass, YYYY-MM-DD.")],
            min_ndvi_drop: Annotated[float, typer.Option(help="NDVI fall a pixel must exceed (with NIR).")] = 0.2,
            min_texture: Annotated[float, typer.Option(
                help="After-pass brightness std / mean over the changed pixels of the texture window a pixel must "
                     "exceed (heterogeneous material; a uniform bare field stays below).")] = 0.1,
            texture_window: Annotated[int, typer.Option(
                help="Side of the texture window, pixels (odd, >= 3; wider for a 20 cm orthophoto).")] = 3,
            min_area: Annotated[float, typer.Option(help="Smallest candidate, m².")] = 400.0,
            require_nir: Annotated[bool, typer.Option(
                help="Refuse passes without NIR instead of using brightness alone.")] = False,
            bands: Annotated[str | None, typer.Option(
                help="Names of the bands of both passes in order, for files without band descriptions, e.g. "
                     "red,green,blue,nir (an IGN RVB+IR orthophoto); 'other' for a band to ignore.")] = None,
            exclude: Annotated[Path | None, typer.Option(
                help="Footprints (buildings, known quarries; GeoPackage / GeoJSON) masked out.")] = None,
            zones: Annotated[Path | None, typer.Option(help="Communes for each candidate's INSEE code.")] = None,
            sensitive: Annotated[list[str] | None, typer.Option(
                help="NAME=FILE of a layer to measure distances to, in metres; repeatable. Features need a "
                     "'name' column.")] = None,
            block: Annotated[int, typer.Option(
                help="Side of the blocks read at once, pixels: memory grows with its square, never with the "
                     "rasters' size.")] = 1024,
            zones_crs: ZonesCrsOption = None) -> None:
        """Dump candidates without labels: ground whose appearance turned bare and heterogeneous between two
        image passes (« candidats »)."""
        from geovigie.diagnostics import read_vector
        from geovigie.workflows import appearance_change

        _finite(min_ndvi_drop, "--min-ndvi-drop", 0.0, 2.0)
        _finite(min_texture, "--min-texture", 0.0, 1e6)
        _finite(min_area, "--min-area", 0.0, 1e9)
        if texture_window < 3 or texture_window % 2 == 0:
            raise InvalidInputError(f"--texture-window {texture_window}: give an odd number of pixels >= 3")
        _block(block, texture_window // 2, "the texture window")
        layers = _sensitive(sensitive, zones_crs)
        footprints = read_vector(exclude, "exclusion footprints", crs=zones_crs) if exclude else None
        names = [b.strip() for b in bands.split(",")] if bands else None
        with warnings.catch_warnings():  # the detail line below says it: no Python warning text on stderr
            warnings.simplefilter("ignore", DiagnosticsWarning)
            result = appearance_change(before, after, settings_factory(), watch=watch,
                                       pass_date=_day(pass_date, "--date"), min_ndvi_drop=min_ndvi_drop,
                                       min_texture=min_texture, window_px=texture_window, min_area_m2=min_area,
                                       require_nir=require_nir, band_names=names,
                                       exclude=footprints, zones=_zones(zones, crs=zones_crs) if zones else None,
                                       sensitive=layers or None, block_px=block, progress=True)
        _print_change(result)

    @diagnose_app.command("heat")
    @friendly_errors
    def heat(item: Annotated[Path, typer.Argument(
                 help="STAC item JSON of a land surface temperature scene, or a GeoTIFF (with --datetime).")],
             urban: Annotated[Path, typer.Option(help="Urban zone polygon(s).")],
             place: Annotated[str, typer.Option(help="Name used in the layer ids.")],
             rural_mask: Annotated[Path | None, typer.Option(help="Land-cover raster for the rural filter.")] = None,
             rural_classes: Annotated[str | None, typer.Option(help="Rural vegetation classes, e.g. 3,4.")] = None,
             zones: Annotated[Path | None, typer.Option(help="Zones (default: a 1 km grid).")] = None,
             when: Annotated[str | None, typer.Option(
                 "--datetime", help="Acquisition date of a GeoTIFF, ISO 8601 (an item carries its own).")] = None,
             unit: Annotated[str | None, typer.Option(
                 metavar="celsius|kelvin", help="Unit of a GeoTIFF's values (default: the file's own).")] = None,
             min_coverage: Annotated[float, typer.Option(help=MIN_COVERAGE_HELP)] = 0.5,
             zones_crs: ZonesCrsOption = None) -> None:
        """Heat-island intensity above a rural reference, hot spots and per-zone figures."""
        from geovigie.diagnostics import read_vector
        from geovigie.workflows import heat_islands

        _finite(min_coverage, "--min-coverage", 0.0, 1.0)
        classes = _classes(rural_classes)
        scene = _scene(item, when, unit)
        result = heat_islands(scene, settings_factory(), urban=read_vector(urban, "urban zone", crs=zones_crs),
                              place=place, zones=_zones(zones, crs=zones_crs) if zones else None,
                              rural_mask=rural_mask, rural_classes=classes, min_coverage=min_coverage)
        for layer in result.layers:
            err.print(f"{layer.id}: {layer.detail}")
        _coverage_line(result.zone_table, min_coverage)

    @app.command("report")
    @friendly_errors
    def report(out: Annotated[Path | None, typer.Option(help="Report folder (default DATA_DIR/report).")] = None,
               title: Annotated[str, typer.Option(help="Page title.")] = "Diagnostic territorial") -> None:
        """Write one self-contained HTML page of every published diagnostic, with its CSV tables."""
        from geovigie.workflows import report as run

        err.print(f"report: {run(settings_factory(), out, title=title)}")


def _block(block: int, halo: int, what: str) -> None:
    if block < max(1, halo):
        raise InvalidInputError(f"--block {block}: blocks must be at least {max(1, halo)} px, the halo {what} reads "
                                "around each block")


def _print_change(result: Any) -> None:
    """The summary of a change detection (height or appearance): what was found, the grid, the files written."""
    change = result.change
    err.print(f"candidats (not validated): {result.layer.detail if result.layer else ''}; "
              f"grid {change.shape[1]}x{change.shape[0]} px {change.crs}"
              + (f"; {change.resampled} resampled onto the other's grid" if change.resampled else ""),
              soft_wrap=True)
    for name, path in result.files.items():
        err.print(f"{name}: {path}")
