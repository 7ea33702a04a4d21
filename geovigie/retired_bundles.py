"""Bundles no longer shipped and the shipped bundle that replaces each, without importing `geovigie.models` (the
web service checks a job's bundle name and must not import torch); `geovigie.models` re-exports both names."""

from __future__ import annotations

from pathlib import Path

RETIRED_BUNDLES: dict[str, str] = {
    "landcover-s2l1c-slovenia-v1": "landcover-s2l1c-slovenia-unet-v1",
    "landcover-s2l1c-slovenia-v2": "landcover-s2l1c-slovenia-v4",
    "landcover-s2l1c-slovenia-v3": "landcover-s2l1c-slovenia-v4",
    "artificial-surface-s2l1c-slovenia-v2": "artificial-surface-s2l1c-slovenia-v3",
    "landcover-landsat7-nc-v1": "landcover-landsat7-nc-v2",
}
"""Retired bundle name -> its successor (the retired bundles' numbers stay in BENCHMARKS.md)."""


def retired_message(name: str | Path) -> str | None:
    """The error for a retired bundle's name (or a missing folder named like one), naming its successor; None for
    anything else (a folder on disk named like a retired bundle is the user's own copy: it loads)."""
    path = Path(name)
    successor = RETIRED_BUNDLES.get(path.name)
    if successor is None or path.is_dir():
        return None
    return (f"model bundle {path.name!r} is retired: use {successor!r} instead (models/bundles/{successor}; the "
            "retired bundle's numbers are in BENCHMARKS.md)")
