"""Domain errors and warnings shared by every geovigie subpackage.

Every error carries a one-line, actionable message naming the file, band, CRS or
collection at fault; the CLI prints it without a traceback and `service/` maps
each class to an HTTP status once.
"""

from __future__ import annotations


class GeovigieError(Exception):
    """Root of every error geovigie raises on purpose."""


class InputNotFoundError(GeovigieError, FileNotFoundError):
    """An input file, STAC item or bundle does not exist."""


class InvalidRasterError(GeovigieError, ValueError):
    """A raster cannot be used as given (no CRS, unreadable, wrong dtype)."""


class BandMismatchError(GeovigieError, ValueError):
    """A raster's bands or product level do not match what a model bundle expects."""


class ValueRangeError(BandMismatchError):
    """A raster's values lie outside the range its model bundle expects (e.g. digital numbers for reflectance)."""


class EmptyInputError(InvalidRasterError):
    """A raster holds no valid pixel: every value is nodata or not finite."""


class RemoteSourceError(GeovigieError, OSError):
    """A remote STAC API or asset server is unreachable, timed out, or answered an error or unusable data."""


class DatabaseError(GeovigieError, OSError):
    """The PostgreSQL database behind the STAC API cannot be started, reached or used."""


class PostgresNotInstalledError(DatabaseError):
    """The PostgreSQL server programs (initdb, pg_ctl) or PostGIS are not installed."""


class BundleError(GeovigieError, ValueError):
    """A model bundle is unreadable, corrupt (weights checksum) or inconsistent with its card."""


class UnknownCollectionError(GeovigieError, KeyError):
    """A STAC collection id is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it plain
        return str(self.args[0]) if self.args else ""


class EmptySearchError(GeovigieError, LookupError):
    """A catalog search matched no item."""


class LayerNotFoundError(GeovigieError, KeyError):
    """A published layer id is unknown."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TileOutsideBoundsError(GeovigieError, ValueError):
    """A requested map tile does not intersect the layer."""


class DeviceUnavailableError(GeovigieError, RuntimeError):
    """The configured compute device (e.g. CUDA) is not available."""


class InvalidInputError(GeovigieError, ValueError):
    """A value given by the user (bbox, date, table, geometry, option) is malformed or inconsistent."""


class InvalidZonesError(InvalidInputError):
    """A zone layer cannot be used: no id field, duplicate or missing ids, no polygon, unreadable."""


class GridMismatchError(GeovigieError, ValueError):
    """Two rasters that must share a grid (CRS, transform, shape) do not, and cannot be aligned."""


class GeovigieWarning(UserWarning):
    """Root of geovigie's warnings; tests turn these into errors."""


class ForcedMismatchWarning(GeovigieWarning):
    """Inference runs on imagery that does not match the bundle because the user forced it."""


class DiagnosticsWarning(GeovigieWarning):
    """A diagnostic ran but part of its input was repaired, skipped or outside the layer."""
