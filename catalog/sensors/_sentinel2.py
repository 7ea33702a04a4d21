"""Sentinel-2 L2A from both processors met in France: Sen2Cor (SCL) and Theia/MAJA (FRE + CLM/EDG/SAT).

Bands are asked for by common name (`red`, `nir`, `swir16`…) or band id (`B04`, `B8A`) and found in an item
whatever its naming: Earth Search asset keys (`red`, `scl`), Planetary Computer / ESA keys (`B04`, `SCL`), the
sample catalog's Theia keys (`B04`, `CLM`), or `eo:bands`. Digital numbers become reflectance with, in order:

1. `earthsearch:boa_offset_applied: true`: Earth Search already removed the offset, reflectance = DN × scale;
2. the asset's `raster:bands` `offset` (and `scale`) when the item declares one (Earth Search, Sentinel-2 C1);
3. Theia/MAJA: FRE/SRE are reflectance × 10 000, never offset;
4. Sen2Cor with `s2:processing_baseline` ≥ 04.00, or without that property and acquired on or after 2022-01-25:
   reflectance = (DN + BOA_ADD_OFFSET) / 10 000 with BOA_ADD_OFFSET = −1000; before: DN / 10 000.

DN 0 (Sen2Cor) and −10 000 (Theia) are no data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pystac
import xarray as xr

from geovigie.bands import S2_BANDS, canonical_s2_name
from geovigie.errors import BandMismatchError, EmptySearchError, InvalidInputError
from geovigie.types import LAMBERT93

Processor = Literal["sen2cor", "theia"]

COMMON_TO_BAND = {"coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
                  "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
                  "cirrus": "B10", "swir16": "B11", "swir22": "B12"}
BAND_TO_COMMON = {band: common for common, band in COMMON_TO_BAND.items()}
BASELINE_04_DATE = datetime(2022, 1, 25, tzinfo=UTC)
BOA_ADD_OFFSET = -1000
QUANTIFICATION = 10_000

MG2_SNOW_BIT = 2
"""Theia/MAJA MG2 (geophysical mask) bit for snow."""


@dataclass(frozen=True)
class MaskOptions:
    """What to mask. No data and saturated/defective pixels are always masked."""

    cloud: bool = True
    shadow: bool = True
    cirrus: bool = True
    snow: bool = True

    def scl_classes(self) -> list[int]:
        """SCL values masked."""
        values = [0, 1]
        values += [8, 9] if self.cloud else []
        values += [3] if self.shadow else []
        values += [10] if self.cirrus else []
        values += [11] if self.snow else []
        return sorted(values)

    def clm_bits(self) -> int:
        """The CLM bit field of masked conditions."""
        bits = 0
        if self.cloud:
            bits |= (1 << 1) | (1 << 2) | (1 << 3) | (1 << 7)
        if self.shadow:
            bits |= (1 << 5) | (1 << 6)
        if self.cloud and self.shadow:
            bits |= 1 << 0
        if self.cirrus:
            bits |= 1 << 4
        return bits


def processor(item: pystac.Item) -> Processor:
    """Which L2A processor made `item`: `theia` (a CLM mask or a Theia product) or `sen2cor` (an SCL band).

    Raises:
        BandMismatchError: neither mask is there (not a Sentinel-2 L2A item geovigie can mask).
    """
    keys = {k.lower() for k in item.assets}
    if "clm" in keys or str(item.properties.get("geovigie:product", "")).startswith("theia"):
        return "theia"
    if "scl" in keys:
        return "sen2cor"
    raise BandMismatchError(f"item {item.id}: no SCL (Sen2Cor) nor CLM (Theia/MAJA) mask asset among "
                            f"{', '.join(item.assets)}: not a Sentinel-2 L2A item")


def band_asset(item: pystac.Item, name: str) -> str:
    """The asset key of band `name` (a common name such as `red`, or a band id such as `B04`, `b4`, `SCL`).

    Raises:
        BandMismatchError: the item has no such band.
    """
    wanted = name.strip()
    band = COMMON_TO_BAND.get(wanted.lower(), canonical_s2_name(wanted))
    common = BAND_TO_COMMON.get(band)
    candidates = [wanted, band, band.lower(), common, f"B{int(band[1:])}" if band[1:].isdigit() else None]
    for key in candidates:
        if key and key in item.assets:
            return key
    for key, asset in item.assets.items():
        for entry in asset.extra_fields.get("eo:bands", []) or asset.extra_fields.get("bands", []) or []:
            if entry.get("name") in (band, wanted) or (common and entry.get("common_name") == common):
                return key
    known = ", ".join(item.assets)
    hint = f" (common name of {band})" if band in S2_BANDS and wanted != band else ""
    raise BandMismatchError(f"item {item.id} has no band {wanted!r}{hint}; assets: {known}")


def _baseline(item: pystac.Item) -> float | None:
    value = item.properties.get("s2:processing_baseline", item.properties.get("sentinel:processing_baseline"))
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"item {item.id}: s2:processing_baseline {value!r} is not a number") from err


def reflectance_scaling(item: pystac.Item, asset_key: str) -> tuple[float, float]:
    """(scale, offset) such that reflectance = DN × scale + offset, for one band asset (rules in the module doc)."""
    asset = item.assets[asset_key]
    bands = asset.extra_fields.get("raster:bands") or asset.extra_fields.get("bands") or [{}]
    declared = bands[0] if isinstance(bands[0], dict) else {}
    scale = float(declared.get("scale") or 1.0 / QUANTIFICATION)
    if item.properties.get("earthsearch:boa_offset_applied") is True:
        return scale, 0.0
    if declared.get("offset") is not None:
        return scale, float(declared["offset"])
    if processor(item) == "theia":
        return scale, 0.0
    baseline = _baseline(item)
    when = item.datetime or item.common_metadata.start_datetime
    shifted = baseline >= 4.0 if baseline is not None else (when is not None and when >= BASELINE_04_DATE)
    return scale, (BOA_ADD_OFFSET * scale if shifted else 0.0)


def nodata_dn(item: pystac.Item) -> float:
    """The no-data digital number of the item's reflectance bands."""
    return -10000.0 if processor(item) == "theia" else 0.0


