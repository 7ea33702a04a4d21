"""IGN orthophotos (BD ORTHO, ORTHO HR): dalles from a folder into the catalog as STAC items, optionally as COGs.

IGN delivers dalles named `DD-YYYY-XXXX-YYYY-LA93-0M20[-IRC]-E080.jp2` (département, year, top-left corner in km,
resolution, IRC for colour infrared, compression), JPEG 2000 or GeoTIFF, in Lambert-93 (EPSG:2154). The kind is
read from the name (an `IRC` token) and checked against the band count: RVB and IRC have 3 bands (red green blue;
near infrared red green), a 4-band dalle is RVBI (red green blue near infrared). One bad file (unreadable, not
EPSG:2154, unexpected bands) is reported by name and the others carry on; a rerun skips the dalles already
ingested from the same unchanged file.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pystac
import rasterio
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterBand, RasterExtension
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rio_stac.stac import get_dataset_geom

from geovigie.atomic import atomic_path
from geovigie.catalog.stac import ItemStore, check_id
from geovigie.errors import GeovigieError, InputNotFoundError, InvalidInputError, InvalidRasterError
from geovigie.progress import progress_bar
from geovigie.types import LAMBERT93

ORTHO_COLLECTION = "ign-ortho"
ORTHO_CRS = LAMBERT93
ORTHO_LICENCE = "IGN BD ORTHO / ORTHO HR, Licence Ouverte / Etalab 2.0"
DALLE_SUFFIXES = (".jp2", ".tif", ".tiff")

BAND_SETS: dict[str, tuple[str, ...]] = {
    "rvb": ("red", "green", "blue"),
    "irc": ("nir", "red", "green"),
    "rvbi": ("red", "green", "blue", "nir"),
}
"""Common names of the bands of each kind of IGN orthophoto, in file order."""

WAVELENGTHS = {"blue": 0.49, "green": 0.56, "red": 0.665, "nir": 0.842}
"""Centre wavelengths (µm) of the common names (STAC eo), approximate for aerial cameras."""

DALLE_NAME = re.compile(r"^(?P<dep>\d{2,3}|2[AB])-(?P<year>\d{4})-(?P<x>\d{4})-(?P<y>\d{4})-LA93-(?P<res>\d+M\d+)",
                        re.IGNORECASE)
_IRC = re.compile(r"(^|[-_])IRC([-_.]|$)", re.IGNORECASE)
_RVBI = re.compile(r"(^|[-_])RVBI([-_.]|$)", re.IGNORECASE)
MEDIA_TYPES = {".jp2": "image/jp2", ".tif": pystac.MediaType.GEOTIFF, ".tiff": pystac.MediaType.GEOTIFF}


def ortho_kind(name: str, band_count: int) -> str:
    """`rvb`, `irc` or `rvbi` from a dalle's file name and band count.

    Raises:
        InvalidRasterError: the band count does not fit the kind the name gives, or no kind has that many bands.
    """
    if _IRC.search(name):
        kind = "irc"
    elif _RVBI.search(name) or band_count == 4:
        kind = "rvbi"
    else:
        kind = "rvb"
    expected = len(BAND_SETS[kind])
    if band_count != expected:
        raise InvalidRasterError(f"{name}: {band_count} band(s), but an IGN {kind.upper()} orthophoto has {expected} "
                                 "(RVB and IRC: 3, RVBI: 4)")
    return kind


def eo_bands(kind: str) -> list[Band]:
    """`eo:bands` of an orthophoto kind."""
    return [Band.create(name=name.upper() if name == "nir" else name, common_name=name,
                        center_wavelength=WAVELENGTHS[name]) for name in BAND_SETS[kind]]


def ortho_item(item_id: str, path: Path, kind: str, *, media_type: str, roles: list[str],
               when: datetime | None = None, interval: tuple[datetime, datetime] | None = None,
               properties: dict[str, object] | None = None) -> pystac.Item:
    """A STAC item with one `image` asset (`path`), its proj, raster and eo descriptions and its `gsd`.

    Raises:
        InvalidRasterError: the file cannot be read.
    """
    try:
        with rasterio.open(path) as src, warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            geom = get_dataset_geom(src, densify_pts=0, precision=7)
            shape, transform, bounds = [src.height, src.width], list(src.transform)[:6], list(src.bounds)
            epsg = src.crs.to_epsg() if src.crs else None
            bands = [RasterBand.create(nodata=src.nodata, data_type=src.dtypes[i], spatial_resolution=src.res[0])
                     for i in range(src.count)]
            gsd = float(src.res[0])
    except RasterioIOError as err:
        raise InvalidRasterError(f"{path}: not a readable raster ({err})") from err
    props: dict[str, object] = {"gsd": gsd, **(properties or {})}
    if interval is not None:
        props["start_datetime"] = _iso(interval[0])
        props["end_datetime"] = _iso(interval[1])
    item = pystac.Item(id=item_id, geometry=geom["footprint"], bbox=geom["bbox"],
                       datetime=None if interval is not None else (when or datetime.now(UTC)), properties=props)
    for extension in (ProjectionExtension, RasterExtension, EOExtension):
        extension.add_to(item)
    proj = ProjectionExtension.ext(item)
    proj.code = f"EPSG:{epsg}" if epsg else None
    proj.shape, proj.transform, proj.bbox = shape, transform, bounds
    asset = pystac.Asset(href=str(path.resolve()), title=f"IGN orthophoto {kind.upper()}", media_type=media_type,
                         roles=roles)
    RasterExtension.ext(asset).bands = bands
    EOExtension.ext(asset).bands = eo_bands(kind)
    item.add_asset("image", asset)
    return item


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class DalleInfo:
    """What a dalle's name and header say."""

    path: Path
    item_id: str
    kind: str
    year: int | None
    fingerprint: str
    is_cog: bool


