"""End-to-end tiled inference vs the bare forward pass and vs the loop a user would write, in one run.

Builds a uint16 13-band Sentinel-2 L1C raster (digital numbers = reflectance × 10000, as the products are
distributed; deflate, 512² blocks) of at least the given size by tiling the shipped Slovenia scene, into a
temporary folder. Then, each in its own process (peak RSS of the process and its children sampled every 50 ms):
  - ours:    `geovigie.inference.predict` (Dask LocalCluster, chunked reads, blending on the workers, class and
             probability COGs with overviews), `input_scale=1e-4`;
  - naive:   `benchmarks/naive_loop.py` (per-window reads, logits summed in whole-raster arrays, one GeoTIFF);
  - forward: the bare network on random tensors of the same batch shape, with the same threads, either as one
             stream of all threads or as concurrent streams shaped like the Dask worker threads (the faster counts).

    python benchmarks/inference_throughput.py [--size 2048 4096] [--dtype uint16|float32] [--workers 1]
        [--threads 2] [--skip-naive] [--skip-forward] [--compare-legacy-cog] [--runtime torch] [--channels-last]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import rasterio

REPO = Path(__file__).resolve().parent.parent
SCENE = REPO / "data" / "s2-l1c-slovenia" / "reference_scene_2.tif"
DN_SCALE = 1e-4
"""Sentinel-2 L1C digital numbers are reflectance × 10000."""


def make_mosaic(target: Path, size: int, dtype: str = "uint16") -> Path:
    """Repeat the real scene into a size × size (at least) tiled GeoTIFF, written block row by block row."""
    with rasterio.open(SCENE) as src:
        scene, profile, descriptions = src.read(), src.profile, src.descriptions
    if dtype == "uint16":
        scene = np.clip(np.rint(scene / DN_SCALE), 1, 65535).astype(np.uint16)  # 0 is the products' nodata
        profile.update(dtype="uint16", nodata=0, predictor=2)
    else:
        profile.update(predictor=3)
    reps_y, reps_x = math.ceil(size / scene.shape[1]), math.ceil(size / scene.shape[2])
    height, width = reps_y * scene.shape[1], reps_x * scene.shape[2]
    profile.update(width=width, height=height, tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                   BIGTIFF="YES")
    row_band = np.tile(scene, (1, 1, reps_x))
    with rasterio.open(target, "w", **profile) as dst:
        dst.descriptions = descriptions
        dst.update_tags(PROCESSING_LEVEL="L1C")
        for r in range(reps_y):
            dst.write(row_band, window=rasterio.windows.Window(0, r * scene.shape[1], width, scene.shape[1]))
    return target


class PeakRSS:
    """Samples the resident memory of a process and its children every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        """(time.time(), RSS bytes) every 50 ms."""
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                total = self._process.memory_info().rss
                for child in self._process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        total += child.memory_info().rss
            self.peak = max(self.peak, total)
            self.samples.append((time.time(), total))
            time.sleep(0.05)

    def peak_between(self, start: float, stop: float) -> int:
        """The highest sample taken between two `time.time()` instants."""
        return max((rss for t, rss in self.samples if start <= t <= stop), default=0)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_phase(args: list[str]) -> dict[str, object]:
    """Run this script (or another) as a child process; its last stdout line is JSON. Adds wall time and peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=REPO)
    with PeakRSS(child.pid) as memory:
        out, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"{args} failed ({child.returncode})")
    report = json.loads(out.strip().splitlines()[-1])
    report["process_seconds"] = round(time.perf_counter() - started, 1)
    report["peak_rss_mib"] = round(memory.peak / 2**20)
    if "blocks_done_at" in report:  # ours: peak while predicting, and during the COG pass that follows
        report["peak_rss_mib_predicting"] = round(memory.peak_between(0, float(report["blocks_done_at"])) / 2**20)
        report["peak_rss_mib_cog_pass"] = round(memory.peak_between(float(report["blocks_done_at"]), math.inf)
                                                / 2**20)
    return report


# ------------------------------------------------------------------------------------------------ phases (children)


def _legacy_cog_pass() -> None:
    """The COG pass as it was before (deflate scratch, rio-cogeo's cog_translate), for a same-run comparison."""
    import functools

    import geovigie.cog
    import geovigie.inference._predict

    def rio_cogeo(scratch: Path, cog: Path, resampling: str, level: int | None = None) -> None:
        from rio_cogeo.cogeo import cog_translate
        from rio_cogeo.profiles import cog_profiles

        profile = cog_profiles.get("deflate")
        profile.update(blockxsize=256, blockysize=256)
        with rasterio.open(scratch) as src:
            colormap = src.colormap(1) if src.count == 1 and src.colorinterp[0].name == "palette" else None
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_TIFF_INTERNAL_MASK=True):
            cog_translate(str(scratch), str(cog), profile, overview_resampling=resampling, quiet=True,
                          colormap=colormap, in_memory=False)

    geovigie.cog._to_cog = rio_cogeo  # type: ignore[assignment]
    geovigie.inference._predict.cog_writer = functools.partial(  # type: ignore[assignment]
        geovigie.cog.cog_writer, scratch_compress="deflate")


