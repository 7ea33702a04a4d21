"""The bad-input catalogue: whatever a user gives geovigie, it answers one `error:` line, exit code 2, no traceback,
and leaves nothing behind.

Every case runs the real command line on files made here from the shipped data (truncated, mislabelled, rescaled,
emptied...) or on loopback servers that misbehave. Cases whose outcome is decided in Python before any work run
in-process (`typer.testing.CliRunner`, the same code path, much faster); those where the process's own exit path
matters (remote servers, logging from other libraries, signals) run as subprocesses, as a user runs geovigie.
The second half checks crash debris: SIGTERM mid-run, `kill -9` then a rerun, and the sweep sparing live writers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from typer.testing import CliRunner

from geovigie.atomic import SCRATCH_MARKER, run_lock, sweep_scratch
from geovigie.cli import app
from geovigie.inference import open_source
from geovigie.inference._journal import PARTIAL_FOLDER
from geovigie.models import NETWORK_BUNDLE
from tests._support.remote import file_server, misbehaving_server, remote_item
from tests._support.servers import closed_port_url
from tests.conftest import DATA, SLOVENIA_SCENE

GEOVIGIE = str(Path(sys.executable).parent / "geovigie")
BUNDLE = NETWORK_BUNDLE  # the shipped U-Net (its weights file is what the corrupt-bundle cases break)
LST = next((DATA / "landsat-lst-muenster").glob("*.TIF"))


# ---------------------------------------------------------------------------------------------------------------
# inputs made from the shipped data


def _scene() -> tuple[dict, np.ndarray, list[str]]:
    with rasterio.open(SLOVENIA_SCENE) as src:
        return dict(src.profile), src.read(), list(src.descriptions)


def _write(path: Path, array: np.ndarray, names: list[str] | None, **changes: object) -> Path:
    profile, _, _ = _scene()
    profile.update(count=array.shape[0], height=array.shape[1], width=array.shape[2], dtype=str(array.dtype))
    profile.update(changes)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        for index, name in enumerate(names or [], start=1):
            dst.set_band_description(index, name)
    return path


def _make_rasters(folder: Path) -> None:
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    _, data, names = _scene()
    raw = SLOVENIA_SCENE.read_bytes()
    (folder / "trunc_header.tif").write_bytes(raw[: len(raw) // 2])  # GTiff: the directory is at the end
    cog_translate(str(SLOVENIA_SCENE), str(folder / "cog.tif"), cog_profiles.get("deflate"), quiet=True)
    cog = (folder / "cog.tif").read_bytes()  # COG: the directory first, then the tiles
    (folder / "trunc_data.tif").write_bytes(cog[: int(len(cog) * 0.6)])
    with rasterio.open(folder / "trunc_data.tif") as src:
        assert src.count == 13  # it opens: only reading pixels fails
    (folder / "text.tif").write_text("this is a text file, not a GeoTIFF\n")
    (folder / "empty.tif").write_bytes(b"")
    (folder / "a_folder.tif").mkdir()
    _write(folder / "nocrs.tif", data, names, crs=None)
    _write(folder / "b14.tif", np.concatenate([data, data[:1]]), [*names, "NDVI"])
    _write(folder / "b12.tif", np.delete(data, 10, axis=0), [n for n in names if n != "B10"])
    swapped = [names[0], names[2], names[1], *names[3:]]
    _write(folder / "swapped.tif", data[[0, 2, 1, *range(3, 13)]], swapped)
    _write(folder / "nodesc.tif", data, None)
    _write(folder / "dn.tif", np.round(data * 10000).astype("uint16"), names)
    _write(folder / "percent.tif", data * 100, names)
    _write(folder / "nan.tif", np.full_like(data, np.nan), names)
    _write(folder / "zeros.tif", np.zeros_like(data), names, nodata=0)


def _item(folder: Path, name: str, payload: object) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    (folder / name).write_text(text)


def _make_items(folder: Path) -> None:
    good = remote_item("", str(SLOVENIA_SCENE), "scene")
    _item(folder, "list.json", [good])
    _item(folder, "broken.json", json.dumps(good)[:200])
    nohref = json.loads(json.dumps(good))
    del nohref["assets"]["image"]["href"]
    _item(folder, "nohref.json", nohref)
    _item(folder, "assetlist.json", {**good, "assets": [good["assets"]["image"]]})
    noname = json.loads(json.dumps(good))
    noname["assets"]["image"]["eo:bands"][3] = {"common_name": "red"}
    _item(folder, "noname.json", noname)
    notlist = json.loads(json.dumps(good))
    notlist["assets"]["image"]["eo:bands"] = {"name": "B01"}
    _item(folder, "bandsnotlist.json", notlist)
    _item(folder, "missingasset.json", remote_item("", str(folder / "gone.tif"), "gone"))
    thumbnail = json.loads(json.dumps(good))
    thumbnail["assets"]["image"]["roles"] = ["thumbnail"]
    _item(folder, "nodata_asset.json", thumbnail)
    _item(folder, "textasset.json", remote_item("", str(folder / "text.tif"), "text"))


def _bundle(folder: Path, name: str, *, weights: Callable[[bytes], bytes] | None = None,
            card: Callable[[dict], dict | str] | None = None) -> None:
    target = folder / name
    shutil.copytree(BUNDLE, target)
    if weights is not None:
        path = target / "weights.safetensors"
        path.write_bytes(weights(path.read_bytes()))
    if card is not None:
        edited = card(json.loads((target / "card.json").read_text()))
        (target / "card.json").write_text(edited if isinstance(edited, str) else json.dumps(edited))


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _make_bundles(folder: Path) -> None:
    _bundle(folder, "truncated", weights=lambda b: b[: len(b) // 2])
    _bundle(folder, "other_weights", weights=_flip)
    _bundle(folder, "card_not_json", card=lambda c: '{"name": "landcover", "version": ')
    _bundle(folder, "card_no_bands", card=lambda c: {k: v for k, v in c.items() if k != "bands"})
    _bundle(folder, "card_bad_range", card=lambda c: {**c, "input_range": [1.5, 0.0]})
    v1 = {"input_range", "input_dtype", "input_units", "weights_sha256"}
    _bundle(folder, "v1_truncated", weights=lambda b: b[:1000], card=lambda c: {k: v for k, v in c.items()
                                                                                    if k not in v1})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-inputs")
    _make_rasters(folder)
    _make_items(folder)
    _make_bundles(folder)
    return folder


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    with misbehaving_server() as (api, _), file_server() as (files, _, _):
        yield {"api": api, "files": files}


# ---------------------------------------------------------------------------------------------------------------
# the catalogue


@dataclass(frozen=True)
class Case:
    """One bad input: CLI arguments (formatted with {in}, {work}, {api}, {files}, {closed}, {catalog}), the words
    the error line must hold, and how to prepare the working folder."""

    args: tuple[str, ...]
    words: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path, dict[str, str]], None] | None = None
    process: bool = False
    absent: tuple[str, ...] = ()


def _predict(path: str, *extra: str) -> tuple[str, ...]:
    return ("predict", path, "--out", "{work}/out", *extra)


def _scene_to(bundle: str) -> tuple[str, ...]:
    return _predict(str(SLOVENIA_SCENE), "--product-level", "L1C", "--bundle", bundle)


def _write_in_work(name: str, text: str) -> Callable[[Path, dict[str, str]], None]:
    def setup(work: Path, ctx: dict[str, str]) -> None:
        (work / name).write_text(text)

    return setup


def _remote_asset_item(asset: str) -> Callable[[Path, dict[str, str]], None]:
    def setup(work: Path, ctx: dict[str, str]) -> None:
        (work / "item.json").write_text(json.dumps(remote_item(ctx["files"], asset, "remote")))

    return setup


L1C = ("--product-level", "L1C")
CASES: dict[str, Case] = {
    # raster files
    "missing-file": Case(_predict("{work}/nope.tif"), ("input not found", "nope.tif")),
    "folder-as-input": Case(_predict("{in}/a_folder.tif"), ("is a folder",)),
    "truncated-tiff-header": Case(_predict("{in}/trunc_header.tif", *L1C), ("trunc_header.tif", "cannot read")),
    "truncated-tiff-pixels": Case(_predict("{in}/trunc_data.tif", *L1C), ("trunc_data.tif", "truncated or corrupt"),
                                  process=True),
    "text-named-tif": Case(_predict("{in}/text.tif"), ("text.tif", "not recognized")),
    "empty-file": Case(_predict("{in}/empty.tif"), ("empty.tif", "cannot read")),
    "no-crs": Case(_predict("{in}/nocrs.tif", *L1C), ("no CRS",)),
    "14-bands": Case(_predict("{in}/b14.tif", *L1C), ("unexpected ['NDVI']", "14 bands given"),
                     absent=("another order",), process=True),
    "12-bands": Case(_predict("{in}/b12.tif", *L1C), ("missing ['B10']",)),
    "bands-swapped": Case(_predict("{in}/swapped.tif", *L1C), ("another order",)),
    "no-band-names": Case(_predict("{in}/nodesc.tif", *L1C), ("band names", "--bands")),
    "bands-option-short": Case(_predict("{in}/nodesc.tif", "--bands", "B01,B02", *L1C), ("2 band names",)),
    "product-level-l2a": Case(_predict(str(SLOVENIA_SCENE), "--product-level", "L2A"), ("product level L2A",)),
    "landsat-lst-1-band": Case(_predict(str(LST), "--bands", "ST_B10"), ("missing ['B01'", "1 bands given")),
    "uint16-digital-numbers": Case(_predict("{in}/dn.tif", *L1C), ("digital numbers", "uint16",
                                                                   "scale by 1/10000", "--force"), process=True),
    "reflectance-in-percent": Case(_predict("{in}/percent.tif", *L1C), ("out of range", "scale by 1/100 ")),
    "all-nan": Case(_predict("{in}/nan.tif", *L1C), ("no valid pixel", "NaN"), process=True),
    "all-nodata": Case(_predict("{in}/zeros.tif", *L1C), ("no valid pixel", "nodata (0)")),
    # STAC items
    "item-is-a-list": Case(_predict("{in}/list.json"), ("list.json", "not a readable STAC item")),
    "item-not-json": Case(_predict("{in}/broken.json"), ("broken.json", "not a readable STAC item")),
    "asset-without-href": Case(_predict("{in}/nohref.json"), ("nohref.json", "href")),
    "assets-as-list": Case(_predict("{in}/assetlist.json"), ("assetlist.json", "not a readable STAC item")),
    "eo-bands-without-name": Case(_predict("{in}/noname.json"), ("eo:bands entry 3 has no name",)),
    "eo-bands-not-a-list": Case(_predict("{in}/bandsnotlist.json"), ("eo:bands that is not a list",)),
    "asset-missing-file": Case(_predict("{in}/missingasset.json"), ("input not found", "gone.tif")),
    "item-without-data-asset": Case(_predict("{in}/nodata_asset.json"), ("no data asset",)),
    "asset-not-a-raster": Case(_predict("{in}/textasset.json"), ("text.tif", "not recognized")),
    "remote-asset-404": Case(_predict("{work}/item.json"), ("{files}/missing.tif", "HTTP 404"),
                             setup=_remote_asset_item("/missing.tif"), process=True),
    "remote-asset-closed": Case(_predict("{work}/item.json"), ("{files}/close.tif", "closed the connection"),
                                setup=_remote_asset_item("/close.tif"), process=True),
    "remote-asset-not-tiff": Case(_predict("{work}/item.json"), ("{files}/text.tif", "not a raster"),
                                  setup=_remote_asset_item("/text.tif"), process=True),
    # model bundles
    "bundle-missing": Case(_scene_to("{work}/no-bundle"), ("no model bundle", "card.json")),
    "bundle-truncated-weights": Case(_scene_to("{in}/truncated"), ("SHA-256", "corrupt"), process=True),
    "bundle-other-weights": Case(_scene_to("{in}/other_weights"), ("SHA-256", "differs from the card")),
    "card-not-json": Case(_scene_to("{in}/card_not_json"), ("card.json", "not a valid model card")),
    "card-missing-field": Case(_scene_to("{in}/card_no_bands"), ("not a valid model card",)),
    "card-bad-input-range": Case(_scene_to("{in}/card_bad_range"), ("card_bad_range", "not a valid model card")),
    "v1-card-truncated-weights": Case(_scene_to("{in}/v1_truncated"), ("cannot load the weights",)),
    # output folder
    "out-is-a-file": Case(("predict", str(SLOVENIA_SCENE), "--out", "{work}/taken", *L1C), ("is a file",),
                          setup=_write_in_work("taken", "a file\n")),
    "out-under-a-file": Case(("predict", str(SLOVENIA_SCENE), "--out", "{work}/taken/out", *L1C),
                             ("cannot create output folder", "a parent is a file"),
                             setup=_write_in_work("taken", "a file\n")),
    "out-read-only-fs": Case(("predict", str(SLOVENIA_SCENE), "--out", "/sys/geovigie-out/o", *L1C),
                             ("cannot create output folder /sys/geovigie-out/o",)),
    # settings and options
    "toml-broken": Case(("catalog", "search"), ("not valid TOML",), env={"GEOVIGIE_CONFIG": "{work}/bad.toml"},
                        setup=_write_in_work("bad.toml", "tile_size = [\n")),
    "toml-unknown-key": Case(("catalog", "search"), ("invalid settings", "tile_sise"),
                             env={"GEOVIGIE_CONFIG": "{work}/typo.toml"}, setup=_write_in_work("typo.toml",
                                                                                               "tile_sise = 64\n")),
    "config-missing": Case(("catalog", "search"), ("GEOVIGIE_CONFIG", "does not exist"),
                           env={"GEOVIGIE_CONFIG": "{work}/nowhere.toml"}),
    "env-not-a-number": Case(_predict(str(SLOVENIA_SCENE), *L1C), ("invalid settings", "tile_size"),
                             env={"GEOVIGIE_TILE_SIZE": "big"}),
    "overlap-not-below-tile": Case(_predict(str(SLOVENIA_SCENE), "--tile-size", "64", "--overlap", "64", *L1C),
                                   ("overlap (64) must be smaller than tile_size (64)",)),
    "serve-port-99999": Case(("serve", "--port", "99999"), ("--port", "65535"), process=True),
    "device-cuda-without-gpu": Case(_predict(str(SLOVENIA_SCENE), "--device", "cuda", *L1C),
                                    ("cuda", "CUDA is not available"), process=True),
    "device-tpu": Case(_predict(str(SLOVENIA_SCENE), "--device", "tpu", *L1C), ("invalid settings", "device")),
    "http-timeout-not-a-number": Case(("catalog", "search", "--source", "{api}/flaky/"), ("GEOVIGIE_HTTP_TIMEOUT",),
                                      env={"GEOVIGIE_HTTP_TIMEOUT": "soon"}),
    # catalog search
    "bbox-longitude-181": Case(("catalog", "search", "--source", "{catalog}", "--bbox", "0,43,181,44"),
                               ("not in degrees",)),
    "bbox-three-numbers": Case(("catalog", "search", "--source", "{catalog}", "--bbox", "0,43,1"), ("4 numbers",)),
    "datetime-month-13": Case(("catalog", "search", "--source", "{catalog}", "--datetime", "2018-13"),
                              ("2018-13", "ISO 8601")),
    "unknown-collection": Case(("catalog", "search", "--source", "{catalog}", "--collections", "sentinel-9"),
                               ("unknown collection sentinel-9",)),
    "no-catalog-there": Case(("catalog", "search", "--source", "{work}/nothing"), ("no STAC catalog",)),
    "empty-search": Case(("catalog", "search", "--source", "{catalog}", "--bbox", "-60,-20,-59,-19"), ("no item",)),
    # remote STAC APIs
    "api-closed-port": Case(("catalog", "search", "--source", "{closed}"), ("{closed}", "connection refused"),
                            process=True),
    "api-html-page": Case(("catalog", "search", "--source", "{api}/html/"), ("{api}/html/", "HTML page"),
                          process=True),
    "api-http-500": Case(("catalog", "search", "--source", "{api}/error500/"), ("{api}/error500/", "HTTP 500"),
                         process=True),
    "api-garbage-bytes": Case(("catalog", "search", "--source", "{api}/garbage/"), ("not UTF-8",), process=True),
    "api-json-not-stac": Case(("catalog", "search", "--source", "{api}/notstac/"), ("not a STAC catalog",),
                              process=True),
    "api-redirect-loop": Case(("catalog", "search", "--source", "{api}/loop/"), ("redirect loop",), process=True),
    "api-never-answers": Case(("catalog", "search", "--source", "{api}/slow/"), ("no answer within 2 s",),
                              process=True),
    "api-search-404": Case(("catalog", "search", "--source", "{api}/flaky/"), ("HTTP 404", "searching items"),
                           process=True),
}


def _cli_env(work: Path, extra: dict[str, str], ctx: dict[str, str]) -> dict[str, str]:
    env = {"GEOVIGIE_CONFIG": str(work / "none.toml"), "GEOVIGIE_SAMPLE_DATA_DIR": str(DATA),
           "GEOVIGIE_TILE_SIZE": "64", "GEOVIGIE_OVERLAP": "16", "GEOVIGIE_DEVICE": "cpu",
           "GEOVIGIE_HTTP_TIMEOUT": "2", "HOME": str(work)}
    env.update({key: value.format(**ctx) for key, value in extra.items()})
    return env


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _run(args: list[str], env: dict[str, str], work: Path, process: bool,
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    if process:
        done = subprocess.run([GEOVIGIE, *args], capture_output=True, text=True, cwd=work, timeout=120,
                              env={"PATH": str(Path(sys.executable).parent), **env})
        return done.returncode, done.stderr
    monkeypatch.chdir(work)
    for key in [k for k in os.environ if k.startswith("GEOVIGIE_")]:
        monkeypatch.delenv(key)
    result = CliRunner().invoke(app, args, env=env)
    traceback = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback as tb

        traceback = "Traceback\n" + "".join(tb.format_exception(result.exception))
    return result.exit_code, result.stderr + traceback


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_error_line(name: str, inputs: Path, servers: dict[str, str], catalog_dir: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    if name == "device-cuda-without-gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    work = tmp_path / "work"
    work.mkdir()
    (work / "none.toml").write_text("# no settings\n")
    ctx = {"in": str(inputs), "work": str(work), "catalog": str(catalog_dir / "catalog.json"),
           "closed": closed_port_url(), **servers}
    if case.setup is not None:
        case.setup(work, ctx)
    before, inputs_before = _files(work), _files(inputs)
    args = [a.format(**ctx) for a in case.args]
    code, stderr = _run(args, _cli_env(work, case.env, ctx), work, case.process, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in case.words:
        assert word.format(**ctx) in lines[0], (word, lines[0])
    for word in case.absent:
        assert word not in lines[0]
    assert _files(work) == before  # nothing written, nothing half-written, no output folder created
    assert _files(inputs) == inputs_before


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert sum(c.process for c in CASES.values()) >= 10


# ---------------------------------------------------------------------------------------------------------------
# inputs that look odd but are valid: they predict, they do not crash


@pytest.mark.parametrize(("name", "cols", "rows"), [("1x1", 1, 1), ("10-px-wide", 10, 101), ("1-row", 100, 1)])
@pytest.mark.parametrize(("tile", "overlap"), [(256, 64), (64, 16)])
def test_tiny_rasters_predict_like_the_whole_image(name: str, cols: int, rows: int, tile: int, overlap: int,
                                                   dask_client, tmp_path: Path) -> None:
    from geovigie.inference import PredictOptions, predict
    from geovigie.models import forward, load_bundle, normalise, normalise_scene

    _, data, names = _scene()
    path = _write(tmp_path / f"{name}.tif", np.ascontiguousarray(data[:, :rows, :cols]), names)
    result = predict(path, tmp_path / "out", PredictOptions(tile, overlap, 4, "cpu"), client=dask_client,
                     progress=False, product_level="L1C", bundle=BUNDLE)
    with rasterio.open(result.classes_path) as src:
        classes = src.read(1)
    assert classes.shape == (rows, cols)
    bundle = load_bundle(BUNDLE)
    crop = normalise_scene(data[:, :rows, :cols].copy(), bundle.card.scene_normalisation)  # statistics of the input
    whole = forward(bundle.load_network(), normalise(bundle.card, crop[None].copy()),
                    torch.device("cpu"), amp=False)[0].argmax(axis=0)
    if tile >= max(rows, cols):  # one tile: exactly the whole-image forward pass
        assert np.array_equal(classes, whole)
    else:  # blended tiles: classes valid and mostly the same
        assert set(np.unique(classes)) <= set(range(bundle.card.num_classes))
        assert (classes == whole).mean() > 0.8


def test_forced_digital_numbers_predict_with_a_recorded_warning(inputs: Path, dask_client, tmp_path: Path) -> None:
    from geovigie.errors import ForcedMismatchWarning
    from geovigie.inference import PredictOptions, predict
    from geovigie.inference._predict import FORCED_TAG

    with pytest.warns(ForcedMismatchWarning, match="digital numbers"):
        result = predict(inputs / "dn.tif", tmp_path, PredictOptions(64, 16, 4, "cpu"), client=dask_client,
                         progress=False, product_level="L1C", force=True)
    with rasterio.open(result.classes_path) as src:
        assert "scale by 1/10000" in src.tags()[FORCED_TAG]
    with rasterio.open(result.probabilities_path) as src:
        assert "digital numbers" in src.tags()[FORCED_TAG]


def test_forced_all_nan_input_is_an_all_nodata_map_with_a_warning(inputs: Path, dask_client, tmp_path: Path) -> None:
    from geovigie.errors import ForcedMismatchWarning
    from geovigie.inference import PredictOptions, predict

    with pytest.warns(ForcedMismatchWarning, match="no valid pixel"):
        result = predict(inputs / "nan.tif", tmp_path, PredictOptions(64, 16, 4, "cpu"), client=dask_client,
                         progress=False, product_level="L1C", force=True)
    with rasterio.open(result.classes_path) as src:
        assert (src.read(1) == 255).all()


def test_value_check_agrees_with_numpy_on_the_real_scenes(inputs: Path) -> None:
    """The sample the check reads covers these small scenes whole; the training scenes pass, DNs do not."""
    from geovigie.inference import open_source

    for index in (0, 1, 2, 3):  # scene 0 (cloudy) too: clouds stay inside the L1C range
        path = DATA / "s2-l1c-slovenia" / f"reference_scene_{index}.tif"
        sample = open_source(path).sample()
        with rasterio.open(path) as src:
            whole = src.read().reshape(13, -1)
        assert np.array_equal(np.sort(sample, axis=1), np.sort(whole, axis=1))
        assert whole.min() >= 0.0 and whole.max() <= 1.5
    dn = open_source(inputs / "dn.tif").sample()
    assert np.median(dn) > 100 * 1.5


# ---------------------------------------------------------------------------------------------------------------
# crash debris: SIGTERM, kill -9, live writers


def _big_scene(folder: Path) -> Path:
    """The real scene tiled 4 × 4 (400 × 404 px): a run long enough to be interrupted mid-way."""
    _, data, names = _scene()
    return _write(folder / "big.tif", np.tile(data, (1, 4, 4)), names)


def _start_predict(source: Path, out: Path, cwd: Path) -> subprocess.Popen:
    (cwd / "none.toml").write_text("")
    env = {"PATH": str(Path(sys.executable).parent), "GEOVIGIE_CONFIG": str(cwd / "none.toml"), "HOME": str(cwd),
           "GEOVIGIE_TILE_SIZE": "32", "GEOVIGIE_OVERLAP": "8", "GEOVIGIE_BATCH_SIZE": "1", "GEOVIGIE_DEVICE": "cpu"}
    return subprocess.Popen([GEOVIGIE, "predict", str(source), "--out", str(out), *L1C], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_scratch(folder: Path, process: subprocess.Popen, seconds: float = 90) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and (found := [n for n in os.listdir(folder) if SCRATCH_MARKER in n]):
            return found
        time.sleep(0.02)
    raise AssertionError(f"no scratch file appeared in {folder}")


@pytest.mark.parametrize(("signum", "message"), [(signal.SIGTERM, "terminated by SIGTERM"),
                                                  (signal.SIGINT, "interrupted")])
def test_sigterm_mid_run_leaves_nothing(tmp_path: Path, signum: int, message: str) -> None:
    out = tmp_path / "out"
    process = _start_predict(_big_scene(tmp_path), out, tmp_path)
    _wait_for_scratch(out, process)
    deadline = time.monotonic() + 90
    while not list(out.glob(f"{PARTIAL_FOLDER}/*/chunk-*.npz")) and time.monotonic() < deadline:
        time.sleep(0.005)  # mid-run: the first chunk is finished, most are not
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {message}; temporary files removed"], stderr
    assert "Traceback" not in stderr
    assert "WARNING" not in stderr  # no log line per task the shutdown cancelled
    # nothing published, no temporary file; only the journal of finished chunks, kept for the next run to resume
    assert [p.name for p in out.iterdir()] == [PARTIAL_FOLDER]
    assert not [p for p in out.rglob("*") if SCRATCH_MARKER in p.name]
    assert not (tmp_path / "geovigie-data").exists()  # the layer was not published either


def test_kill_9_debris_is_swept_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = _start_predict(SLOVENIA_SCENE, out, tmp_path)
    _wait_for_scratch(out, process)
    process.kill()
    process.communicate(timeout=60)
    debris = [n for n in os.listdir(out) if SCRATCH_MARKER in n]
    assert debris and process.returncode == -signal.SIGKILL  # kill -9 gives no chance to clean up
    rerun = _start_predict(SLOVENIA_SCENE, out, tmp_path)
    _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    left = sorted(os.listdir(out))
    assert not any(SCRATCH_MARKER in n for n in left), left
    stem = f"{open_source(SLOVENIA_SCENE).key}__landcover-s2l1c-slovenia-v4"  # reference_scene_2-<content hash>
    assert [n for n in left if n.endswith(".tif")] == [f"{stem}_classes.tif", f"{stem}_probabilities.tif"]


HOLDER = textwrap.dedent("""
    import sys, time
    from geovigie.atomic import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_text("being written")
        print(tmp, flush=True)
        time.sleep(60)
