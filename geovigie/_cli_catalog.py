"""`geovigie catalog search`, `fetch` and `add`: imagery over an AOI and a period from any provider; any raster
file described as a STAC item of the local catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from geovigie.errors import GeovigieError, InvalidInputError, RemoteSourceError
from geovigie.terminal import listed, print_table, stderr_console, stdout_console

err = stderr_console()

ProviderOption = Annotated[str | None, typer.Option(
    "--provider", "--source", "--api", metavar="NAME|URL|FILE",
    help="earth-search, planetary-computer, local (default: DATA_DIR/catalog), a name from [catalog_sources], a STAC "
         "API URL or a catalog.json.")]
CollectionOption = Annotated[str | None, typer.Option(
    "--collection", "--collections", metavar="IDS",
    help="Collection id(s), comma-separated: sentinel-2-l2a, sentinel-2-c1-l2a (Earth Search), landsat-c2-l2, or the "
         "local catalog's (`geovigie catalog build` lists them).")]
AoiOption = Annotated[str | None, typer.Option(
    metavar="AREA", help="Area: insee:32001 (commune), dep:32, a GeoJSON/GeoPackage file, or west,south,east,north.")]
BboxOption = Annotated[str | None, typer.Option(
    metavar="W,S,E,N", help="west,south,east,north in degrees (same as --aoi with a bbox).")]
PeriodOption = Annotated[str | None, typer.Option(
    "--period", "--datetime", metavar="PERIOD",
    help="ISO 8601 date or interval: 2024-06-01/2024-08-31, 2024-07, 2024.")]
CloudOption = Annotated[float | None, typer.Option(metavar="PERCENT",
                                                   help="Maximum cloud cover, % (eo:cloud_cover).")]
MaxItemsOption = Annotated[int, typer.Option(help="Stop after this many items.")]
ZonesCrsOption = Annotated[str | None, typer.Option(
    "--zones-crs", help="CRS of an --aoi file that has none (a shapefile without .prj), e.g. EPSG:2154.")]


def _search(settings: Any, provider: str | None, collection: str | None, aoi: str | None, bbox: str | None,
            period: str | None, max_cloud: float | None, max_items: int, zones_crs: str | None = None) -> list[Any]:
    from geovigie.catalog.imagery import Aoi, parse_aoi, search_imagery

    if aoi and bbox:
        raise InvalidInputError("give --aoi or --bbox, not both")
    area: Aoi | None = None
    if bbox:
        from shapely.geometry import box

        from geovigie.types import normalize_bbox

        area = Aoi(box(*normalize_bbox(bbox)), f"bbox {bbox}")
    elif aoi:
        area = parse_aoi(aoi, sample_dir=settings.sample_data_path() if aoi.partition(":")[0].lower() in (
            "insee", "commune", "dep", "departement") else None, crs=zones_crs)
    return search_imagery(provider, collection, aoi=area, period=period, max_cloud=max_cloud, max_items=max_items,
                          settings=settings)


def _catalog_group(app: typer.Typer) -> typer.Typer:
    for info in app.registered_groups:
        if info.name == "catalog" and isinstance(info.typer_instance, typer.Typer):
            return info.typer_instance
    group = typer.Typer(help="Build, search and fetch STAC imagery.", no_args_is_help=True)
    app.add_typer(group, name="catalog")
    return group


def _assets(item: Any, bands: list[str] | None) -> dict[str, Any]:
    """The item's assets to fetch: the named bands (common names work for Sentinel-2 and Landsat) or all data."""
    if not bands:
        return {k: a for k, a in item.assets.items()
                if not a.roles or {"data", "reflectance", "cloud", "data-mask", "temperature"} & set(a.roles)}
    from geovigie.catalog.sensors import band_asset, landsat_asset

    chosen = {}
    for band in bands:
        try:
            key = band if band in item.assets else band_asset(item, band)
        except GeovigieError:
            key = landsat_asset(item, band)
        chosen[key] = item.assets[key]
    return chosen


