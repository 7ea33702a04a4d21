"""Names from outside (item ids, collection ids, file names) never lead a path out of its folder; layer identity.

Hostile ids come from item JSON files and from a loopback STAC API (`geovigie batch`): traversal, `/`, control
characters, 5,000 characters. Each gives a sanitised name inside `--out` (or one `error:` line, exit 2); nothing
is written anywhere else, no traceback. Then layer identity: two files with one name are two layers, one file by
two paths is one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.errors import InvalidInputError
from geovigie.models import DEFAULT_BUNDLE
from geovigie.paths import NAME_MAX, SAFE_NAME_MAX, check_name, printable, safe_join, safe_name
from tests._support.remote import file_server, remote_item
from tests._support.servers import JsonHandler, http_server, landing_page
from tests.conftest import SLOVENIA_SCENE

TRAVERSAL = "../../../../tmp/x/escaped"
HOSTILE_IDS = {
    "traversal": TRAVERSAL,
    "slashes": "tiles/2024/scene",
    "control": "scene\x1b[31m\r\nred\x00",
    "long": "s" * 5000,
    "absolute": "/etc/passwd",
}
NO_NAME_IDS = {"dotdot": "..", "dot": ".", "empty": "", "only-controls": "\x1b\x00\n", "only-dots-slashes": "./../"}


# ---------------------------------------------------------------------------------------------------------------
# the one place names and paths are made

@pytest.mark.parametrize("value", ["S2A_MSIL1C_20230601T103031_N0509_R108_T31TCJ", "slovenia-reference-scene-2",
                                   "a", "x" * NAME_MAX, "v1.2"])
def test_safe_names_are_kept_as_they_are(value: str) -> None:
    assert check_name(value) == value
    if len(value) <= SAFE_NAME_MAX:
        assert safe_name(value) == value


@pytest.mark.parametrize("value", ["", ".", "..", "x" * (NAME_MAX + 1), ".hidden", "-rf", "_x", "a/b", "a\\b",
                                   "a\nb", "a\x00b", "scène", "a b", "end.", "abc\n"])
def test_check_name_refuses_anything_else(value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_name(value, "layer id")
    message = str(caught.value)
    assert message.startswith("invalid layer id ") and "\n" not in message and len(message) < 200


@pytest.mark.parametrize("key", list(HOSTILE_IDS))
def test_safe_name_cleans_cuts_and_keeps_ids_apart(key: str) -> None:
    value = HOSTILE_IDS[key]
    name = safe_name(value, "item id")
    assert check_name(name) == name and len(name) <= SAFE_NAME_MAX
    assert name != value and name == safe_name(value)  # stable
    variants = {value, value + "x", "_" + value, value.replace("/", "_").replace("\x1b", "_")}
    assert len({safe_name(v) for v in variants}) == len(variants)  # never merged


def test_safe_name_keeps_the_readable_part() -> None:
    assert safe_name(TRAVERSAL).startswith("tmp_x_escaped-")
    assert safe_name("scène été").startswith("scene_ete-")
    assert safe_name("景色").startswith("name-") and safe_name("景色") != safe_name("风景")  # no ASCII form: the hash
    assert safe_name("s" * 5000) == "s" * (SAFE_NAME_MAX - 9) + "-" + safe_name("s" * 5000)[-8:]
    assert len(safe_name("s" * (SAFE_NAME_MAX + 1))) == SAFE_NAME_MAX  # the boundary: one past the cap is cut
    assert safe_name("s" * SAFE_NAME_MAX) == "s" * SAFE_NAME_MAX


@pytest.mark.parametrize("key", list(NO_NAME_IDS))
def test_safe_name_refuses_ids_without_a_name(key: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid item id"):
        safe_name(NO_NAME_IDS[key], "item id")


def test_printable_escapes_terminal_sequences() -> None:
    assert printable("a\x1b[31mb\n") == "a\\x1b[31mb\\n"
    assert printable("x" * 100, 10) == "x" * 10 + "…"


def test_safe_join_stays_under_its_root(tmp_path: Path) -> None:
    root = tmp_path / "out"
    assert safe_join(root, "a", "b.tif") == root / "a" / "b.tif"
    assert not root.exists()  # nothing created
    for parts in (("..", "x"), ("a/../../x",), ("/etc",), ("",), (".",)):
        with pytest.raises(InvalidInputError):
            safe_join(root, *parts)
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InvalidInputError, match="leads outside"):
        safe_join(root, "link", "x.tif")
    (root / "inner").mkdir()
    (root / "ok").symlink_to(root / "inner")  # a link that stays inside is fine
    assert safe_join(root, "ok", "x.tif") == root / "ok" / "x.tif"


# ---------------------------------------------------------------------------------------------------------------
# predict: hostile item ids in item JSON files

def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder (the command's cwd) inside a sandbox folder that must stay as it was."""
    folder = tmp_path / "sandbox" / "a" / "b" / "c" / "work"
    folder.mkdir(parents=True)
    shutil.copy(SLOVENIA_SCENE, folder / "scene.tif")
    (folder / "none.toml").write_text("# no settings\n")
    monkeypatch.chdir(folder)
    return folder


