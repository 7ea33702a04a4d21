"""Which band (probability) or value (class map) of a detector's output holds the dump sites, and what the detector
is worth.

`geovigie predict` writes per input a probability COG (uint8 value / 250, one band per class of the bundle, each
band described by its class name) and a class COG (one band described "class", the card's class values), both
tagged `GEOVIGIE_BUNDLE` = name@version. `detector_layer` picks the dump class by name: from the band descriptions,
the class names a STAC item gives, or the bundle card (its classes, in band order); without a name it takes the
card's positive class (the class the field's "confirmed" maps to), or the one class not named "background".

A detector is validated only when its card says so: `provenance.validation.held_out_field_labels`, the number of
field records, kept out of its training, it was checked on (written by whoever ran that field check). No shipped
bundle has it: the feedback detector learns from every field record it gets, so none is left to validate it, and
its sites stay « candidats ».
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pystac
import rasterio
from rasterio.errors import RasterioIOError

from geovigie.catalog.stac import read_item
from geovigie.errors import InputNotFoundError, InvalidInputError, InvalidRasterError
from geovigie.tiles import MODEL_CARD_ASSET, Layer

BUNDLE_TAG = "GEOVIGIE_BUNDLE"
"""The tag `geovigie predict` writes on both of its COGs (geovigie.inference BUNDLE_TAG): the bundle's name@version."""
CLASS_BAND = "class"
"""The description of the one band of `predict`'s class COG."""
BACKGROUND = "background"
NAME_IT = "name the dump class (class name, --class-name)"


@dataclass(frozen=True)
class DetectorLayer:
    """The raster band a dump pass is read from, the class it holds and the detector that made it.

    `note` says, in every output, why the sites are « candidats » (or on what the detector was validated).
    """

    path: Path
    kind: Literal["probability", "class"] = "probability"
    band: int = 1
    class_value: int | None = None
    class_name: str | None = None
    bundle_id: str | None = None
    card_path: Path | None = None
    validated: bool = False
    note: str = ""

    @property
    def bundle_version(self) -> str | None:
        """The bundle's version (after the @ of its id), None when no bundle is known."""
        if not self.bundle_id or "@" not in self.bundle_id:
            return None
        return self.bundle_id.rpartition("@")[2]