def register(app: typer.Typer, friendly_errors: Any, settings_factory: Any) -> None:  # noqa: C901
    """Add `search` and `fetch` to the app's `catalog` group (created when the app has none)."""
    catalog = _catalog_group(app)

    @catalog.command("search")
    @friendly_errors
    def search(provider: ProviderOption = None, collection: CollectionOption = None, aoi: AoiOption = None,
               bbox: BboxOption = None, period: PeriodOption = None, max_cloud: CloudOption = None,
               max_items: MaxItemsOption = 100,
               as_json: Annotated[bool, typer.Option("--json", help="Print items as GeoJSON lines.")] = False,
               zones_crs: ZonesCrsOption = None) -> None:
        """Search imagery by provider, collection, area, period and cloud cover (default: the local catalog)."""
        items = _search(settings_factory(), provider, collection, aoi, bbox, period, max_cloud, max_items, zones_crs)
        if as_json:
            for item in items:
                typer.echo(json.dumps(item.to_dict(transform_hrefs=False)))
            return
        rows = []
        for item in items:
            when = item.datetime or item.common_metadata.start_datetime
            cloud = item.properties.get("eo:cloud_cover")
            rows.append((item.collection_id or "", item.id, when.isoformat() if when else "-",
                         "-" if cloud is None else f"{cloud:.1f}",
                         str(item.properties.get("s2:processing_baseline", "-")), listed(list(item.assets), 8)))
        print_table(stdout_console(), ("collection", "id", "datetime (UTC)", "cloud (%)", "baseline", "assets"), rows,
                    title=f"{len(items)} items")

    @catalog.command("fetch")
    @friendly_errors
    def fetch(provider: ProviderOption = None, collection: CollectionOption = None, aoi: AoiOption = None,
              bbox: BboxOption = None, period: PeriodOption = None, max_cloud: CloudOption = None,
              max_items: MaxItemsOption = 20,
              bands: Annotated[str | None, typer.Option(
                  help="Bands to fetch, comma-separated (red,nir,scl); default: every data asset.")] = None,
              progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
              zones_crs: ZonesCrsOption = None) -> None:
        """Download the assets of a search into the shared cache, for offline work. Failures of one asset do not
        stop the others; the command fails at the end if any asset failed."""
        from geovigie.catalog.imagery import AssetCache, cache_dir_of, resolve_provider, unsigned
        from geovigie.progress import progress_bar

        settings = settings_factory()
        items = _search(settings, provider, collection, aoi, bbox, period, max_cloud, max_items, zones_crs)
        signed = resolve_provider(provider, settings).signing is not None if provider else False
        wanted = [b.strip() for b in bands.split(",") if b.strip()] if bands else None
        jobs = [(item, key, asset) for item in items for key, asset in _assets(item, wanted).items()
                if asset.get_absolute_href() and str(asset.get_absolute_href()).startswith(("http://", "https://"))]
        cache = AssetCache(cache_dir_of(settings))
        failures: list[str] = []
        with progress_bar(f"fetching {len(jobs)} assets", len(jobs), enabled=progress) as advance:
            for item, key, asset in jobs:
                url = str(asset.get_absolute_href())
                checksum = str(asset.extra_fields.get("file:checksum", ""))
                try:
                    cache.fetch(url, key=unsigned(url) if signed else None,
                                sha256=checksum if checksum.startswith("1220") else None)
                except GeovigieError as error:
                    failures.append(f"{item.id} {key}: {error}")
                advance(1)
        err.print(f"{len(jobs) - len(failures)} of {len(jobs)} assets of {len(items)} items in {cache.root}")
        if failures:
            raise RemoteSourceError(f"{len(failures)} assets could not be fetched: " + listed(failures, 5, "; "))

    @catalog.command("add")
    @friendly_errors
    def add(file: Annotated[Path, typer.Argument(help="A raster file (GeoTIFF, COG) with a CRS.")],
            collection: Annotated[str, typer.Option(help="Collection of the local catalog to add it to.")],
            when: Annotated[str, typer.Option("--datetime", help="Acquisition date, ISO 8601 (2023-07-14T10:30Z).")],
            item_id: Annotated[str | None, typer.Option("--id", help="Item id (default: the file name).")] = None,
            asset: Annotated[str, typer.Option(help="Asset key (e.g. lst for a temperature).")] = "data",
            unit: Annotated[str | None, typer.Option(help="Unit of the values (celsius, kelvin...).")] = None
            ) -> None:
        """Describe any raster as a STAC item (rio-stac: footprint, proj, raster bands) in the local catalog.

        The item's asset points at the file where it is (absolute path): nothing is copied."""
        from geovigie.catalog.stac import raster_item
        from geovigie.tiles import inputs_store_for

        settings = settings_factory()
        item = raster_item(file, datetime_=when, collection=collection, asset=asset, item_id=item_id, unit=unit)
        stored = inputs_store_for(settings).upsert(item)  # the input catalog, and the STAC API with pgstac
        err.print(f"{stored.id}: {settings.catalog_dir / collection / stored.id / (stored.id + '.json')}")