def _cli(*args: str, work: Path) -> tuple[int, str]:
    env = {"GEOVIGIE_CONFIG": str(work / "none.toml"), "GEOVIGIE_TILE_SIZE": "64", "GEOVIGIE_OVERLAP": "16",
           "GEOVIGIE_DEVICE": "cpu", "GEOVIGIE_DASK_PROCESSES": "false", "GEOVIGIE_DASK_WORKERS": "1"}
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        return 1, "Traceback\n" + "".join(traceback.format_exception(result.exception))
    return result.exit_code, result.stderr


def _local_item(work: Path, item_id: str) -> Path:
    payload = remote_item("", str(work / "scene.tif"), item_id)
    path = work / "item.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.mark.parametrize("key", ["traversal", "control", "long"])
def test_predict_writes_a_hostile_item_under_a_clean_name_inside_out(key: str, work: Path) -> None:
    sandbox = work.parents[3]
    before = _files(sandbox)
    item = _local_item(work, HOSTILE_IDS[key])
    code, stderr = _cli("predict", str(item), "--out", "out", work=work)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "\x1b" not in stderr
    key_name = safe_name(HOSTILE_IDS[key])
    outputs = sorted(p.name for p in (work / "out").glob("*.tif"))
    assert outputs == [f"{key_name}__{DEFAULT_BUNDLE.name}_classes.tif",
                       f"{key_name}__{DEFAULT_BUNDLE.name}_probabilities.tif"]
    layer = work / "geovigie-data" / "results" / "geovigie-results" / f"landcover-{key_name}"
    assert (layer / "data.tif").is_file()
    created = _files(sandbox) - before
    # the traversal from work/out lands in sandbox/a/tmp/x: nothing may appear outside the working folder
    assert all(path.startswith("a/b/c/work/") for path in created), created


@pytest.mark.parametrize("key", list(NO_NAME_IDS))
def test_predict_refuses_an_item_id_with_no_name_before_writing(key: str, work: Path) -> None:
    item = _local_item(work, NO_NAME_IDS[key])
    before = _files(work)
    code, stderr = _cli("predict", str(item), "--out", "out", work=work)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: invalid item id"), stderr
    assert _files(work) == before  # no --out folder, no data folder


