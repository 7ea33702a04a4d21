from pathlib import Path

import numpy as np
import pystac
import pytest

from geovigie.cog import write_array_cog
from geovigie.tiles import LayerIndex, LayerSpec, Provenance, publish_layer, validate_offline
from tests._support.layers import CLASSES, PROFILE, class_cog


def _card(folder: Path) -> Path:
    card = folder / "card.json"
    card.write_text('{"name": "model", "version": "1"}')
    return card


def _input_item(folder: Path, when: str) -> Path:
    """A dated input item inside the data directory (what `derived_from` and the layer's datetime come from)."""
    from datetime import datetime

    folder.mkdir(parents=True, exist_ok=True)
    item = pystac.Item(f"scene-{when[:10]}", None, None, datetime.fromisoformat(when), {"eo:cloud_cover": 3.5})
    path = folder / f"{item.id}.json"
    item.save_object(dest_href=str(path), include_self_link=False)
    return path


def test_published_item_validates_offline(tmp_path: Path) -> None:
    cog = class_cog(tmp_path / "classes.tif")
    spec = LayerSpec("lc-test", "Land cover test", "classes", classes=CLASSES)
    source = _input_item(tmp_path / "inputs", "2018-07-04T10:56:21+00:00")
    item = publish_layer(tmp_path / "results", cog, spec, Provenance(
        inputs=[str(source), str(tmp_path.parent / "elsewhere/item.json")], lineage="test", bundle_id="model@1",
        bundle_card=_card(tmp_path)))
    schemas = validate_offline(item)
    assert any("classification" in s for s in schemas)
    assert any("processing" in s for s in schemas)
    assert any("projection" in s for s in schemas)
    saved = pystac.Item.from_file(str(tmp_path / "results/geovigie-results/lc-test/lc-test.json"))
    validate_offline(saved)
    classes = saved.assets["data"].extra_fields["classification:classes"]
    assert [(c["value"], c["color_hint"]) for c in classes[:2]] == [(0, "0000FF"), (1, "00FF00")]
    assert saved.properties["geovigie:model_bundle"] == "model@1"
    assert saved.properties["processing:software"]["model-bundle"] == "model@1"
    assert {link.rel for link in saved.links} >= {"derived_from", "via", "collection", "root"}
    (derived,) = saved.get_links("derived_from")  # the input outside the data directory is only named
    assert derived.href.endswith("inputs/scene-2018-07-04.json")
    assert saved.properties["geovigie:inputs"] == ["item.json"]
    assert saved.datetime is not None and saved.datetime.isoformat() == "2018-07-04T10:56:21+00:00"
    assert saved.properties["eo:cloud_cover"] == 3.5  # kept from the input
    assert saved.common_metadata.created is not None and saved.common_metadata.created.year >= 2025
    data = saved.assets["data"]
    assert data.roles == ["data", "visual"]
    assert data.extra_fields["proj:code"] == "EPSG:2154" and "proj:epsg" not in saved.properties
    (band,) = data.extra_fields["raster:bands"]
    assert (band["nodata"], band["data_type"], band["scale"], band["offset"]) == (255, "uint8", 1.0, 0.0)
    aux = tmp_path / "results/geovigie-results/lc-test/data.tif.aux.xml"
    assert saved.assets["class-names"].href == "./data.tif.aux.xml" and "<Category>forest</Category>" in aux.read_text()


def test_offline_validator_rejects_bad_extension_fields(tmp_path: Path) -> None:
    cog = class_cog(tmp_path / "classes.tif")
    item = publish_layer(tmp_path / "results", cog, LayerSpec("bad", "Bad", "classes", classes=CLASSES),
                         Provenance(inputs=[], lineage="test"))
    item.assets["data"].extra_fields["classification:classes"][0]["color_hint"] = "blue"
    with pytest.raises(pystac.errors.STACValidationError):
        validate_offline(item)


def test_republish_replaces_and_index_reads_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for title in ("first", "second"):
        publish_layer(results, class_cog(tmp_path / "c.tif"), LayerSpec("lc", title, "classes", classes=CLASSES),
                      Provenance(inputs=[], lineage="test"))
    index = LayerIndex(results)
    assert index.ids() == ["lc"]
    layer = index.get("lc")
    assert layer.title == "second"
    assert layer.legend[1] == {"value": 1, "name": "forest", "color": "#00ff00"}
    assert layer.path.is_relative_to(results.resolve())
    collection = pystac.Collection.from_file(str(results / "geovigie-results/collection.json"))
    assert len(list(collection.get_items())) == 1


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", "", "x" * 200, "%2e%2e"])
def test_index_refuses_non_ids(tmp_path: Path, bad: str) -> None:
    from geovigie.errors import LayerNotFoundError

    with pytest.raises(LayerNotFoundError):
        LayerIndex(tmp_path).get(bad)


def test_continuous_layer_with_nan_nodata_has_json_band_metadata(tmp_path: Path) -> None:
    import json

    values = np.linspace(0, 1, 300 * 300, dtype=np.float32).reshape(1, 300, 300)
    values[:, :5] = np.nan
    cog = write_array_cog(tmp_path / "ndvi.tif", values, profile={**PROFILE, "nodata": float("nan")},
                          tags={"UNIT": "NDVI"})
    item = publish_layer(tmp_path / "results", cog, LayerSpec("ndvi", "NDVI", "continuous", rescale=(0, 1)),
                         Provenance(inputs=[], lineage="test"))
    validate_offline(item)
    raw = json.loads((tmp_path / "results/geovigie-results/ndvi/ndvi.json").read_text())  # strict JSON: no NaN
    (band,) = raw["assets"]["data"]["raster:bands"]
    assert (band["nodata"], band["data_type"], band["unit"]) == ("nan", "float32", "NDVI")
    assert raw["assets"]["data"]["roles"] == ["data"] and "class-names" not in raw["assets"]
    assert raw["properties"]["datetime"] == raw["properties"]["created"]  # nothing dates it: publication time
