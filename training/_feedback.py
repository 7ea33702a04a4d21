"""Field feedback as training labels: the service's export (`GET /feedback/export`) read as a label source.

Each site keeps its latest record (a site confirmed, then reported cleaned, counts as cleaned); points become disks
of `labels.point_radius_m`, then every geometry grows (or, negative, shrinks) by `labels.buffer_m`; a class with
fewer than `labels.min_records` records is refused, naming the class, its statuses and the count. The card records
how many field records of each status the model learned from.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geovigie.training._config import ExperimentConfig
from geovigie.training._labels import FIELD_STATUSES, Grid, LabelError, Mapping, source_key


def latest_per_site(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The latest record of each site when the records name their site (`site_id`, with `watch`) and `time`
    (an `all=true` export); other files are kept as they are."""
    if "site_id" not in frame.columns or not ({"time", "date"} & set(frame.columns)):
        return frame
    keys = ["watch", "site_id"] if "watch" in frame.columns else ["site_id"]
    when = frame["time"] if "time" in frame.columns else frame["date"]
    order = pd.to_datetime(when.astype(str), utc=True, errors="coerce", format="mixed")
    ranked = frame.assign(_when=order, _row=range(len(frame))).sort_values(["_when", "_row"], na_position="first")
    named = ranked["site_id"].notna()
    latest = ranked[named].drop_duplicates(keys, keep="last")
    kept = pd.concat([ranked[~named], latest]).sort_values("_row").drop(columns=["_when", "_row"])
    return gpd.GeoDataFrame(kept, geometry=frame.geometry.name, crs=frame.crs)


def check_record_counts(frame: gpd.GeoDataFrame, mapping: Mapping, min_records: int, where: str) -> dict[str, int]:
    """Records per class; a class with fewer than `min_records` is an error naming it and its statuses."""
    per_class: dict[str, int] = {}
    keys = [source_key(s) for s in frame["status"]]
    for value, name in enumerate(mapping.class_names):
        statuses = sorted(k for k, v in mapping.to_class.items() if v == value)
        count = sum(k in statuses for k in keys)
        per_class[name] = count
        if count < min_records:
            raise LabelError(f"{where}: {count} field record(s) for class {name!r} (status {', '.join(statuses)}); at "
                             f"least {min_records} are needed per class (labels.min_records): collect more feedback "
                             "or lower labels.min_records")
    return per_class


def prepare_records(frame: gpd.GeoDataFrame, config: ExperimentConfig, mapping: Mapping,
                    where: str) -> gpd.GeoDataFrame:
    """Latest record per site, counts checked (see the module docstring)."""
    frame = latest_per_site(frame)
    check_record_counts(frame, mapping, config.labels.min_records, where)
    return frame


def records_on_grid(frame: gpd.GeoDataFrame, grid: Grid, point_radius_m: float, buffer_m: float,
                    where: str) -> gpd.GeoDataFrame:
    """Records in the grid's CRS as polygons over the grid: points as disks of `point_radius_m`, everything buffered
    by `buffer_m` (geometries a negative buffer empties are dropped); may be empty."""
    out = frame.to_crs(grid.crs)
    if out.crs is not None and out.crs.is_geographic:
        raise LabelError(f"{where}: the image CRS {grid.crs} is geographic; buffers need a projected CRS")
    out = out.copy()
    points = out.geom_type.isin(["Point", "MultiPoint"])
    out.loc[points, "geometry"] = out.loc[points, "geometry"].buffer(point_radius_m)
    if buffer_m:
        out["geometry"] = out.geometry.buffer(buffer_m)
    kept = out[~out.geometry.is_empty]
    if kept.empty and len(out):
        raise LabelError(f"{where}: labels.buffer_m = {buffer_m:g} erases every site; use a smaller inward buffer")
    from shapely.geometry import box

    return kept[kept.intersects(box(*grid.bounds))]  # feedback is sparse: an image may have no visited site


def field_provenance(config: ExperimentConfig, mapping: Mapping, grids: list[Grid]) -> dict[str, Any]:
    """What the card says about field labels: records per status over the images (each site's latest record, those
    touching an image's footprint), records per class learned from, the buffer and the minimum; {} for other label
    sources."""
    if config.labels.source != "field-validation":
        return {}
    from shapely.geometry import box

    from geovigie.training._data import image_sources
    from geovigie.training._labels import read_vectors

    paths = sorted({s.labels for s in image_sources(config) if s.labels is not None})
    statuses = []
    for path in paths:
        frame = latest_per_site(read_vectors(path, config.labels.layer, "status", field_validation=True))
        over = np.zeros(len(frame), dtype=bool)
        for grid in grids:
            over |= frame.to_crs(grid.crs).intersects(box(*grid.bounds)).to_numpy()
        statuses += [str(s) for s in frame.loc[over, "status"]]
    per_status = {**dict.fromkeys(FIELD_STATUSES, 0), **pd.Series(statuses, dtype=object).value_counts().to_dict()}
    keys = [source_key(s) for s in statuses]
    per_class = {name: sum(mapping.to_class.get(k) == value for k in keys)
                 for value, name in enumerate(mapping.class_names)}
    return {"field_records": {str(k): int(v) for k, v in per_status.items()}, "field_records_per_class": per_class,
            "field_records_learned_from": sum(per_class.values()), "field_label_files": [str(p) for p in paths],
            "buffer_m": config.labels.buffer_m, "min_records": config.labels.min_records}
