"""Sentinel-2 MSI band metadata (name, common name, centre wavelength in µm), shared by every subpackage."""

from __future__ import annotations

S2_BANDS: dict[str, tuple[str | None, float]] = {
    "B01": ("coastal", 0.443),
    "B02": ("blue", 0.490),
    "B03": ("green", 0.560),
    "B04": ("red", 0.665),
    "B05": ("rededge", 0.705),
    "B06": ("rededge", 0.740),
    "B07": ("rededge", 0.783),
    "B08": ("nir", 0.842),
    "B8A": ("nir08", 0.865),
    "B09": ("nir09", 0.945),
    "B10": ("cirrus", 1.375),
    "B11": ("swir16", 1.610),
    "B12": ("swir22", 2.190),
}


def eo_band(name: str) -> dict[str, object]:
    """The `eo:bands` entry of a Sentinel-2 band."""
    common, wavelength = S2_BANDS[name]
    entry: dict[str, object] = {"name": name, "center_wavelength": wavelength}
    if common:
        entry["common_name"] = common
    return entry


def canonical_s2_name(name: str) -> str:
    """`B4`, `b04`, `B04` -> `B04`; `B8A` stays `B8A`. Unknown names are returned upper-cased."""
    upper = name.upper()
    if upper.startswith("B") and upper[1:].isdigit():
        return f"B{int(upper[1:]):02d}"
    return upper
