"""One description of a class, for model outputs, label nomenclatures and published layers alike."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from geovigie.types import NODATA_CLASS


class ClassInfo(BaseModel):
    """One class: the value written in class maps, its name, colour and an optional description."""

    model_config = {"frozen": True}

    value: int = Field(ge=0, le=254)
    name: str
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    description: str = ""

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        """The colour as an (r, g, b, 255) tuple."""
        h = self.color.lstrip("#")
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255


def palette(classes: Iterable[ClassInfo]) -> dict[int, tuple[int, int, int, int]]:
    """A full 256-entry uint8 palette: class colours, everything else (nodata 255 included) transparent."""
    table = {value: (0, 0, 0, 0) for value in range(256)}
    table.update({c.value: c.rgba for c in classes})
    table[NODATA_CLASS] = (0, 0, 0, 0)
    return table
