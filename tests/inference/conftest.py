"""The inference tests measure the tiled pipeline against a U-Net's whole-image pass and its runtimes (torch, ONNX):
they run on the shipped network bundle, not on the default of `predict` (a pixel classifier since v3)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def network_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import geovigie.models._bundle as bundles

    monkeypatch.setattr(bundles, "DEFAULT_BUNDLE", bundles.NETWORK_BUNDLE)