def phase_ours(args: argparse.Namespace) -> dict[str, object]:
    from geovigie.inference import PredictOptions, dask_client, predict
    from geovigie.settings import Settings

    if args.legacy_cog:
        _legacy_cog_pass()

    settings = Settings(data_dir=args.out, tile_size=args.tile, overlap=args.overlap, batch_size=args.batch,
                        dask_workers=args.workers, dask_threads_per_worker=args.threads,
                        dask_processes=args.processes, device="cpu")
    base = PredictOptions.from_settings(settings)
    extra: dict[str, object] = {}
    fields = getattr(PredictOptions, "__dataclass_fields__", {})
    if "input_scale" in fields and args.dtype == "uint16":
        extra["input_scale"] = DN_SCALE
    for name in ("runtime", "channels_last", "chunk_tiles"):
        value = getattr(args, name)
        if name in fields and value is not None:
            extra[name] = value
    options = PredictOptions(**{**{f: getattr(base, f) for f in fields}, **extra})
    force = args.dtype == "uint16" and "input_scale" not in extra
    with dask_client(settings) as client:
        client.run(lambda: None)  # workers started before the clock runs
        cpu = _cpu_seconds()
        began = time.time()
        result = predict(args.raster, args.out / "pred", options, client=client, overwrite=True, progress=False,
                         force=force, bundle=args.bundle)
        cpu = _cpu_seconds() - cpu
    return {"seconds": result.seconds, "seconds_predicting": result.seconds_predicting, "tiles": result.tiles,
            "blocks_done_at": began + result.seconds_predicting,
            "options": str(options), "cpu_seconds": cpu if not args.processes else None,
            "stage_seconds": {k: round(v, 1) for k, v in getattr(result, "stage_seconds", {}).items()}}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads): robust to other jobs sharing the cores."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def phase_naive(args: argparse.Namespace) -> dict[str, object]:
    sys.path.insert(0, str(Path(__file__).parent))
    from naive_loop import naive_predict

    scale = DN_SCALE if args.dtype == "uint16" else 1.0
    return naive_predict(str(args.raster), str(args.out / "naive_classes.tif"), args.tile, args.overlap, args.batch,
                         args.workers * args.threads * _torch_threads(args), scale)


