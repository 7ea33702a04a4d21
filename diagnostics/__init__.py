"""Diagnostics: layers turned into the figures users act on.

Vegetation (NDVI) and surface temperature layers, per-zone figures, ZAN accounting, dump sites and their tracking,
urban heat islands, and the report that gathers them.
"""

from geovigie.diagnostics._appearance_change import (
    APPEARANCE_NOTE,
    DEFAULT_MIN_NDVI_DROP,
    DEFAULT_MIN_TEXTURE,
    AppearanceChange,
    appearance_change_candidates,
)
from geovigie.diagnostics._area_inputs import TERRITORY_ZONE, request_zones, shipped_mapping, shipped_mappings
from geovigie.diagnostics._dump_change import (
    CHANGE_NOTE,
    DEFAULT_MIN_RISE_M,
    HeightChange,
    height_change_candidates,
)
from geovigie.diagnostics._dumps import (
    CANDIDATE_NOTE,
    DEFAULT_MIN_HEIGHT_M,
    DEFAULT_NOISE_M,
    extract_sites,
    sensitive_zones,
    site_volumes,
    write_sites,
)
from geovigie.diagnostics._export import write_csv, write_vector
from geovigie.diagnostics._grid import grid_zones
from geovigie.diagnostics._heat import TemperatureSummary, temperature_layer
from geovigie.diagnostics._heat_island import (
    HOT_SPOT_CLASSES,
    HeatIslandSummary,
    HeatProxySummary,
    RuralReference,
    heat_island_layer,
    heat_proxy_layer,
    hot_spot_classes,
    hot_spot_legend,
    rural_reference,
)
from geovigie.diagnostics._report_page import (
    Figure,
    Report,
    Section,
    Table,
    bar_chart_png,
    raster_map_png,
    write_report,
)
from geovigie.diagnostics._tracking import alerts, history_table, track
from geovigie.diagnostics._vegetation import NdviSummary, check_ndvi_layer, ndvi_layer
from geovigie.diagnostics._windowed import DEFAULT_BLOCK_PX
from geovigie.diagnostics._zan_account import (
    CHANGE_CLASSES,
    ChangeSummary,
    ZanMapping,
    change_map,
    load_mapping,
    read_reference_consumption,
    zan_by_zone,
)
from geovigie.diagnostics._zonal_stats import (
    COVERED,
    DEFAULT_MIN_COVERAGE,
    DEFAULT_MIN_COVERAGE_TOTALS,
    NOT_COVERED,
    PARTIAL,
    coverage_status,
    coverage_summary,
    read_vector,
    read_zones,
    vector_crs,
    zonal_classes,
    zonal_continuous,
)

__all__ = [
    "DEFAULT_BLOCK_PX",
    "TERRITORY_ZONE",
    "request_zones",
    "shipped_mapping",
    "shipped_mappings",
    "COVERED",
    "DEFAULT_MIN_COVERAGE",
    "DEFAULT_MIN_COVERAGE_TOTALS",
    "NOT_COVERED",
    "PARTIAL",
    "check_ndvi_layer",
    "coverage_status",
    "coverage_summary",
    "vector_crs",
    "read_vector",
    "CANDIDATE_NOTE",
    "APPEARANCE_NOTE",
    "AppearanceChange",
    "DEFAULT_MIN_NDVI_DROP",
    "DEFAULT_MIN_TEXTURE",
    "appearance_change_candidates",
    "CHANGE_NOTE",
    "DEFAULT_MIN_RISE_M",
    "HeightChange",
    "height_change_candidates",
    "DEFAULT_MIN_HEIGHT_M",
    "DEFAULT_NOISE_M",
    "HOT_SPOT_CLASSES",
    "HeatIslandSummary",
    "HeatProxySummary",
    "NdviSummary",
    "RuralReference",
    "TemperatureSummary",
    "alerts",
    "extract_sites",
    "grid_zones",
    "heat_island_layer",
    "heat_proxy_layer",
    "history_table",
    "hot_spot_classes",
    "hot_spot_legend",
    "ndvi_layer",
    "rural_reference",
    "sensitive_zones",
    "site_volumes",
    "temperature_layer",
    "track",
    "write_csv",
    "write_sites",
    "write_vector",
    "read_zones",
    "Figure",
    "Report",
    "Section",
    "Table",
    "bar_chart_png",
    "raster_map_png",
    "write_report",
    "CHANGE_CLASSES",
    "ChangeSummary",
    "ZanMapping",
    "change_map",
    "load_mapping",
    "read_reference_consumption",
    "zan_by_zone",
    "zonal_classes",
    "zonal_continuous",
]
