"""Model bundles (smp networks built from names, with a card) and the runtime shared by training and inference."""

from geovigie.classes import ClassInfo
from geovigie.models._bundle import DEFAULT_BUNDLE, ModelBundle, load_bundle, save_bundle
from geovigie.models._card import Architecture, ModelCard, Normalisation
from geovigie.models._network import build_network
from geovigie.models._runtime import autocast, fill_values, forward, inference_context, normalise, resolve_device

__all__ = [
    "DEFAULT_BUNDLE",
    "Architecture",
    "ClassInfo",
    "ModelBundle",
    "ModelCard",
    "Normalisation",
    "autocast",
    "build_network",
    "fill_values",
    "forward",
    "inference_context",
    "load_bundle",
    "normalise",
    "resolve_device",
    "save_bundle",
]