def _torch_threads(args: argparse.Namespace) -> int:
    from geovigie.inference._cluster import usable_cores

    return max(1, usable_cores() // (args.workers * args.threads))


def phase_forward(args: argparse.Namespace, seconds: float = 15.0) -> dict[str, object]:
    """Tile Mpx/s of the bare network on random input: one stream of all threads, and Dask-shaped streams."""
    import torch

    from geovigie.models import load_bundle, load_predictor

    bundle = load_bundle(args.bundle)
    x = np.random.default_rng(0).standard_normal((args.batch, len(bundle.card.bands), args.tile, args.tile),
                                                 dtype=np.float32)

    def stream(count: list[int], stop: float) -> None:
        while time.perf_counter() < stop:
            net(x)
            count.append(1)

    results = {}
    total = args.workers * args.threads * _torch_threads(args)
    for name, streams, threads in (("one_stream", 1, total), ("dask_shaped", args.workers * args.threads,
                                                              _torch_threads(args))):
        torch.set_num_threads(threads)
        net = load_predictor(bundle, "cpu", args.runtime or "auto", amp=False, threads=threads,
                             channels_last=bool(args.channels_last))
        net(x)
        counts: list[list[int]] = [[] for _ in range(streams)]
        cpu = _cpu_seconds()
        start = time.perf_counter()
        workers = [threading.Thread(target=stream, args=(c, start + seconds)) for c in counts]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        n = sum(len(c) for c in counts)
        tile_mpx = n * args.batch * args.tile * args.tile / 1e6
        results[name] = tile_mpx / (time.perf_counter() - start)
        results[f"{name}_cpu_s_per_tile_mpx"] = (_cpu_seconds() - cpu) / tile_mpx
    return results


# ------------------------------------------------------------------------------------------------ parent


def run_size(args: argparse.Namespace, size: int, folder: Path) -> dict[str, object]:
    raster = folder / f"mosaic_{size}_{args.dtype}.tif"
    if not raster.exists():
        make_mosaic(raster, size, args.dtype)
    with rasterio.open(raster) as src:
        width, height = src.width, src.height
    common = [str(Path(__file__)), "--raster", str(raster), "--out", str(folder), "--tile", str(args.tile),
              "--overlap", str(args.overlap), "--batch", str(args.batch), "--workers", str(args.workers),
              "--threads", str(args.threads), "--dtype", args.dtype]
    common += ["--processes"] if args.processes else []
    common += ["--runtime", args.runtime] if args.runtime else []
    common += ["--channels-last"] if args.channels_last else []
    common += ["--chunk-tiles", str(args.chunk_tiles)] if args.chunk_tiles else []
    if args.runtime == "onnx":  # an export in a copy of the shipped bundle
        from geovigie.models import export_onnx, load_bundle

        copy = folder / "bundle-onnx"
        if not copy.exists():
            shutil.copytree(load_bundle().path, copy)
            export_onnx(copy)
        common += ["--bundle", str(copy)]
    legacy = run_phase([*common, "--phase", "ours", "--legacy-cog"]) if args.compare_legacy_cog else None
    ours = run_phase([*common, "--phase", "ours"])
    naive = None if args.skip_naive else run_phase([*common, "--phase", "naive"])
    if args.skip_forward:
        return _memory_report(args, width, height, ours)
    forward = run_phase([*common, "--phase", "forward"])
    tile_mpx = int(ours["tiles"]) * args.tile**2 / 1e6
    best_forward = max(float(forward["one_stream"]), float(forward["dask_shaped"]))
    ours_tile_mpx = tile_mpx / float(ours["seconds"])
    report: dict[str, object] = {
        "raster": f"{width} x {height} px ({width * height / 1e6:.1f} Mpx), 13 bands {args.dtype}",
        "tiles": ours["tiles"],
        "dask": f"{args.workers} worker(s) x {args.threads} threads "
                f"({'processes' if args.processes else 'threads'}), {_torch_threads(args)} torch thread(s) each",
        "ours_seconds": round(float(ours["seconds"]), 1),
        "ours_seconds_until_last_block": round(float(ours["seconds_predicting"]), 1),
        "ours_process_seconds": ours["process_seconds"],
        "ours_peak_rss_mib": ours["peak_rss_mib"],
        "ours_peak_rss_mib_predicting": ours.get("peak_rss_mib_predicting"),
        "ours_peak_rss_mib_cog_pass": ours.get("peak_rss_mib_cog_pass"),
        "ours_tile_mpx_per_s": round(ours_tile_mpx, 3),
        "forward_tile_mpx_per_s_one_stream": round(float(forward["one_stream"]), 3),
        "forward_tile_mpx_per_s_dask_shaped": round(float(forward["dask_shaped"]), 3),
        "efficiency_ours_vs_best_forward": round(ours_tile_mpx / best_forward, 3),
        "forward_peak_rss_mib": forward["peak_rss_mib"],
        "ours_worker_thread_seconds_by_stage": ours["stage_seconds"],
        "options": ours["options"],
    }
    if ours["cpu_seconds"] is not None:
        ours_cpu = float(ours["cpu_seconds"]) / tile_mpx
        best_cpu = min(float(forward[f"{name}_cpu_s_per_tile_mpx"]) for name in ("one_stream", "dask_shaped"))
        report.update({
            "ours_cpu_s_per_tile_mpx": round(ours_cpu, 3),
            "forward_cpu_s_per_tile_mpx_one_stream": round(float(forward["one_stream_cpu_s_per_tile_mpx"]), 3),
            "forward_cpu_s_per_tile_mpx_dask_shaped": round(float(forward["dask_shaped_cpu_s_per_tile_mpx"]), 3),
            "efficiency_cpu_time_forward_vs_ours": round(best_cpu / ours_cpu, 3),
        })
    if legacy is not None:
        report.update({
            "legacy_cog_ours_seconds": round(float(legacy["seconds"]), 1),
            "legacy_cog_ours_seconds_until_last_block": round(float(legacy["seconds_predicting"]), 1),
            "legacy_cog_ours_peak_rss_mib": legacy["peak_rss_mib"],
            "legacy_cog_efficiency_vs_best_forward": round(tile_mpx / float(legacy["seconds"]) / best_forward, 3),
        })
    if naive is not None:
        report.update({
            "naive_seconds": round(float(naive["seconds"]), 1),
            "naive_process_seconds": naive["process_seconds"],
            "naive_peak_rss_mib": naive["peak_rss_mib"],
            "naive_tile_mpx_per_s": round(tile_mpx / float(naive["seconds"]), 3),
            "ours_over_naive_throughput": round(float(naive["seconds"]) / float(ours["seconds"]), 3),
        })
    return report


def _memory_report(args: argparse.Namespace, width: int, height: int, ours: dict[str, object]) -> dict[str, object]:
    """`--skip-forward`: the end-to-end time and peak memory of ours only."""
    return {"raster": f"{width} x {height} px ({width * height / 1e6:.1f} Mpx), 13 bands {args.dtype}",
            "tiles": ours["tiles"], "ours_seconds": round(float(ours["seconds"]), 1),
            "ours_seconds_until_last_block": round(float(ours["seconds_predicting"]), 1),
            "ours_peak_rss_mib": ours["peak_rss_mib"],
            "ours_peak_rss_mib_predicting": ours.get("peak_rss_mib_predicting"),
            "ours_peak_rss_mib_cog_pass": ours.get("peak_rss_mib_cog_pass"),
            "ours_worker_thread_seconds_by_stage": ours["stage_seconds"],
            "options": ours["options"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--dtype", choices=["uint16", "float32"], default="uint16")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--processes", action="store_true", help="Dask workers as processes, not threads.")
    parser.add_argument("--runtime", default=None, help="PredictOptions.runtime: auto, torch or onnx (an ONNX export "
                        "is made into a copy of the shipped bundle); the bare forward pass uses the same.")
    parser.add_argument("--channels-last", action="store_true", default=None)
    parser.add_argument("--chunk-tiles", type=int, default=None)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-forward", action="store_true", help="Time and memory of ours only (no efficiency).")
    parser.add_argument("--compare-legacy-cog", action="store_true", help="Also run ours with the COG pass as it "
                        "was (deflate scratch + rio-cogeo), in the same run.")
    parser.add_argument("--legacy-cog", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, default=None, help="Keep mosaics and outputs in this folder.")
    parser.add_argument("--phase", choices=["ours", "naive", "forward"], help=argparse.SUPPRESS)
    parser.add_argument("--raster", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phases = {"ours": phase_ours, "naive": phase_naive, "forward": phase_forward}
        print(json.dumps(phases[args.phase](args)))
        return
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gv-bench-")))
        folder.mkdir(parents=True, exist_ok=True)
        reports = [run_size(args, size, folder) for size in args.size]
    header = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
              "gdal_cachemax": os.environ.get("GDAL_CACHEMAX", "GDAL default (5% of RAM)")}
    print(json.dumps({**header, "runs": reports}, indent=2))


if __name__ == "__main__":
    main()
