"""The one file hash of geovigie: SHA-256 in hex, read in blocks (model weights and their ONNX export, cached
assets, the fingerprint of an input raster)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    """SHA-256 (hex) of a file, read in blocks (`hashlib.file_digest`)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
