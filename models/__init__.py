"""Model bundles: smp networks built from names, with a card stating bands, classes and metrics."""

from geovigie.models._bundle import DEFAULT_BUNDLE, ModelBundle, load_bundle, save_bundle
from geovigie.models._card import Architecture, ClassInfo, ModelCard, Normalisation
from geovigie.models._network import build_network

__all__ = [
    "DEFAULT_BUNDLE",
    "Architecture",
    "ClassInfo",
    "ModelBundle",
    "ModelCard",
    "Normalisation",
    "build_network",
    "load_bundle",
    "save_bundle",
]
