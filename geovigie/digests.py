"""Content SHA-256 of files: the one file hash of geovigie (model weights, cached assets, input rasters)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    """SHA-256 (hex) of a file's content, read in blocks (`hashlib.file_digest`).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
