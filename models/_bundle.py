"""Versioned model bundles: `weights.safetensors` + `card.json` in one folder."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from geovigie.atomic import atomic_path, write_json_atomic
from geovigie.bands import canonical_s2_name
from geovigie.config_file import describe_errors
from geovigie.digests import sha256_of
from geovigie.errors import BandMismatchError, BundleError, ForcedMismatchWarning, InputNotFoundError
from geovigie.models._card import CARD_FORMAT_VERSION, ModelCard
from geovigie.models._network import build_network
from geovigie.retired_bundles import retired_message

WEIGHTS = "weights.safetensors"
CARD = "card.json"
ITEM = "item.json"
"""The card as a STAC item with the Machine Learning Model extension (see `mlm_item`)."""
BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"
DEFAULT_BUNDLE = BUNDLES_DIR / "landcover-s2l1c-slovenia-v4"
"""The default of `predict`: the land-cover candidate that won on held-out dates (training/configs/
landcover-s2l1c-slovenia.toml; a random forest on per-scene median / MAD standardised bands, BENCHMARKS.md)."""
NETWORK_BUNDLE = BUNDLES_DIR / "landcover-s2l1c-slovenia-unet-v1"
"""The shipped U-Net bundle, for what needs a PyTorch network: the best network candidate of the default's table
on held-out dates (training/configs/landcover-s2l1c-slovenia-unet.toml), below the default's forest."""


def check_not_retired(name: str | Path) -> None:
    """Refuse a retired bundle's name (or a missing folder named like one), naming its successor
    (`geovigie.retired_bundles.RETIRED_BUNDLES`, re-exported here).

    Raises:
        BundleError: `name` names a retired bundle that is not on disk.
    """
    message = retired_message(name)
    if message is not None:
        raise BundleError(message)


@dataclass(frozen=True)
class ModelBundle:
    """A bundle on disk: its folder and its card. Load the network with `load_network()`."""

    path: Path
    card: ModelCard

    @property
    def id(self) -> str:
        """`name@version`, used to name outputs and in STAC processing metadata."""
        return f"{self.card.name}@{self.card.version}"

    @property
    def weights_path(self) -> Path:
        """The file `card.weights_sha256` is the hash of: the safetensors weights, or a pixel classifier's ONNX
        model (its only weights)."""
        if self.card.kind == "pixel-classifier":
            return self.path / (self.card.onnx.file if self.card.onnx is not None else "model.onnx")
        return self.path / WEIGHTS

    def load_network(self, device: torch.device | str = "cpu", *, verified: bool = False) -> torch.nn.Module:
        """Build the network from the card and load the weights, in eval mode; the weights are checked first
        (`check_weights`) unless `verified` says this run checked them already.

        Raises:
            BundleError: corrupt or other weights, or the bundle is a pixel classifier (no network: runtime onnx
                runs it).
        """
        if self.card.architecture is None:
            raise BundleError(f"{self.path}: bundle {self.id} is a {self.card.kind} without a PyTorch network; "
                              "run it with runtime onnx (or auto)")
        weights = self.path / WEIGHTS
        if not verified:
            check_weights(self)
        net = build_network(self.card.architecture, self.card.channels, self.card.num_classes)
        try:
            state = load_file(str(weights), device="cpu")
            net.load_state_dict(state)
        except (OSError, RuntimeError, ValueError) as err:  # safetensors and torch report corrupt files so
            raise BundleError(f"{weights}: cannot load the weights ({err})") from err
        return net.to(device).eval()

    def check_compatible(
        self, bands: Sequence[str], product_level: str | None, *, source: str, force: bool = False
    ) -> None:
        """Refuse imagery whose bands (in order) or product level differ from the card's.

        Raises:
            BandMismatchError: naming `source` and what differs, unless `force` (then a warning).
        """
        wanted = [canonical_s2_name(b) for b in self.card.bands]
        got = [canonical_s2_name(b) for b in bands]
        problems = []
        if got != wanted:
            missing = [b for b in wanted if b not in got]
            extra = [b for b in got if b not in wanted]
            details = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
            if len(got) != len(wanted):
                details.append(f"{len(got)} bands given, {len(wanted)} expected")
            detail = ", ".join(details) or "same bands in another order"
            problems.append(f"bands {got} do not match the bundle's {wanted} ({detail})")
        if product_level and product_level.upper() != self.card.product_level.upper():
            problems.append(f"product level {product_level} differs from the bundle's {self.card.product_level}")
        if not problems:
            return
        message = f"{source}: " + "; ".join(problems) + f" (bundle {self.id})"
        if not force:
            raise BandMismatchError(message + "; pass --force to predict anyway")
        warnings.warn(message + "; predicting anyway because forced", ForcedMismatchWarning, stacklevel=2)


