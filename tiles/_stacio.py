"""A pystac StacIO whose writes are atomic (temp file + rename)."""

from __future__ import annotations

from typing import Any

from pystac.stac_io import DefaultStacIO

from geovigie.atomic import atomic_path


class AtomicStacIO(DefaultStacIO):
    """Writes each STAC JSON file to a temporary sibling, then renames it into place."""

    def write_text_to_href(self, href: str, txt: str, *args: Any, **kwargs: Any) -> None:
        with atomic_path(href) as tmp:
            tmp.write_text(txt, encoding="utf-8")