def describe_dalle(path: Path) -> DalleInfo:
    """Read and check one dalle: readable, EPSG:2154, 3 or 4 bands matching its kind.

    Raises:
        InvalidRasterError: unreadable, without CRS, not in EPSG:2154 or with unexpected bands (the message names
            the file).
    """
    try:
        with rasterio.open(path) as src:
            crs, count, dtypes = src.crs, src.count, src.dtypes
    except RasterioIOError as err:
        raise InvalidRasterError(f"{path}: not a readable raster ({' '.join(str(err).split())[:200]})") from err
    if crs is None:
        raise InvalidRasterError(f"{path}: no CRS; IGN dalles are in {ORTHO_CRS} (Lambert-93): keep the "
                                 "georeferencing files delivered beside a JP2 (.aux.xml, .j2w, .prj)")
    if crs.to_epsg() != 2154:
        raise InvalidRasterError(f"{path}: CRS {crs.to_string() or crs.to_wkt()[:60]} is not {ORTHO_CRS} "
                                 "(Lambert-93), the CRS of IGN orthophotos; reproject it first (gdalwarp -t_srs "
                                 "EPSG:2154)")
    kind = ortho_kind(path.name, count)
    if any(dtype not in ("uint8", "uint16") for dtype in dtypes):
        raise InvalidRasterError(f"{path}: data type {dtypes[0]}; IGN orthophotos are 8-bit (or 16-bit) integers")
    match = DALLE_NAME.match(path.name)
    stat = path.stat()
    return DalleInfo(path=path, item_id=check_id(path.stem), kind=kind,
                     year=int(match.group("year")) if match else None,
                     fingerprint=f"{stat.st_size}-{stat.st_mtime_ns}", is_cog=_is_cog(path))


def _is_cog(path: Path) -> bool:
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    from rio_cogeo.cogeo import cog_validate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        valid, _errors, _warnings = cog_validate(str(path), quiet=True)
    return bool(valid)


def convert_to_cog(source: Path, target: Path, compression: str = "deflate") -> Path:
    """Write `source` as a Cloud Optimized GeoTIFF at `target`, atomically (`deflate`: lossless; `jpeg`: YCbCr).

    Raises:
        InvalidInputError: unknown compression.
    """
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    if compression not in ("deflate", "jpeg"):
        raise InvalidInputError(f"COG compression {compression!r}: use deflate or jpeg")
    profile = cog_profiles.get(compression)
    profile.update(blockxsize=512, blockysize=512)
    with atomic_path(target) as tmp, rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_TIFF_INTERNAL_MASK=True), \
            rasterio.open(source) as src:
        if compression == "jpeg" and (src.count != 3 or src.dtypes[0] != "uint8"):
            profile.pop("photometric", None)  # YCbCr needs 3 bands of bytes
        if src.gcps[1] is not None and not src.gcps[0]:
            # JP2 dalles report a GCP CRS without GCPs; rio-cogeo would then warp with a transform made of no GCP.
            # An identity warped view (same CRS, transform and size) hides the empty GCP set; pixels are copied.
            with WarpedVRT(src, crs=src.crs, transform=src.transform, width=src.width, height=src.height) as view:
                cog_translate(view, str(tmp), profile, overview_resampling="average", quiet=True, in_memory=False)
        else:
            cog_translate(src, str(tmp), profile, overview_resampling="average", quiet=True, in_memory=False)
    return target