def check_weights(bundle: ModelBundle, digest_cache: str | Path | None = None) -> None:
    """Check the weights file: its SHA-256 against the card's, else (cards without one) that its header reads.
    Done once per run: inference checks on the client and tells its workers (`load_network(verified=True)`); with
    `digest_cache` (a folder), unchanged weights are not read again by the next run (`geovigie.digests`).

    Raises:
        BundleError: truncated, corrupt or another card's weights.
    """
    from safetensors import SafetensorError, safe_open

    weights = bundle.weights_path  # a pixel classifier's weights are its ONNX model
    if bundle.card.weights_sha256:
        digest = sha256_of(weights, digest_cache)
        if digest != bundle.card.weights_sha256:
            raise BundleError(f"{weights}: SHA-256 {digest[:12]}… differs from the card's "
                              f"{bundle.card.weights_sha256[:12]}…; the weights are corrupt or not this card's")
        return
    try:
        with safe_open(str(weights), "pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as err:
        raise BundleError(f"{weights}: cannot load the weights ({err})") from err


def load_bundle(path: str | Path | None = None) -> ModelBundle:
    """Read a bundle folder (the shipped land-cover bundle when `path` is None); format 1 and 2 cards load.

    Raises:
        InputNotFoundError: no card or no weights in the folder.
        BundleError: a retired bundle's name (naming its successor); see below for the others.
        BundleError: the card is not valid JSON or not a valid card, listing every problem.
    """
    folder = Path(path) if path is not None else DEFAULT_BUNDLE
    check_not_retired(folder)
    card_path = folder / CARD
    if not card_path.exists():
        raise InputNotFoundError(f"no model bundle at {folder}: expected {CARD} and {WEIGHTS}")
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{card_path}: not a valid model card (not JSON: {err})") from err
    if not isinstance(raw, dict):
        raise BundleError(f"{card_path}: not a valid model card (a JSON object is expected, got {type(raw).__name__})")
    raw.setdefault("format_version", "1")  # format 1 cards did not say
    if str(raw["format_version"]) not in ("1", CARD_FORMAT_VERSION):
        raise BundleError(f"{card_path}: card format_version {raw['format_version']!r} is not one this geovigie reads "
                          f"(1 to {CARD_FORMAT_VERSION}); upgrade geovigie or re-export the bundle")
    try:
        card = ModelCard.model_validate(raw)
    except ValidationError as err:
        problems = describe_errors(err, "card")
        raise BundleError(f"{card_path}: not a valid model card ({err.error_count()} problem(s): {problems}); "
                          "fix the card or retrain the bundle") from err
    except ValueError as err:  # model_post_init checks
        raise BundleError(f"{card_path}: not a valid model card ({err})") from err
    bundle = ModelBundle(folder, card)
    if not bundle.weights_path.exists():
        raise InputNotFoundError(f"no model bundle at {folder}: expected {CARD} and {bundle.weights_path.name}")
    return bundle


def write_card(folder: str | Path, card: ModelCard) -> ModelBundle:
    """Write `card.json` (as format 2) and its STAC MLM item `item.json` into a bundle folder, atomically each."""
    from geovigie.models._mlm import mlm_item

    folder = Path(folder)
    card = card.model_copy(update={"format_version": CARD_FORMAT_VERSION})
    write_json_atomic(folder / CARD, json.loads(card.model_dump_json()))
    bundle = ModelBundle(folder, card)
    write_json_atomic(folder / ITEM, mlm_item(bundle).to_dict(include_self_link=False))
    return bundle


def save_bundle(folder: str | Path, network: torch.nn.Module, card: ModelCard) -> ModelBundle:
    """Write weights, then the card (format 2, recording the weights' SHA-256) and `item.json`, atomically.

    An ONNX copy left by an earlier save no longer matches the weights: it is removed and the card's `onnx`
    cleared; call `export_onnx` again.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in network.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp))
        digest = sha256_of(tmp)
    stale = card.onnx.file if card.onnx is not None else "model.onnx"
    (folder / stale).unlink(missing_ok=True)
    return write_card(folder, card.model_copy(update={"weights_sha256": digest, "onnx": None}))