""")


def test_sweep_spares_a_live_writer_and_removes_it_once_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "result.json")], stdout=subprocess.PIPE,
                              text=True)
    try:
        scratch = Path(holder.stdout.readline().strip())  # type: ignore[union-attr]
        assert scratch.is_file() and SCRATCH_MARKER in scratch.name
        assert sweep_scratch(tmp_path) == [] and scratch.is_file()
        with run_lock(tmp_path) as swept:  # a run starting on the folder spares it too
            assert swept == []
    finally:
        holder.kill()
        holder.wait()
    assert scratch.is_file()  # the killed writer could not clean up
    assert sweep_scratch(tmp_path) == [scratch] and not scratch.exists()
    assert list(tmp_path.iterdir()) == []


def test_sweep_keeps_other_dotfiles(tmp_path: Path) -> None:
    for name in (".gitignore", ".result.json.tmp", "result.gvtmp-1-abc.json"):
        (tmp_path / name).write_text("mine")
    assert sweep_scratch(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 3


LOCKER = textwrap.dedent("""
    import sys, time
    from geovigie.atomic import run_lock
    with run_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(1.5)
""")


def test_second_run_on_a_folder_waits_for_the_first(tmp_path: Path) -> None:
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert locker.stdout.readline().strip() == "locked"  # type: ignore[union-attr]
    started = time.monotonic()
    with run_lock(tmp_path):
        waited = time.monotonic() - started
    locker.wait(timeout=30)
    assert waited > 0.8, waited
