"""Imagery providers and one search over them: AOI, period, collection, maximum cloud cover.

Providers: `earth-search` (Element 84), `planetary-computer` (Microsoft; assets signed with the optional
`planetary-computer` package), `local` (the project's catalog folder), any name of the settings'
`catalog_sources` (a STAC API URL or a catalog path, e.g. the project's own STAC API), any STAC API URL, any
catalog.json path. Every HTTP call has a timeout and retries with backoff (`ApiItemSource`), and every failure
names the provider and what was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pystac
from shapely.geometry import shape

from geovigie.catalog.imagery._aoi import Aoi
from geovigie.catalog.stac import ApiItemSource, SearchQuery, cloud_skip_reason, open_store
from geovigie.errors import EmptySearchError, InvalidInputError, UnknownCollectionError

PC_HOST = "planetarycomputer.microsoft.com"


class UnknownProviderError(InvalidInputError):
    """A provider name that is neither built in, configured, a URL nor a catalog path."""


@dataclass(frozen=True)
class Provider:
    """Where imagery is searched: a STAC API URL or a static catalog, and what it is known to serve."""

    name: str
    location: str
    collections: tuple[str, ...] | None = None
    """Collections served (checked without a request); None: ask the source."""
    signing: str | None = None
    """`planetary-computer` when asset URLs must be signed."""


BUILTIN = {
    "earth-search": Provider("earth-search", "https://earth-search.aws.element84.com/v1",
                             ("sentinel-2-l2a", "sentinel-2-c1-l2a", "landsat-c2-l2")),
    "planetary-computer": Provider("planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1",
                                   ("sentinel-2-l2a", "landsat-c2-l2"), signing="planetary-computer"),
}
"""The public APIs geovigie knows. Planetary Computer has no `sentinel-2-c1-l2a` collection."""


def _signing_for(location: str) -> str | None:
    return "planetary-computer" if urlsplit(location).hostname == PC_HOST else None


def resolve_provider(name: str | None, settings: Any = None) -> Provider:
    """The provider called `name` (None or `local`: the project's catalog folder).

    Order: `local`, the settings' `catalog_sources`, the built-in public APIs, an http(s) URL, a catalog path.

    Raises:
        UnknownProviderError: none of these.
    """
    if settings is None:
        from geovigie.settings import get_settings

        settings = get_settings()
    if name is None or name == "local":
        return Provider("local", str(settings.catalog_dir))
    configured: dict[str, str] = dict(getattr(settings, "catalog_sources", {}) or {})
    if name in configured:
        location = configured[name]
        builtin = next((p for p in BUILTIN.values() if p.location.rstrip("/") == location.rstrip("/")), None)
        return Provider(name, location, builtin.collections if builtin else None, _signing_for(location))
    if name in BUILTIN:
        return BUILTIN[name]
    if name.startswith(("http://", "https://")):
        builtin = next((p for p in BUILTIN.values() if p.location.rstrip("/") == name.rstrip("/")), None)
        return Provider(name, name, builtin.collections if builtin else None, _signing_for(name))
    path = Path(name)
    if path.suffix == ".json" or path.is_dir() or "/" in name or "\\" in name:
        return Provider(name, name)
    known = ["local", *configured, *BUILTIN]
    raise UnknownProviderError(f"unknown provider {name!r}: use one of {', '.join(known)}, a STAC API URL or a "
                               "catalog.json path (add names under [catalog_sources] in geovigie.toml)")


def signer(provider: Provider) -> Callable[[Any], Any] | None:
    """The function that signs the provider's items and asset URLs (None when they need none).

    Raises:
        InvalidInputError: signing is needed but the `planetary-computer` package is not installed.
    """
    if provider.signing != "planetary-computer":
        return None
    try:
        import planetary_computer
    except ImportError as err:
        raise InvalidInputError("Planetary Computer assets must be signed: pip install planetary-computer") from err
    return planetary_computer.sign_inplace


@dataclass(frozen=True)
class ImageryQuery:
    """One search: provider, collections, AOI, period (ISO 8601 interval), maximum cloud cover (%)."""

    provider: Provider
    collections: tuple[str, ...]
    aoi: Aoi | None = None
    period: str | None = None
    max_cloud: float | None = None
    max_items: int | None = 100

    def describe(self) -> str:
        """The query in words, for messages."""
        parts = [f"in {self.provider.name}"]
        if self.collections:
            parts.append(f"collections={','.join(self.collections)}")
        if self.aoi is not None:
            parts.append(f"over {self.aoi.label}")
        if self.period:
            parts.append(f"period={self.period}")
        if self.max_cloud is not None:
            parts.append(f"cloud cover ≤ {self.max_cloud:g} %")
        return " ".join(parts)


def _keep(item: pystac.Item, query: ImageryQuery) -> bool:
    if cloud_skip_reason(item, query.max_cloud) is not None:
        return False
    return query.aoi is None or item.geometry is None or shape(item.geometry).intersects(query.aoi.geometry)


def _check_collections(known: Sequence[str], wanted: Sequence[str], source: Provider) -> None:
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise UnknownCollectionError(f"unknown collection {', '.join(unknown)} in {source.name} ({source.location}); "
                                     f"known: {', '.join(sorted(known))}")


def search_imagery(provider: str | Provider | None, collections: Sequence[str] | str | None = None, *,
                   aoi: Aoi | None = None, period: str | None = None, max_cloud: float | None = None,
                   max_items: int | None = 100, settings: Any = None, timeout: float | None = None,
                   require: bool = True) -> list[pystac.Item]:
    """Search a provider for images over an AOI in a period, at most `max_cloud` % cloudy.

    Cloudy items go by the one rule of `cloud_skip_reason` (an item without `eo:cloud_cover` is kept, its masks
    decide, unless it is marked `geovigie:cloudy`). Signed providers return signed items.

    Raises:
        UnknownProviderError, UnknownCollectionError: checked before any request for the built-in APIs.
        InvalidInputError: malformed period or cloud cover.
        RemoteSourceError: the API is unreachable or answers errors (after the retries).
        EmptySearchError: nothing matched (when `require`), naming the provider, AOI, period and cloud limit.
    """
    source = provider if isinstance(provider, Provider) else resolve_provider(provider, settings)
    wanted = tuple(c for c in (collections.split(",") if isinstance(collections, str) else collections or ()) if c)
    if source.collections is not None:
        unknown = [c for c in wanted if c not in source.collections]
        if unknown:
            raise UnknownCollectionError(f"unknown collection {', '.join(unknown)} for provider {source.name}; "
                                         f"it serves: {', '.join(source.collections)}")
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise InvalidInputError(f"maximum cloud cover {max_cloud:g} %: give a number from 0 to 100")
    if period is not None:
        SearchQuery(datetime=period)  # parses the period: a clear error for malformed dates, before any request
    query = ImageryQuery(source, wanted, aoi, period, max_cloud, max_items)
    store = open_store(source.location, modifier=signer(source), timeout=timeout)
    if source.collections is None:
        _check_collections(store.collection_ids(), wanted, source)
    if isinstance(store, ApiItemSource):  # the area itself, and the cloud limit, go to the server
        found = [item for item in store.search_area(wanted, intersects=aoi.geojson() if aoi else None,
                                                    datetime=period, max_cloud=max_cloud, max_items=max_items)
                 if _keep(item, query)]
    else:
        search = SearchQuery(collections=wanted or None, bbox=aoi.bbox if aoi else None, datetime=period,
                             max_items=None)
        found = []
        for item in store.search(search):
            if _keep(item, query):
                found.append(item)
            if max_items is not None and len(found) >= max_items:
                break
    if require and not found:
        raise EmptySearchError(f"no item {query.describe()}: widen the period or the area, or raise the cloud-cover "
                               "limit")
    return found
