"""Dump-site feedback records on the shipped LiDAR HD tile, as a training config."""

from __future__ import annotations

from pathlib import Path

import rasterio
from shapely.geometry import box

from tests.conftest import DATA

DSM = DATA / "lidarhd-montpellier-ign" / "DSM" / "test_data_77050_627755_LA93_IGN69_50CM_TIN.tif"


def feedback_config(folder: Path, name: str, statuses: list[str], **labels: object) -> Path:
    """The shipped dump-site feedback config with its labels.path on feedback records written here."""
    import tomllib

    from shapely.geometry import mapping

    from geovigie.training import field_record, write_field_records
    from tests.conftest import REPO
    from tests.training.conftest import write_toml

    shipped = REPO / "training" / "configs" / "dump-sites-feedback-lidarhd-montpellier.toml"
    with rasterio.open(DSM) as src:
        x0, y0 = src.bounds.left, src.bounds.top
    far = 100_000.0 if labels.pop("__far__", False) else 0.0  # sites visited in another département
    records = [field_record(mapping(box(x0 + far + 5 + 8 * i, y0 - 20, x0 + far + 10 + 8 * i, y0 - 15)), status,
                            "2024-06-01", "agent", site_id=f"s{i}", watch="w") for i, status in enumerate(statuses)]
    labels_path = write_field_records(folder / f"{name}.geojson", records, crs="EPSG:2154")
    data = tomllib.loads(shipped.read_text())
    data["labels"] = {**data["labels"], "path": str(labels_path), **labels}
    data["images"]["files"] = [{**f, "paths": [str((shipped.parent / p).resolve()) for p in f["paths"]]}
                               for f in data["images"]["files"]]
    return write_toml(folder / f"{name}.toml", data)
