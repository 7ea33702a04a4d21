"""What geovigie publishes, read as third-party tools read it: official STAC schemas, GDAL, odc-stac."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pystac
import pytest
from affine import Affine
from pystac.validation.stac_validator import GetSchemaError

from geovigie.catalog.samples import build_sample_catalog
from geovigie.classes import ClassInfo
from geovigie.cog import write_array_cog
from geovigie.tiles import LayerSpec, Provenance, publish_layer, validate_offline
from geovigie.tiles._validate import SCHEMA_DIR, shipped_schemas
from tests.conftest import require

DATA = Path(__file__).resolve().parents[1] / "data"
PROFILE = {"driver": "GTiff", "crs": "EPSG:2154", "transform": Affine(10, 0, 470000, 0, -10, 6290000)}
CLASSES = [ClassInfo(value=0, name="water", color="#0000ff"), ClassInfo(value=1, name="forêt", color="#00ff00")]


def _stac_files(folder: Path) -> list[Path]:
    """Every STAC object (item, collection, catalog) written under `folder`."""
    found = []
    for path in sorted(folder.rglob("*.json")):
        try:
            kind = json.loads(path.read_text(encoding="utf-8")).get("type")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if kind in ("Feature", "Collection", "Catalog"):
            found.append(path)
    return found


def _check_metadata(obj: pystac.STACObject, path: Path) -> None:
    """What issue 20 asks of every published object beyond the schemas."""
    data = obj.to_dict(include_self_link=False)
    if isinstance(obj, pystac.Collection):
        if obj.license == "other":
            assert obj.get_links("license"), f"{path}: licence 'other' without a license link"
        return
    if not isinstance(obj, pystac.Item):
        return
    props = data["properties"]
    assert props.get("datetime") or (props.get("start_datetime") and props.get("end_datetime")), path
    assert "proj:epsg" not in props and all("proj:epsg" not in a for a in data["assets"].values()), path
    assert not any(str(v).startswith(("https://stac-extensions.github.io/projection/v1",)) for v in
                   data.get("stac_extensions", [])), path
    for key, asset in data["assets"].items():
        roles = asset.get("roles", [])
        assert len(roles) == len(set(roles)), f"{path}: asset {key} roles {roles}"
        if asset.get("type", "").startswith("image/tiff") and "data" in roles:
            bands = asset.get("raster:bands")
            assert bands, f"{path}: data asset {key} without raster:bands"
            # nodata where the file declares one (absent: every value is data, as the raster extension reads it)
            assert all({"data_type", "scale", "offset"} <= set(b) for b in bands), f"{path}: {key} {bands}"


def test_shipped_schemas_are_the_official_ones() -> None:
    schemas = shipped_schemas()
    for uri, schema in schemas.items():
        assert schema["$id"].rstrip("#") == uri  # each file is the schema its URI names
    assert (SCHEMA_DIR / "README.md").read_text().count("Apache-2.0") >= 8
    written = {"classification/v2.0.0", "eo/v1.1.0", "file/v2.1.0", "mlm/v1.4.0", "processing/v1.2.0",
               "projection/v2.0.0", "raster/v1.1.0", "render/v2.0.0"}
    assert {f"https://stac-extensions.github.io/{w}/schema.json" for w in written} <= set(schemas)


def test_unknown_extension_fails_instead_of_passing(tmp_path: Path) -> None:
    item = pystac.Item("x", None, None, None, {"start_datetime": "2020-01-01T00:00:00Z",
                                                "end_datetime": "2020-01-02T00:00:00Z"})
    item.stac_extensions.append("https://stac-extensions.github.io/sar/v1.0.0/schema.json")
    with pytest.raises(GetSchemaError, match="sar"):
        validate_offline(item)


def test_sample_catalog_valid_against_official_schemas(tmp_path: Path) -> None:
    build_sample_catalog(DATA, tmp_path / "catalog")
    files = _stac_files(tmp_path / "catalog")
    assert len(files) >= 10  # catalog, 3 collections, the items
    for path in files:
        obj = pystac.read_file(str(path))
        validate_offline(obj)
        _check_metadata(obj, path)
    gers = pystac.Collection.from_file(str(tmp_path / "catalog/s2-l2a-theia-gers/collection.json"))
    (scene,) = gers.get_items()
    assert 0 < scene.properties["eo:cloud_cover"] < 5  # the window's one cumulus, from the Theia cloud mask
    assert gers.summaries.get_list("platform") == ["sentinel-2b"]


def test_demo_like_layers_valid_and_readable_by_gdal_and_odc_stac(tmp_path: Path) -> None:
    """Two dates of one place published as a class layer with probabilities: schemas, GDAL, odc-stac."""
    import odc.stac

    results = tmp_path / "results"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    published = []
    for day, cloud in (("2018-07-04T10:56:21+00:00", 2.0), ("2019-08-10T10:50:31+00:00", 11.5)):
        from datetime import datetime

        scene = pystac.Item(f"scene-{day[:10]}", None, None, datetime.fromisoformat(day),
                            {"eo:cloud_cover": cloud, "platform": "sentinel-2a"})
        scene.save_object(dest_href=str(inputs / f"{scene.id}.json"), include_self_link=False)
        classes = np.zeros((1, 300, 300), np.uint8)
        classes[:, :, 150:] = 1
        classes[:, :10, :10] = 255
        cog = write_array_cog(tmp_path / f"c-{day[:4]}.tif", classes, profile={**PROFILE, "nodata": 255})
        proba = np.full((2, 300, 300), 125, np.uint8)
        proba_cog = write_array_cog(tmp_path / f"p-{day[:4]}.tif", proba, profile={**PROFILE, "nodata": 255},
                                    scales=[0.004, 0.004], offsets=[0.0, 0.0])
        published.append(publish_layer(results, cog, LayerSpec(f"lc-{day[:4]}", "Land cover", "classes",
                                                               classes=CLASSES), Provenance(
            inputs=[str(inputs / f"{scene.id}.json")], lineage="test",
            extra_assets={"probabilities": (proba_cog, "Class probabilities (value x 0.004)")})))
    for path in _stac_files(results):
        obj = pystac.read_file(str(path))
        validate_offline(obj)
        _check_metadata(obj, path)
    first = published[0]
    assert first.properties["eo:cloud_cover"] == 2.0 and first.properties["platform"] == "sentinel-2a"
    (band,) = first.assets["data"].extra_fields["raster:bands"]
    assert first.assets["data"].extra_fields["classification:classes"][1]["description"] == "forêt"
    probabilities = first.assets["probabilities"].extra_fields["raster:bands"]
    assert [(b["scale"], b["offset"], b["nodata"], b["data_type"]) for b in probabilities] == \
        [(0.004, 0.0, 255, "uint8")] * 2
    assert first.assets["probabilities"].extra_fields["proj:code"] == "EPSG:2154"

    require(shutil.which("gdalinfo") is not None, "gdalinfo (apt gdal-bin) not installed")
    folder = results / "geovigie-results/lc-2018"
    classes_info = subprocess.run(["gdalinfo", str(folder / "data.tif")], capture_output=True, text=True, check=True)
    assert "Categories:" in classes_info.stdout and "1: forêt" in classes_info.stdout
    proba_info = subprocess.run(["gdalinfo", str(folder / "probabilities.tif")], capture_output=True, text=True,
                                check=True)
    assert proba_info.stdout.count("Scale:0.004") == 2

    items = [pystac.Item.from_file(str(results / f"geovigie-results/{i.id}/{i.id}.json")) for i in published]
    loaded = odc.stac.load(items, bands=["data"], chunks={})
    assert loaded.sizes["time"] == 2  # two acquisition dates, two time steps
    assert [str(t)[:10] for t in loaded.time.values] == ["2018-07-04", "2019-08-10"]


def test_demo_run_publishes_only_valid_stac(demo_run) -> None:
    """Every item and collection the demo writes (inputs catalog and results) against the official schemas."""
    settings, report = demo_run
    files = _stac_files(settings.results_dir) + _stac_files(settings.catalog_dir)
    assert len(files) >= len(report.layers) + 4
    checked: dict[str, int] = {}
    for path in files:
        obj = pystac.read_file(str(path))
        for uri in validate_offline(obj):
            checked[uri] = checked.get(uri, 0) + 1
        _check_metadata(obj, path)
    assert not [u for u in checked if "projection/v1" in u]
    for extension in ("projection/v2.0.0", "raster/v1.1.0", "classification/v2.0.0", "processing/v1.2.0",
                      "render/v2.0.0"):
        assert checked.get(f"https://stac-extensions.github.io/{extension}/schema.json", 0) > 0, extension
    layers = [pystac.Item.from_file(str(p)) for p in files if p.parent.parent.name == "geovigie-results"
              and p.stem == p.parent.name]
    years = {(i.datetime or i.common_metadata.start_datetime).year for i in layers if i.id.startswith("lst-")}
    assert years == {2024, 2025}  # acquisition dates, not the publication date
