"""`geovigie catalog ingest-ortho` and `geovigie catalog fetch-ortho`: IGN orthophotos into the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geovigie.errors import InvalidInputError
from geovigie.terminal import stderr_console
from geovigie.types import LAMBERT93

err = stderr_console()

CatalogOption = Annotated[Path | None, typer.Option("--catalog", help="Catalog folder (default: DATA_DIR/catalog).")]


def parse_aoi(text: str) -> tuple[float, float, float, float]:
    """`xmin,ymin,xmax,ymax` in EPSG:2154 metres, or a vector file (GeoJSON, GeoPackage…) whose bounds are taken.

    Raises:
        InvalidInputError: neither four numbers nor a readable vector file.
    """
    parts = text.split(",")
    if len(parts) == 4:
        try:
            xmin, ymin, xmax, ymax = (float(p) for p in parts)
        except ValueError as error:
            raise InvalidInputError(f"--aoi {text!r}: give xmin,ymin,xmax,ymax (EPSG:2154 metres) or a file") from error
        return xmin, ymin, xmax, ymax
    path = Path(text)
    if not path.is_file():
        raise InvalidInputError(f"--aoi {text!r}: neither xmin,ymin,xmax,ymax (EPSG:2154) nor an existing file")
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as error:  # noqa: BLE001 - pyogrio raises several kinds for unreadable files
        raise InvalidInputError(f"--aoi {path}: not a readable vector file ({error})") from error
    if frame.empty or frame.crs is None:
        raise InvalidInputError(f"--aoi {path}: {'no feature' if frame.empty else 'no CRS'}")
    xmin, ymin, xmax, ymax = (float(v) for v in frame.to_crs(LAMBERT93).total_bounds)
    return xmin, ymin, xmax, ymax


def _store(catalog: Path | None, settings_factory):  # noqa: ANN001, ANN202 - an ItemStore
    """`--catalog DIR`: that static catalog; else the input store of the settings (the STAC API, exported to
    DATA_DIR/catalog, or that static catalog alone)."""
    from geovigie.tiles import inputs_store, inputs_store_for

    return inputs_store(catalog) if catalog is not None else inputs_store_for(settings_factory())


def register(app: typer.Typer, friendly_errors, settings_factory, catalog_app: typer.Typer | None = None  # noqa: ANN001
             ) -> None:
    """Add `ingest-ortho` and `fetch-ortho` to the `catalog` group of the main app (created when absent)."""
    if catalog_app is None:
        found = next((g.typer_instance for g in app.registered_groups if g.name == "catalog"), None)
        if found is None:
            found = typer.Typer(help="Build and search STAC catalogs.", no_args_is_help=True)
            app.add_typer(found, name="catalog")
        catalog_app = found

    @catalog_app.command("ingest-ortho")
    @friendly_errors
    def ingest_ortho(
        folder: Annotated[Path, typer.Argument(help="Folder of IGN BD ORTHO / ORTHO HR dalles (.jp2, .tif).")],
        cog: Annotated[bool, typer.Option("--cog", help="Convert each dalle to a COG in the catalog.")] = False,
        compression: Annotated[str, typer.Option(metavar="deflate|jpeg",
                                                 help="COG compression (deflate is lossless).")] = "deflate",
        collection: Annotated[str, typer.Option(help="Collection the items go into.")] = "ign-ortho",
        catalog: CatalogOption = None,
    ) -> None:
        """Ingest IGN orthophoto dalles (RVB, IRC; EPSG:2154) as STAC items; reruns skip what is already there."""
        from geovigie.catalog.ortho import ingest_ortho as run

        store = _store(catalog, settings_factory)
        report = run(folder, store, collection=collection, cog=cog, compression=compression, progress=True)
        err.print(f"{len(report.ingested)} dalle(s) ingested, {len(report.skipped)} already in {store.location}, "
                  f"{len(report.failed)} refused", highlight=False)
        for _path, message in report.failed:
            err.print("error:", style="bold red", end=" ")
            err.print(message, soft_wrap=True)
        if report.failed:
            raise typer.Exit(2)

    @catalog_app.command("fetch-ortho")
    @friendly_errors
    def fetch_ortho(
        aoi: Annotated[str, typer.Option(metavar="BOUNDS|FILE",
                                         help="xmin,ymin,xmax,ymax in EPSG:2154 metres, or a vector file.")],
        layer: Annotated[str, typer.Option(metavar="rvb|irc|NAME",
                                           help="IGN colour (rvb) or infrared (irc) orthophotos, or a WMS layer name."
                                           )] = "rvb",
        resolution: Annotated[float, typer.Option(help="Pixel size in metres.")] = 0.5,
        wms_url: Annotated[str | None, typer.Option(help="WMS URL (default: IGN Géoplateforme).")] = None,
        image_format: Annotated[str, typer.Option("--format", metavar="jpeg|png", help="GetMap image format.")
                                ] = "jpeg",
        max_size: Annotated[int | None, typer.Option(help="Largest GetMap side in px (default 4096 and the "
                                                           "server's MaxWidth/MaxHeight).")] = None,
        collection: Annotated[str, typer.Option(help="Collection the item goes into.")] = "ign-ortho-wms",
        catalog: CatalogOption = None,
        out: Annotated[Path | None, typer.Option(help="COG path (default: the item's folder in the catalog).")] = None,
    ) -> None:
        """Fetch an area from a WMS (IGN orthophotos by default) into a COG and a STAC item in the catalog."""
        from geovigie.catalog.ortho import GEOPLATEFORME_WMS, ORTHO_LAYERS, fetch_wms, ortho_collection, snap_grid
        from geovigie.catalog.stac import check_id

        if image_format not in ("jpeg", "png"):
            raise InvalidInputError(f"--format {image_format!r}: use jpeg or png")
        bbox = parse_aoi(aoi)
        grid = snap_grid(bbox, resolution)
        name = ORTHO_LAYERS.get(layer.lower(), layer)
        tag = next((k for k, v in ORTHO_LAYERS.items() if v == name), "wms")
        item_id = check_id("-".join([tag, *(f"{v:.0f}" for v in grid.bbox), f"{resolution:g}m"]))
        store = _store(catalog, settings_factory)
        target = out or store.files_dir(collection, item_id) / f"{item_id}.tif"
        item = fetch_wms(wms_url or GEOPLATEFORME_WMS, name, bbox, resolution, target,
                         image_format=f"image/{image_format}", max_size=max_size, item_id=item_id, progress=True)
        item.collection_id = collection
        store.upsert(item, ortho_collection(collection, "Orthophotos fetched from a WMS"))
        wms = item.properties["geovigie:wms"]
        err.print(f"wrote {target} ({grid.width} × {grid.height} px, {wms['requests']} GetMap request(s)) and item "
                  f"{item_id} in {store.location}", highlight=False)
