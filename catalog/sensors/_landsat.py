"""Landsat Collection 2 Level-2: surface temperature in °C, surface reflectance, QA_PIXEL masks.

USGS scaling (Landsat 8-9 C2 L2 product guide): ST_B10 kelvin = DN × 0.00341802 + 149.0; SR bands reflectance
= DN × 0.0000275 − 0.2; DN 0 is fill. An asset's `raster:bands` scale/offset (Earth Search, Planetary Computer)
is used when declared. QA_PIXEL bits: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow,
6 clear, 7 water.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pystac
import xarray as xr

from geovigie.errors import BandMismatchError, EmptySearchError
from geovigie.types import LAMBERT93

ST_SCALE, ST_OFFSET = 0.00341802, 149.0
SR_SCALE, SR_OFFSET = 0.0000275, -0.2
KELVIN = 273.15
QA_BITS = {"fill": 0, "dilated_cloud": 1, "cirrus": 2, "cloud": 3, "shadow": 4, "snow": 5, "clear": 6, "water": 7}

BANDS = {  # common name -> (Earth Search / Planetary Computer key, USGS band file suffix for Landsat 8-9)
    "coastal": ("coastal", "SR_B1"), "blue": ("blue", "SR_B2"), "green": ("green", "SR_B3"), "red": ("red", "SR_B4"),
    "nir08": ("nir08", "SR_B5"), "swir16": ("swir16", "SR_B6"), "swir22": ("swir22", "SR_B7"),
    "lwir11": ("lwir11", "ST_B10"), "qa_pixel": ("qa_pixel", "QA_PIXEL"),
}
ALIASES = {"nir": "nir08", "st_b10": "lwir11", "lst": "lwir11", "temperature": "lwir11"}


def st_to_celsius(dn: Any) -> Any:
    """ST_B10 digital numbers → °C (fill, DN 0, → NaN)."""
    values = np.asarray(dn, dtype="float64") if not isinstance(dn, xr.DataArray) else dn.astype("float64")
    kelvin = values * ST_SCALE + ST_OFFSET
    return (kelvin - KELVIN).where(values != 0) if isinstance(kelvin, xr.DataArray) else \
        np.where(values != 0, kelvin - KELVIN, np.nan)


def sr_to_reflectance(dn: Any) -> Any:
    """SR_B* digital numbers → surface reflectance (fill, DN 0, → NaN)."""
    values = np.asarray(dn, dtype="float64") if not isinstance(dn, xr.DataArray) else dn.astype("float64")
    out = values * SR_SCALE + SR_OFFSET
    return out.where(values != 0) if isinstance(out, xr.DataArray) else np.where(values != 0, out, np.nan)


@dataclass(frozen=True)
class QaOptions:
    """What QA_PIXEL masks. Fill is always masked; `cloud` covers the cloud and dilated-cloud bits."""

    cloud: bool = True
    shadow: bool = True
    cirrus: bool = True
    snow: bool = True

    def bits(self) -> int:
        """The QA_PIXEL bit field of masked conditions."""
        value = 1 << QA_BITS["fill"]
        if self.cloud:
            value |= (1 << QA_BITS["cloud"]) | (1 << QA_BITS["dilated_cloud"])
        if self.shadow:
            value |= 1 << QA_BITS["shadow"]
        if self.cirrus:
            value |= 1 << QA_BITS["cirrus"]
        if self.snow:
            value |= 1 << QA_BITS["snow"]
        return value


def qa_clear(qa: Any, options: QaOptions = QaOptions()) -> Any:
    """True where QA_PIXEL (numpy or xarray; NaN = outside the scene) marks a usable pixel."""
    if isinstance(qa, xr.DataArray):
        return (qa == qa) & ((qa.fillna(1).astype("uint16") & options.bits()) == 0)
    values = np.asarray(qa)
    filled = np.nan_to_num(values, nan=1).astype(np.uint16) if values.dtype.kind == "f" else values
    return (filled & options.bits()) == 0


def landsat_asset(item: pystac.Item, name: str) -> str:
    """The asset key of a Landsat C2 L2 band by common name (`red`, `lwir11`), USGS name (`ST_B10`) or key.

    Raises:
        BandMismatchError: no such asset.
    """
    wanted = ALIASES.get(name.lower(), name.lower())
    key, suffix = BANDS.get(wanted, (wanted, name.upper()))
    if name in item.assets:
        return name
    for candidate in (key, suffix, suffix.lower()):
        if candidate in item.assets:
            return candidate
    for asset_key, asset in item.assets.items():
        if _file_name(asset.href).upper().endswith(f"_{suffix}.TIF"):
            return asset_key
    raise BandMismatchError(f"Landsat item {item.id} has no band {name!r} ({suffix}); assets: {', '.join(item.assets)}")


def _file_name(href: str) -> str:
    return href.rsplit("/", 1)[-1].split("?", 1)[0]


def scaling(item: pystac.Item, key: str, common: str) -> tuple[float, float]:
    """(scale, offset) of a band: declared `raster:bands`, else the USGS constants (°C for `lwir11`)."""
    declared = (item.assets[key].extra_fields.get("raster:bands") or [{}])[0]
    if common == "lwir11":
        scale, offset = declared.get("scale", ST_SCALE), declared.get("offset", ST_OFFSET)
        return float(scale), float(offset) - KELVIN
    return float(declared.get("scale", SR_SCALE)), float(declared.get("offset", SR_OFFSET))


def load_landsat(items: Sequence[pystac.Item], bands: Sequence[str], *, crs: str | None = LAMBERT93,
                 resolution: float | None = 30.0, bbox: Sequence[float] | None = None, geobox: Any = None,
                 chunks: dict[str, int] | None = None, qa: QaOptions | None = QaOptions(),
                 groupby: str | None = "solar_day", patch_url: Callable[[str], str] | None = None) -> xr.Dataset:
    """Landsat C2 L2 bands, lazily: reflectance for SR bands, °C for `lwir11`, QA_PIXEL-masked pixels NaN.

    Raises:
        EmptySearchError: no item.
        BandMismatchError: an item lacks a band or QA_PIXEL.
    """
    import odc.stac

    if not items:
        raise EmptySearchError("no Landsat item to load")
    commons = [ALIASES.get(b.lower(), b.lower()) for b in bands]
    groups: dict[tuple[Any, ...], list[pystac.Item]] = {}
    for item in items:
        keys = tuple(landsat_asset(item, b) for b in bands)
        qa_key = landsat_asset(item, "qa_pixel") if qa is not None else None
        scales = tuple(scaling(item, k, c) for k, c in zip(keys, commons, strict=True))
        groups.setdefault((keys, qa_key, scales), []).append(item)
    grid: dict[str, Any] = {"geobox": geobox} if geobox is not None else {"crs": crs, "resolution": resolution}
    if geobox is None and bbox is not None:
        grid["bbox"] = tuple(bbox)
    parts = []
    for (keys, qa_key, scales), members in groups.items():
        raw = odc.stac.load(members, bands=[*keys, *([qa_key] if qa_key else [])], dtype="float32",
                            chunks=dict(chunks or {"x": 1024, "y": 1024}), groupby=groupby, resampling="nearest",
                            patch_url=patch_url, **grid)
        clear = qa_clear(raw[qa_key], qa) if qa_key and qa is not None else xr.ones_like(raw[keys[0]], dtype=bool)
        out = xr.Dataset(coords=raw.coords)
        for name, key, (scale, offset) in zip(bands, keys, scales, strict=True):
            dn = raw[key]
            out[name] = (dn * scale + offset).where(clear & (dn == dn) & (dn != 0)).astype("float32")
        out["clear"] = clear
        parts.append(out)
    return parts[0] if len(parts) == 1 else xr.concat(parts, dim="time", join="outer").sortby("time")
