"""The sample catalog: the real images shipped in `data/` (Gers, Slovenia, Münster) as a static STAC catalog, and
the ids of its collections."""

from geovigie.catalog.samples._build import (
    GERS,
    MUENSTER,
    SAMPLE_COLLECTIONS,
    SLOVENIA,
    SLOVENIA_LABELS,
    build_sample_catalog,
)

__all__ = ["GERS", "MUENSTER", "SAMPLE_COLLECTIONS", "SLOVENIA", "SLOVENIA_LABELS", "build_sample_catalog"]