def read_card(path: str | Path) -> dict[str, Any]:
    """A bundle card (card.json, or a bundle folder holding one) as JSON, without loading the model.

    Raises:
        InputNotFoundError: no such card.
        InvalidInputError: not a model card (name, version and classes needed).
    """
    path = Path(path)
    card_path = path / "card.json" if path.is_dir() else path
    if not card_path.is_file():
        raise InputNotFoundError(f"{path}: no model card (card.json)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        classes = [str(c["name"]) for c in card["classes"]]
        ok = isinstance(card["name"], str) and isinstance(card["version"], str) and classes
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InvalidInputError(f"{card_path}: not a model card ({err})") from err
    if not ok:
        raise InvalidInputError(f"{card_path}: not a model card (name, version and classes needed)")
    return dict(card)


def card_id(card: Mapping[str, Any]) -> str:
    """`name@version` of a card, the id `predict` tags its outputs with."""
    return f"{card['name']}@{card['version']}"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def detector_validation(card: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the card says its detector was validated on held-out field labels, and the sentence saying so."""
    ident = card_id(card)
    provenance = _mapping(card.get("provenance"))
    check = _mapping(provenance.get("validation"))
    held = check.get("held_out_field_labels")
    if isinstance(held, int) and not isinstance(held, bool) and held > 0:
        report = str(check.get("report") or "see its card")
        return True, f"detector {ident} validated on {held} held-out field labels ({report})"
    learned = _mapping(provenance.get("labels")).get("field_records_learned_from")
    note = (f"candidats: detector {ident} is not validated on held-out field labels (its card records no "
            "provenance.validation)")
    if learned:
        note += f"; it learned from {learned} field records, so none of them can validate it"
    return False, note + "; check on site before any action"


def _unknown_card_note(bundle_id: str) -> str:
    return (f"candidats: predicted by {bundle_id}, whose card was not given (--bundle, or the layer's STAC item): "
            "its validation is unknown; check on site before any action")


def _raster_facts(path: Path) -> tuple[int, list[str], dict[str, str], str]:
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such raster")
    try:
        with rasterio.open(path) as src:
            return src.count, [d or "" for d in src.descriptions], dict(src.tags()), src.dtypes[0]
    except RasterioIOError as exc:
        raise InvalidRasterError(f"{path}: not a readable raster ({exc})") from exc


def _positive(names: list[str], card: Mapping[str, Any] | None) -> list[int]:
    """Indices of the classes that may be the dump class: the card's "confirmed" class, else every class not named
    background."""
    mapping = card.get("label_mapping") if card is not None else None
    if isinstance(mapping, dict) and isinstance(mapping.get("confirmed"), int) and 0 <= mapping["confirmed"] < len(
            names):
        return [int(mapping["confirmed"])]
    return [i for i, name in enumerate(names) if name.strip().casefold() != BACKGROUND]


def _choose(names: list[str], class_name: str | None, card: Mapping[str, Any] | None, where: str) -> int:
    """Index of the dump class among `names` (by `class_name`, else the positive class)."""
    listed = ", ".join(repr(n) for n in names)
    if class_name is not None:
        exact = [i for i, name in enumerate(names) if name == class_name]
        folded = [i for i, name in enumerate(names) if name.casefold() == class_name.casefold()]
        found = exact or folded
        if len(found) != 1:
            raise InvalidInputError(f"{where}: no class {class_name!r}; its classes are {listed}")
        return found[0]
    positive = _positive(names, card)
    if len(positive) != 1:
        raise InvalidInputError(f"{where}: {len(names)} classes ({listed}) and {len(positive)} of them are not "
                                f"background; {NAME_IT}")
    return positive[0]


def _names_of(card: Mapping[str, Any] | None) -> list[str]:
    return [str(c["name"]) for c in card["classes"]] if card is not None else []


def detector_layer(
    path: str | Path,
    *,
    class_name: str | None = None,
    class_value: int | None = None,
    card: Mapping[str, Any] | None = None,
    card_path: Path | None = None,
    class_names: Mapping[int, str] | None = None,
    claimed_validated: bool = False,
) -> DetectorLayer:
    """Resolve the band or class of the dump sites in `path`, and whether its sites are « candidats ».

    A single-band layer whose band is described "class" (or any layer with `class_value`) is a class map; anything
    else a probability layer. A probability layer with several bands needs them named (band descriptions, or the
    card's classes when it has as many); one unnamed band is read as it is (a stand-in or a one-class output).

    Args:
        path: the raster (predict's probability or class COG, or any single-band stand-in).
        class_name: the dump class by name; None: the card's positive class (see the module docstring).
        class_value: the dump class by value in a class map (the older way; not with `class_name`).
        card: the bundle card (JSON, `read_card`) of the detector that wrote `path`, when known.
        card_path: where that card is (copied beside the published sites).
        class_names: value -> name of a class map's classes (a STAC item's `classification:classes`).
        claimed_validated: the caller says the layer is a validated detector's output; refused when the layer
            names a bundle whose card does not say so, or whose card is missing.

    Raises:
        InvalidInputError: class not found (the error lists the classes), unnamed bands, both class_name and
            class_value, a card of another bundle, or a validation the card does not support.
    """
    path = Path(path)
    count, descriptions, tags, dtype = _raster_facts(path)
    where = str(path)
    tagged = tags.get(BUNDLE_TAG) or None
    if card is not None and tagged and tagged != card_id(card):
        raise InvalidInputError(f"{where}: predicted by {tagged}, but the bundle card given is {card_id(card)}")
    if class_name is not None and class_value is not None:
        raise InvalidInputError(f"{where}: give the dump class by name or by value, not both")
    bundle_id = card_id(card) if card is not None else tagged
    if class_value is not None or (count == 1 and descriptions[0] == CLASS_BAND):
        kind: Literal["probability", "class"] = "class"
        if count != 1:
            raise InvalidInputError(f"{where}: {count} bands; a class map has one (a probability layer is read by "
                                    "class name, without a class value)")
        band, value, name = 1, class_value, None
        named = dict(class_names or {}) or dict(enumerate(_names_of(card)))
        if value is None:
            if not named:
                raise InvalidInputError(f"{where}: a class map whose classes are not named (no STAC item, no bundle "
                                        "card): give the class value (--class-value) or the bundle (--bundle)")
            values = sorted(named)
            value = values[_choose([named[v] for v in values], class_name, card, where)]
        name = named.get(value)
    else:
        kind, value = "probability", None
        names = descriptions if all(descriptions) else []
        if not names and card is not None and len(_names_of(card)) == count:
            names = _names_of(card)
        if names:
            band = _choose(names, class_name, card, where) + 1
            name = names[band - 1]
        elif count == 1:
            band, name = 1, class_name  # one unnamed band: the caller says what it holds
        else:
            raise InvalidInputError(
                f"{where}: {count} bands and none named (no band descriptions, no STAC item, no bundle card): "
                f"{NAME_IT} and give the bundle that wrote it (--bundle), or the layer's STAC item")
        if dtype != "uint8":
            raise InvalidRasterError(f"{where}: probability layer is {dtype}; expected uint8 0-250 (255 = nodata), "
                                     "or give the class value of a class map")
    validated, note = _validation(card, bundle_id, claimed_validated)
    return DetectorLayer(path, kind, band, value, name, bundle_id, card_path, validated, note)


def _validation(card: Mapping[str, Any] | None, bundle_id: str | None, claimed: bool) -> tuple[bool, str]:
    if card is not None:
        validated, note = detector_validation(card)
        if claimed and not validated:
            raise InvalidInputError(f"validated: the layer's {note.removeprefix('candidats: ')}")
        return validated, note
    if bundle_id is not None:
        if claimed:
            raise InvalidInputError(f"validated: the layer was predicted by {bundle_id}; give its bundle "
                                    "(--bundle) so its card can say whether it was validated")
        return False, _unknown_card_note(bundle_id)
    return claimed, ""


def _asset_paths(item: pystac.Item) -> dict[str, Path]:
    return {key: Path(asset.get_absolute_href() or asset.href) for key, asset in item.assets.items()
            if "://" not in (asset.get_absolute_href() or asset.href)}


def _item_classes(item: pystac.Item) -> dict[int, str]:
    """value -> class name of the item's data asset (`classification:classes`, nodata left out)."""
    data = item.assets.get("data")
    classes = data.extra_fields.get("classification:classes", []) if data is not None else []
    return {int(c["value"]): str(c.get("description") or c["name"]) for c in classes
            if isinstance(c, dict) and not c.get("nodata") and "value" in c}


def _layer_parts(layer: str | Path | pystac.Item | Layer,
                 class_value: int | None) -> tuple[Path, dict[int, str], Path | None]:
    """The raster to read, the class names of a class map and the bundle card a published layer carries.

    A layer published by `geovigie predict` (its STAC item, or the service's layer) is read on its probabilities
    asset, unless a class value asks for its class map.
    """
    if isinstance(layer, Layer):
        assets, classes = dict(layer.assets), {int(e["value"]): str(e["name"]) for e in layer.legend}
    elif isinstance(layer, pystac.Item) or Path(layer).suffix.lower() == ".json":
        item = layer if isinstance(layer, pystac.Item) else read_item(Path(layer))
        assets, classes = _asset_paths(item), _item_classes(item)
    else:
        return Path(layer), {}, None
    if "data" not in assets:
        raise InvalidInputError(f"layer {getattr(layer, 'id', layer)}: no local data asset to read")
    card = assets.get(MODEL_CARD_ASSET)
    if "probabilities" in assets and class_value is None:
        return assets["probabilities"], {}, card
    return assets["data"], classes, card


def detector_input(layer: str | Path | pystac.Item | Layer | DetectorLayer, *, bundle: str | Path | None = None,
                   class_name: str | None = None, class_value: int | None = None,
                   claimed_validated: bool = False) -> DetectorLayer:
    """What a dump pass reads: the band or class of the dump sites and the detector behind it (`detector_layer`).

    `layer` is a raster file, a STAC item (or its JSON file) of a published prediction, a published layer, or a
    `DetectorLayer` already resolved. The bundle card comes from `bundle` (a bundle folder or its card.json), else
    from the item's `model-card` asset.
    """
    if isinstance(layer, DetectorLayer):
        return layer
    path, classes, card_path = _layer_parts(layer, class_value)
    if bundle is not None:
        card_path = Path(bundle) / "card.json" if Path(bundle).is_dir() else Path(bundle)
    card = read_card(card_path) if card_path is not None else None
    return detector_layer(path, class_name=class_name, class_value=class_value, card=card, card_path=card_path,
                          class_names=classes or None, claimed_validated=claimed_validated)