def test_predict_refuses_an_out_folder_whose_link_leads_outside(work: Path, tmp_path: Path) -> None:
    """An output name planted beforehand as a symlink to another folder's file is refused, not followed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (work / "out").mkdir()
    item = _local_item(work, "planted")
    (work / "out" / f"planted__{DEFAULT_BUNDLE.name}_classes.tif").symlink_to(elsewhere / "victim.tif")
    code, stderr = _cli("predict", str(item), "--out", "out", work=work)
    assert code == 2 and stderr.startswith("error: ") and "leads outside" in stderr, stderr
    assert list(elsewhere.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------
# batch: a hostile STAC API

class HostileApi(JsonHandler):
    """A minimal STAC API whose one collection holds the items of `items` (their assets on a file server)."""

    items: list[dict]

    def _route(self) -> None:
        base = f"http://{self.headers['Host']}/"
        path = urlsplit(self.path).path.rstrip("/")
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        collection = {"type": "Collection", "id": "s2", "stac_version": "1.1.0", "description": "hostile",
                      "license": "other", "links": [],
                      "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}}
        if path == "":
            self.send_json(landing_page(base, catalog_id="hostile", get_search=True))
        elif path == "/collections":
            self.send_json({"collections": [collection], "links": []})
        elif path == "/collections/s2":
            self.send_json(collection)
        elif path == "/search":
            self.send_json({"type": "FeatureCollection", "features": self.items, "links": []})
        else:
            self.send_error(404)

    do_GET = _route  # noqa: N815 - the names http.server dispatches to
    do_POST = _route  # noqa: N815


@contextlib.contextmanager
def hostile_api(items: list[dict]) -> Iterator[str]:
    with http_server(HostileApi, items=items) as base:
        yield base + "/"


def _batch_config(work: Path, api: str) -> Path:
    path = work / "hostile.toml"
    path.write_text(f'source = "{api}"\ncollection = "s2"\noutput_dir = "out"\n'
                    '[[tasks]]\nkind = "landcover"\nproduct_level = "L1C"\n', encoding="utf-8")
    return path


def test_batch_over_a_hostile_api_stays_inside_out(work: Path) -> None:
    sandbox = work.parents[3]
    with file_server() as (base, _, _):
        items = []
        for name, item_id in HOSTILE_IDS.items():
            item = remote_item(base, "/scene.tif", item_id)
            item["collection"] = "s2" if name != "slashes" else "../../../s2"  # a hostile collection id too
            items.append(item)
        with hostile_api(items) as api:
            config = _batch_config(work, api)
            before = _files(sandbox)
            code, stderr = _cli("batch", str(config), "--no-progress", work=work)
            assert code == 0, stderr
            again_code, again = _cli("batch", str(config), "--no-progress", work=work)
    assert "Traceback" not in stderr and "\x1b" not in stderr
    assert again_code == 0 and f"{len(HOSTILE_IDS)} up to date" in again, again  # a second pass does nothing
    created = _files(sandbox) - before
    assert created and all(path.startswith("a/b/c/work/out") for path in created), created
    layers = sorted(p.name for p in (work / "out" / "results" / "geovigie-results").iterdir() if p.is_dir())
    assert layers == sorted(f"landcover-{safe_name(i)}" for i in HOSTILE_IDS.values())


def test_batch_records_ids_without_a_name_or_asset_as_failed_jobs(work: Path) -> None:
    with file_server() as (base, _, _):
        items = [remote_item(base, "/scene.tif", item_id) for item_id in ("..", "fine")]
        items.append(remote_item(base, "/missing.tif", "gone\x1b[2J\nid"))  # fails, its id clears the screen
        with hostile_api(items) as api:
            code, stderr = _cli("batch", str(_batch_config(work, api)), "--no-progress", work=work)
    assert code == 3, stderr  # the pass ran, two jobs failed (batch's partial-failure code)
    assert "invalid item id '..'" in stderr and "Traceback" not in stderr
    assert "\x1b" not in stderr and "gone\\x1b[2J\\nid" in stderr and "HTTP 404" in stderr  # escaped, one line
    assert [p.name for p in (work / "out" / "results" / "geovigie-results").iterdir() if p.is_dir()] == [
        "landcover-fine"]


# ---------------------------------------------------------------------------------------------------------------
# layer identity

def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_two_files_with_one_name_are_two_layers(work: Path) -> None:
    (work / "a").mkdir()
    (work / "b").mkdir()
    shutil.copy(SLOVENIA_SCENE, work / "a" / "scene.tif")
    with rasterio.open(SLOVENIA_SCENE) as src:
        profile, data, descriptions = src.profile, src.read(), src.descriptions
    with rasterio.open(work / "b" / "scene.tif", "w", **profile) as dst:  # another image, same file name
        dst.write(data[:, ::-1, :])
        dst.descriptions = descriptions
    for folder in ("a", "b"):
        code, stderr = _cli("predict", f"{folder}/scene.tif", "--out", "out", "--product-level", "L1C", work=work)
        assert code == 0, stderr
    results = work / "geovigie-data" / "results" / "geovigie-results"
    layers = sorted(p.name for p in results.iterdir() if p.is_dir())
    assert len(layers) == 2 and all(name.startswith("landcover-scene-") for name in layers), layers
    first, second = (_read(results / name / "data.tif") for name in layers)
    assert not np.array_equal(first, second)
    assert len(list((work / "out").glob("*_classes.tif"))) == 2


def test_one_file_by_two_paths_is_one_layer(work: Path) -> None:
    code, stderr = _cli("predict", "scene.tif", "--out", "out", "--product-level", "L1C", work=work)
    assert code == 0, stderr
    outputs = _files(work / "out")
    code, stderr = _cli("predict", str(work / "scene.tif"), "--out", "out", "--product-level", "L1C", work=work)
    assert code == 0 and "up to date" in stderr, stderr
    os.link(work / "scene.tif", work / "copy.tif")  # the same content under another name: its own layer
    code, stderr = _cli("predict", "copy.tif", "--out", "out", "--product-level", "L1C", work=work)
    assert code == 0, stderr
    assert _files(work / "out") >= outputs
    layers = sorted(p.name for p in (work / "geovigie-data" / "results" / "geovigie-results").iterdir()
                    if p.is_dir())
    assert len(layers) == 2 and layers[0].removeprefix("landcover-copy-") == layers[1].removeprefix(
        "landcover-scene-"), layers


# ---------------------------------------------------------------------------------------------------------------
# one run signature: the batch's job key holds every option predict's own signature holds

def test_batch_recomputes_a_layer_when_the_input_scale_changes(catalog_dir: Path, settings, dask_client,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geovigie.catalog.samples import SLOVENIA
    from geovigie.catalog.stac import CatalogClient, StaticItemStore
    from geovigie.settings import Settings
    from geovigie.workflows import load_batch_config, run_batch

    found = {item.id: item for item in CatalogClient.open(catalog_dir).search(collections=[SLOVENIA]).items()}
    inputs = StaticItemStore(tmp_path / "inputs")
    inputs.upsert(found["slovenia-reference-scene-2"].clone())
    config_path = tmp_path / "scale.toml"
    config_path.write_text(f'source = "{inputs.root / "catalog.json"}"\ncollection = "{SLOVENIA}"\n'
                           'output_dir = "out"\n[[tasks]]\nkind = "landcover"\nproduct_level = "L1C"\n')
    config = load_batch_config(config_path)

    def tags(report) -> dict[str, str]:  # noqa: ANN001
        (_, layer), = report.published
        with rasterio.open(layer.item.assets["data"].get_absolute_href()) as src:
            return src.tags()

    first = run_batch(config, settings, client=dask_client, progress=False)
    assert first.ok and len(first.published) == 1
    before = tags(first)["GEOVIGIE_RUN"]
    monkeypatch.setenv("GEOVIGIE_INPUT_SCALE", "1.02")  # as a user changes it between two passes
    scaled = Settings(**{**settings.model_dump(), "input_scale": Settings().input_scale})
    assert scaled.input_scale == 1.02
    second = run_batch(config, scaled, client=dask_client, progress=False)
    assert [job.reason for job in second.jobs] == ["task changed"] and len(second.published) == 1
    assert tags(second)["GEOVIGIE_RUN"] != before  # predicted again and published, not reused
    third = run_batch(config, scaled, client=dask_client, progress=False)
    assert third.jobs == [] and third.up_to_date == 1