def mask_assets(item: pystac.Item) -> list[str]:
    """The mask asset keys used for `item` (SCL, or CLM + EDG + SAT (+ MG2 when present))."""
    if processor(item) == "sen2cor":
        return [next(k for k in item.assets if k.lower() == "scl")]
    keys = {k.upper(): k for k in item.assets}
    return [keys[k] for k in ("CLM", "EDG", "SAT", "MG2") if k in keys]


def clear_from_scl(scl: Any, options: MaskOptions = MaskOptions()) -> Any:
    """True where an SCL raster (numpy or xarray, NaN = outside) says the pixel is usable."""
    valid = scl == scl  # not NaN
    return valid & ~np.isin(scl, options.scl_classes()) if isinstance(scl, np.ndarray) else \
        valid & ~scl.isin(options.scl_classes())


def clear_from_theia(clm: Any, edg: Any = None, sat: Any = None, mg2: Any = None,
                     options: MaskOptions = MaskOptions()) -> Any:
    """True where Theia masks say the pixel is usable: no masked CLM bit, EDG and SAT 0, no snow in MG2."""
    def bits(value: Any) -> Any:
        filled = value.fillna(0) if hasattr(value, "fillna") else np.nan_to_num(value)
        return filled.astype("uint16") if hasattr(filled, "astype") else filled

    clear = (clm == clm) & ((bits(clm) & options.clm_bits()) == 0)
    if edg is not None:
        clear = clear & (edg == 0)
    if sat is not None:
        clear = clear & (sat == 0)
    if mg2 is not None and options.snow:
        clear = clear & ((bits(mg2) & (1 << MG2_SNOW_BIT)) == 0)
    return clear


def _clear(item: pystac.Item, data: xr.Dataset, masks: list[str], options: MaskOptions) -> xr.DataArray:
    if processor(item) == "sen2cor":
        return clear_from_scl(data[masks[0]], options)
    named = {k.upper(): data[k] for k in masks}
    return clear_from_theia(named["CLM"], named.get("EDG"), named.get("SAT"), named.get("MG2"), options)


def load_s2(items: Sequence[pystac.Item], bands: Sequence[str], *, crs: str | None = LAMBERT93,
            resolution: float | None = 10.0, bbox: Sequence[float] | None = None, geopolygon: Any = None,
            geobox: Any = None, chunks: dict[str, int] | None = None, mask: MaskOptions | None = MaskOptions(),
            groupby: str | None = "solar_day", patch_url: Callable[[str], str] | None = None) -> xr.Dataset:
    """Sentinel-2 L2A reflectance (float32, lazy), one variable per requested band name, masked pixels NaN.

    Items of both processors and of any naming may be mixed: they are loaded in groups that share assets and
    scaling, then put together along `time` (sorted). A `clear` variable (bool) tells which pixels are usable.

    Args:
        items: Sentinel-2 L2A items (Sen2Cor or Theia).
        bands: common names or band ids (`red`, `nir`, `B8A`).
        crs, resolution: output grid (default EPSG:2154 at 10 m); ignored when `geobox` is given.
        bbox: EPSG:4326 area; `geopolygon` an odc-geo / shapely geometry (EPSG:4326) to load instead.
        mask: what to mask; None keeps every pixel (no data still NaN).
        patch_url: maps each asset URL before reading, e.g. to a cached local file.

    Raises:
        EmptySearchError: no item given.
        BandMismatchError: an item lacks a band or its mask.
    """
    import odc.stac

    if not items:
        raise EmptySearchError("no Sentinel-2 item to load")
    groups: dict[tuple[Any, ...], list[pystac.Item]] = {}
    for item in items:
        keys = tuple(band_asset(item, b) for b in bands)
        scaling = tuple(reflectance_scaling(item, k) for k in keys)
        groups.setdefault((keys, tuple(mask_assets(item)), scaling, nodata_dn(item)), []).append(item)
    grid: dict[str, Any] = {"geobox": geobox} if geobox is not None else {"crs": crs, "resolution": resolution}
    if geobox is None and geopolygon is not None:
        grid["geopolygon"] = geopolygon
    elif geobox is None and bbox is not None:
        grid["bbox"] = tuple(bbox)
    parts = []
    for (keys, masks, scaling, nodata), members in groups.items():
        raw = odc.stac.load(members, bands=[*keys, *masks], dtype="float32", chunks=dict(chunks or {"x": 1024,
                            "y": 1024}), groupby=groupby, resampling="nearest", fail_on_error=True,
                            patch_url=patch_url, **grid)
        clear = _clear(members[0], raw, list(masks), mask) if mask is not None else xr.ones_like(
            raw[keys[0]], dtype=bool)
        for key in keys:  # a pixel is usable only where every requested band has data
            clear = clear & (raw[key] == raw[key]) & (raw[key] != nodata)
        out = xr.Dataset(coords=raw.coords)
        for name, key, (scale, offset) in zip(bands, keys, scaling, strict=True):
            out[name] = (raw[key] * scale + offset).where(clear).astype("float32")
        out["clear"] = clear
        parts.append(out)
    data = parts[0] if len(parts) == 1 else xr.concat(parts, dim="time", join="outer").sortby("time")
    data.attrs["processors"] = ",".join(sorted({processor(i) for i in items}))
    return data

