from pathlib import Path

import pytest

from geovigie.settings import Settings


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "geovigie.toml"
    toml.write_text('tile_size = 128\noverlap = 32\ndevice = "cpu"\n[catalog_sources]\nearth = "https://example.invalid/v1"\n')
    monkeypatch.setenv("GEOVIGIE_CONFIG", str(toml))
    monkeypatch.setenv("GEOVIGIE_OVERLAP", "16")
    settings = Settings()
    assert settings.tile_size == 128
    assert settings.overlap == 16
    assert settings.device == "cpu"
    assert settings.catalog_sources == {"earth": "https://example.invalid/v1"}


def test_overlap_must_be_smaller_than_tile() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Settings(tile_size=64, overlap=64)


def test_unknown_device_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings(device="tpu")


def test_derived_folders(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.catalog_dir == tmp_path / "catalog"
    assert settings.results_dir == tmp_path / "results"
