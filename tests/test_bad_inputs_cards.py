"""Retired bundles and the network-only selection: naming a retired bundle (CLI `--bundle`, a batch task, a service
job body) is ONE error naming its successor (exit code 2 on the CLI, 422 on the service, nothing left behind); a
`selection.kinds` that no candidate has is one `error:` line before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from geovigie.catalog.samples import SLOVENIA
from geovigie.cli import app
from geovigie.models import DEFAULT_BUNDLE, RETIRED_BUNDLES
from geovigie.service import create_app
from tests._support.cli import assert_one_error_line
from tests._support.jobs import JOB
from tests._support.writes import make_key, writes_settings
from tests.conftest import SLOVENIA_SCENE, fresh_database
from tests.training.conftest import tiny_config, write_toml

BUNDLES_DIR = DEFAULT_BUNDLE.parent


def test_the_retired_bundles_are_gone_and_their_successors_shipped() -> None:
    assert RETIRED_BUNDLES  # the map is what the errors below come from
    for retired, successor in RETIRED_BUNDLES.items():
        assert not (BUNDLES_DIR / retired).exists(), retired
        assert (BUNDLES_DIR / successor / "card.json").is_file(), successor


@pytest.mark.parametrize("retired", ["landcover-s2l1c-slovenia-v1", "landcover-s2l1c-slovenia-v3",
                                     "artificial-surface-s2l1c-slovenia-v2"])
@pytest.mark.parametrize("form", ["name", "shipped path"])
def test_predict_with_a_retired_bundle_names_its_successor(retired: str, form: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bundle = retired if form == "name" else str(BUNDLES_DIR / retired)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(SLOVENIA_SCENE), "--out", str(out), "--bundle", bundle])
    assert_one_error_line(result, f"'{retired}' is retired", f"use '{RETIRED_BUNDLES[retired]}'")
    assert not out.exists()


def test_a_batch_task_naming_a_retired_bundle_is_one_error(catalog_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "job.toml"
    config.write_text(f'source = "{catalog_dir}"\noutput_dir = "out"\ncollection = "{SLOVENIA}"\n'
                      '[[tasks]]\nkind = "landcover"\nbundle = "landcover-s2l1c-slovenia-v2"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["batch", str(config), "--no-progress"])
    assert_one_error_line(result, "'landcover-s2l1c-slovenia-v2' is retired", "use 'landcover-s2l1c-slovenia-v4'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml"]  # no state, no output folder


@pytest.mark.parametrize(("bundle", "status", "words"), [
    ("landcover-s2l1c-slovenia-v1", 422, ("bundle:", "is retired", "use 'landcover-s2l1c-slovenia-unet-v1'")),
    ("no-such-bundle", 422, ("bundle 'no-such-bundle'", "no shipped bundle", "landcover-s2l1c-slovenia-v4")),
    ("landcover-s2l1c-slovenia-unet-v1", 202, ()),  # the boundary: a shipped name is queued
])
def test_a_job_body_naming_a_retired_bundle_is_refused(bundle: str, status: int, words: tuple[str, ...],
                                                       pgstac_cluster, tmp_path: Path) -> None:
    settings = writes_settings(tmp_path / "gv", fresh_database(pgstac_cluster))
    with TestClient(create_app(settings)) as client:
        body = {**{k: v for k, v in JOB.items() if k != "source"}, "bundle": bundle}  # the local catalog
        answer = client.post("/jobs", json=body, headers={"X-API-Key": make_key(settings)})
        assert answer.status_code == status, answer.text
        for word in words:
            assert word in answer.json()["detail"], answer.text
        assert len(client.get("/jobs").json()["jobs"]) == (status == 202)  # nothing queued when refused


@pytest.mark.parametrize(("selection", "words"), [
    ({"kinds": ["hist-gradient-boosting"]}, ("selection.kinds", "matches no candidate", "random-forest")),
    ({"kinds": ["transformer"]}, ("selection.kinds.0",)),
    ({"kinds": []}, ("selection.kinds",)),
])
def test_a_selection_scope_without_candidate_is_one_error(selection: dict, words: tuple[str, ...], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    config = write_toml(tmp_path / "scope.toml", tiny_config(
        split={"mode": "leave-one-date-out", "holdout": "scene-3"},
        candidates=[{"name": "net", "kind": "network"}, {"name": "rf", "kind": "random-forest"}],
        selection=selection))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out), "--device", "cpu", "--quiet"])
    assert_one_error_line(result, *words)
    assert not out.exists()

