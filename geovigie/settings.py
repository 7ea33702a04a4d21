"""One settings object, read from `geovigie.toml` and `GEOVIGIE_*` environment variables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from geovigie.config_file import read_toml
from geovigie.errors import InputNotFoundError
from geovigie.types import DeviceName

DEFAULT_TOML = Path("geovigie.toml")
SAMPLE_MARKER = Path("s2-l1c-slovenia") / "lulc_mask.tif"
"""A file every copy of the shipped sample data holds."""


class Settings(BaseSettings):
    """Runtime configuration.

    Precedence, highest first: constructor arguments, `GEOVIGIE_*` environment variables,
    `geovigie.toml` in the working directory (or the file named by `GEOVIGIE_CONFIG`), defaults.
    """

    model_config = SettingsConfigDict(env_prefix="GEOVIGIE_", toml_file=DEFAULT_TOML, extra="forbid")

    data_dir: Path = Field(Path("geovigie-data"), description="Where catalogs, results and layers are written.")
    sample_data_dir: Path | None = Field(
        None, description="The real sample data (the data/ folder of a geovigie checkout); found when unset."
    )
    catalog_sources: dict[str, str] = Field(
        default_factory=dict,
        description="Named STAC sources: a local catalog.json path or a STAC API URL.",
    )
    cache_dir: Path | None = Field(
        None, description="Downloaded imagery assets, shared by every command; DATA_DIR/cache when unset."
    )
    device: DeviceName = Field("auto", description="Torch device for inference: auto, cpu or cuda.")
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")
    dask_scheduler: str | None = Field(
        None, description="Address of an existing Dask scheduler; a LocalCluster is started when unset."
    )
    dask_workers: int = Field(1, ge=1, description="Workers of the LocalCluster started when no scheduler is set.")
    dask_threads_per_worker: int = Field(2, ge=1)
    dask_processes: bool = Field(
        False, description="LocalCluster workers as processes (True) or threads of this process (False)."
    )
    tile_size: int = Field(256, ge=32, description="Inference tile size in pixels.")
    overlap: int = Field(64, ge=0, description="Overlap between neighbouring inference tiles, in pixels.")
    batch_size: int = Field(8, ge=1, description="Tiles per model forward pass.")
    runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="Inference runtime: onnx (ONNX Runtime, needs the bundle's model.onnx), torch, or auto "
        "(ONNX Runtime when the bundle has an export: faster on CPU, BENCHMARKS.md).")
    input_scale: float = Field(1.0, description="Raw input values are multiplied by this before the model "
                               "(e.g. 0.0001 for Sentinel-2 digital numbers fed to a reflectance model).")
    input_offset: float = Field(0.0, description="Added to the scaled input values (e.g. -0.1 for the L2A offset).")
    chunk_tiles: int = Field(8, ge=1, description="Tiles per side of the chunk one inference task reads and blends.")
    channels_last: bool = Field(False, description="Torch channels-last memory format (faster on some CPUs/GPUs).")
    database_url: str | None = Field(
        None, description="PostgreSQL server (with PostGIS) of the STAC API, postgresql://user:pass@host:port/db; "
        "geovigie runs its own private cluster under DATA_DIR/postgres when unset.")
    stac_backend: Literal["auto", "pgstac", "static"] = Field(
        "auto", description="Where published layers go: pgstac (the STAC API; the static catalog is kept as an "
        "export), static (the static catalog only), auto (pgstac when database_url is set or PostgreSQL is "
        "installed, else static).")
    stac_api_transactions: bool = Field(
        False, description="Let clients write items through the STAC API (POST/PUT/DELETE): anyone who reaches "
        "the port could then write.")
    postgres_bin_dir: Path | None = Field(
        None, description="Folder of initdb and pg_ctl for the private cluster; PATH and /usr/lib/postgresql/*/bin "
        "when unset.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = Field(
        None, description="The service's address as its users reach it (https://geo.example.fr/geovigie), used for "
        "every absolute link (TileJSON, WMTS, STAC links and assets); http://HOST:PORT when unset. Links never come "
        "from a request's Host or X-Forwarded-* headers.")
    http_timeout: float = Field(30.0, gt=0, le=3600, description="Seconds every HTTP request to a remote source "
                                "(STAC API, asset download, WMS, GDAL reads) may wait to connect or between two reads.")

    tile_cache_mb: int = Field(64, ge=0, description="Memory (MiB) for rendered tiles kept by each service "
                               "process (0: none).")
    tile_cache_dir: Path | None = Field(
        None, description="Folder of rendered tiles shared by the service's worker processes (none when unset).")

    # writes (keys, jobs, feedback): see the README section "Writes: keys, jobs, feedback, features"
    read_requires_key: bool = Field(
        False, description="Require an API key for reads too (layers, tiles, sites, jobs, features); writes always "
        "require one.")
    rate_limit_per_minute: int = Field(
        120, ge=1, description="Requests per minute and API key (token bucket; a burst of this many is allowed).")
    remote_url_allow_list: list[str] = Field(
        default_factory=list, description="Hosts (example.org, or *.example.org for its subdomains) whose URLs a job "
        "request may name (STAC APIs, WMS); none when empty. Loopback, private and link-local addresses are refused "
        "whatever this says.")
    job_max_area_km2: float = Field(10000.0, gt=0, description="Largest territory a job may cover (km²).")
    job_runner: bool = Field(
        True, description="`geovigie serve` starts a `geovigie jobs worker` process beside the service; False when "
        "workers are run by hand (any machine reaching the database and the data folder).")
    job_stale_after_s: float = Field(
        60.0, gt=0, description="A running job whose runner has not reported for this long is taken over by another "
        "runner (its finished work is kept).")

    @field_validator("overlap")
    @classmethod
    def _overlap_below_tile(cls, value: int, info: Any) -> int:
        check_tiling(info.data.get("tile_size", 256), value)
        return value

    @field_validator("input_scale", "input_offset")
    @classmethod
    def _input_scaling(cls, value: float, info: Any) -> float:
        check_input_scaling(**{info.field_name: value})
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            scheme = value.split("://", 1)[0] if "://" in value else "no scheme"
            raise ValueError(f"database_url must be a postgresql:// URL (got {scheme}), e.g. "
                             "postgresql://geovigie:secret@db.example:5432/geovigie")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError(f"public_url must be an http(s):// URL without query or fragment (got {value!r})")
        return value.rstrip("/")

    @property
    def public_base_url(self) -> str:
        """The absolute base of every link the service gives out (no trailing slash)."""
        return self.public_url or f"http://{self.host}:{self.port}"

    def sample_data_path(self) -> Path:
        """The sample data folder: the configured one, else the checkout's `data/`, else `./data`.

        Raises:
            InputNotFoundError: no copy of the sample data is found.
        """
        if self.sample_data_dir is not None:
            candidates = [self.sample_data_dir]
        else:
            candidates = [Path(__file__).resolve().parent.parent / "data", Path("data")]
        for folder in candidates:
            if (folder / SAMPLE_MARKER).is_file():
                return folder
        raise InputNotFoundError(
            f"sample data not found in {', '.join(map(str, candidates))}: set GEOVIGIE_SAMPLE_DATA_DIR to the data/ "
            "folder of a geovigie checkout"
        )

    @property
    def catalog_dir(self) -> Path:
        """The local STAC catalog of input imagery."""
        return self.data_dir / "catalog"

    @property
    def results_dir(self) -> Path:
        """The STAC catalog of published results (layers)."""
        return self.data_dir / "results"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file()))


def check_tiling(tile_size: int, overlap: int) -> None:
    """The one tiling rule of settings, batch tasks and experiments: tiles overlap by less than their size.

    Raises:
        ValueError: overlap >= tile_size (pydantic validators turn it into the key's message).
    """
    if overlap >= tile_size:
        raise ValueError(f"overlap ({overlap}) must be smaller than tile_size ({tile_size})")


def check_input_scaling(input_scale: float = 1.0, input_offset: float = 0.0) -> None:
    """The one rule of raw-value scaling (settings and prediction options): a finite scale above zero, a finite
    offset.

    Raises:
        ValueError: naming the value that breaks it.
    """
    if not (math.isfinite(input_scale) and input_scale > 0):
        raise ValueError(f"input_scale must be a finite number above 0 (got {input_scale})")
    if not math.isfinite(input_offset):
        raise ValueError(f"input_offset must be a finite number (got {input_offset})")


def config_file() -> Path:
    """The TOML file settings are read from: `GEOVIGIE_CONFIG` (which must exist), else ./geovigie.toml if any.

    Raises:
        InputNotFoundError: `GEOVIGIE_CONFIG` names a missing file.
        InvalidInputError: the file is not valid TOML.
    """
    import os

    named = os.environ.get("GEOVIGIE_CONFIG")
    path = Path(named) if named else DEFAULT_TOML
    if named and not path.is_file():
        raise InputNotFoundError(f"GEOVIGIE_CONFIG names {path}, which does not exist")
    if path.is_file():
        read_toml(path, "settings file")  # the one strict reader: a clear error before pydantic-settings reads it
    return path


def get_settings(**overrides: Any) -> Settings:
    """Build settings now (never at import time)."""
    return Settings(**overrides)