def ortho_collection(collection_id: str = ORTHO_COLLECTION, title: str | None = None) -> pystac.Collection:
    """The collection template orthophoto items go into."""
    return pystac.Collection(
        id=collection_id, title=title or "IGN orthophotos (BD ORTHO / ORTHO HR)",
        description=f"Orthophoto dalles and WMS extracts in {ORTHO_CRS}. {ORTHO_LICENCE}.", license="etalab-2.0",
        extent=pystac.Extent(pystac.SpatialExtent([[-5.5, 41.0, 10.0, 51.5]]),
                             pystac.TemporalExtent([[datetime(1950, 1, 1, tzinfo=UTC), None]])),
    )


@dataclass
class OrthoIngestReport:
    """What `ingest_ortho` did: item ids written, item ids skipped (already there), files refused and why."""

    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def find_dalles(folder: Path) -> list[Path]:
    """The JP2 / GeoTIFF files under `folder` (recursively, as IGN deliveries nest them), in name order.

    Raises:
        InputNotFoundError: no such folder, or no dalle in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFoundError(f"no folder {folder}: give the folder holding the IGN dalles (.jp2 or .tif)")
    paths = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DALLE_SUFFIXES
                    and not p.name.startswith(".")), key=lambda p: (p.name, str(p)))
    if not paths:
        raise InputNotFoundError(f"no dalle (.jp2, .tif, .tiff) in {folder}")
    return paths


def ingest_ortho(folder: str | Path, store: ItemStore, *, collection: str = ORTHO_COLLECTION, cog: bool = False,
                 compression: str = "deflate", progress: bool = False) -> OrthoIngestReport:
    """Ingest every IGN dalle under `folder` into `store` as one STAC item each (id = file stem).

    With `cog`, each dalle that is not already a COG is converted into the item's folder of the store (the asset
    points there); otherwise the asset points to the file where it lies. Dalles whose item holds the same file
    fingerprint (size, modification time), already converted when `cog` is asked, are skipped.

    Raises:
        InputNotFoundError: no folder or no dalle in it (a bad dalle is reported in the result, not raised).
    """
    check_id(collection, "collection id")
    paths = find_dalles(Path(folder))
    report = OrthoIngestReport()
    template = ortho_collection(collection)
    with progress_bar(f"ingesting {len(paths)} dalles", total=len(paths), enabled=progress) as advance:
        for path in paths:
            try:
                _ingest_one(path, store, collection, template, cog, compression, report)
            except GeovigieError as error:
                report.failed.append((path, str(error)))
            advance(1)
    return report


def _ingest_one(path: Path, store: ItemStore, collection: str, template: pystac.Collection, cog: bool,
                compression: str, report: OrthoIngestReport) -> None:
    info = describe_dalle(path)
    if _already_ingested(store, collection, info, cog):
        report.skipped.append(info.item_id)
        return
    asset_path, media_type, roles = path, MEDIA_TYPES[path.suffix.lower()], ["data"]
    if info.is_cog:
        media_type = pystac.MediaType.COG
    elif cog:
        asset_path = convert_to_cog(path, store.files_dir(collection, info.item_id) / f"{info.item_id}.tif",
                                    compression)
        media_type = pystac.MediaType.COG
    interval = None
    if info.year is not None:
        interval = (datetime(info.year, 1, 1, tzinfo=UTC), datetime(info.year, 12, 31, 23, 59, 59, tzinfo=UTC))
    props: dict[str, object] = {
        "geovigie:source": str(path.resolve()), "geovigie:source_fingerprint": info.fingerprint,
        "geovigie:cog": media_type == pystac.MediaType.COG, "geovigie:ortho_kind": info.kind,
        "providers": [{"name": "IGN", "roles": ["producer", "licensor"], "url": "https://geoservices.ign.fr"}],
    }
    when = None
    if interval is None:
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        props["geovigie:note"] = "no year in the file name: datetime is the file's modification time"
    item = ortho_item(info.item_id, asset_path, info.kind, media_type=media_type, roles=roles, when=when,
                      interval=interval, properties=props)
    item.collection_id = collection
    store.upsert(item, template)
    report.ingested.append(info.item_id)


def _already_ingested(store: ItemStore, collection: str, info: DalleInfo, cog: bool) -> bool:
    try:
        item = store.get(collection, info.item_id)
    except (InputNotFoundError, InvalidInputError):
        return False
    if item.properties.get("geovigie:source_fingerprint") != info.fingerprint:
        return False
    asset = item.assets.get("image")
    href = (asset.get_absolute_href() or asset.href) if asset is not None else ""
    if asset is None or not Path(href.removeprefix("file://")).is_file():
        return False
    return not cog or bool(item.properties.get("geovigie:cog"))

