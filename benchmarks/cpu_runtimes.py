"""CPU inference options side by side, in one process: throughput of the bare network and agreement with fp32.

Options: torch (default), torch channels-last, torch int8 dynamic quantisation, torch.compile, ONNX Runtime
(an export made into a temporary copy of the bundle); each as one stream of all threads and as concurrent
single-thread streams (the shape of the Dask worker threads). Agreement: argmax of each option vs torch fp32 on the
shipped Slovenia scene, whole (100 × 101 px, padded as the pipeline pads).

    python benchmarks/cpu_runtimes.py [--seconds 8] [--batch 8] [--tile 256] [--threads 2] [--skip-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
import torch

from geovigie.models import NETWORK_BUNDLE, export_onnx, forward, load_bundle, load_predictor, normalise

REPO = Path(__file__).resolve().parent.parent
SCENE = REPO / "data" / "s2-l1c-slovenia" / "reference_scene_2.tif"


def throughput(predict: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, streams: int, seconds: float) -> float:
    """Tile Mpx/s of `predict` run by `streams` threads at once for `seconds`."""
    predict(batch)
    counts = [0] * streams
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        while time.perf_counter() < stop:
            predict(batch)
            counts[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n, _, h, w = batch.shape
    return sum(counts) * n * h * w / 1e6 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    with rasterio.open(SCENE) as src:
        scene = src.read().astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="gv-runtimes-") as tmp:
        bundle_dir = Path(tmp) / "bundle"
        shutil.copytree(NETWORK_BUNDLE, bundle_dir)  # a network: the default of predict is a pixel classifier
        export_onnx(bundle_dir)
        bundle = load_bundle(bundle_dir)
        real = normalise(bundle.card, scene[None].copy())
        reps = -(-args.tile // min(scene.shape[1:]))
        mosaic = np.tile(scene, (1, reps, reps))[:, : args.tile, : args.tile]
        batch = normalise(bundle.card, np.stack([mosaic] * args.batch).copy())
        cpu = torch.device("cpu")
        reference = forward(bundle.load_network(cpu), real.copy(), cpu, False).argmax(axis=1)
        options: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]] = {
            "torch": lambda: load_predictor(bundle, "cpu", "torch", amp=False),
            "torch channels-last": lambda: load_predictor(bundle, "cpu", "torch", amp=False, channels_last=True),
            "torch int8 dynamic": lambda: load_predictor(bundle, "cpu", "torch", amp=False, quantise=True),
            "onnxruntime": lambda: load_predictor(bundle, "cpu", "onnx", threads=args.threads),
        }
        if not args.skip_compile:
            def compiled() -> Callable[[np.ndarray], np.ndarray]:
                network = torch.compile(bundle.load_network(cpu))
                return lambda x: forward(network, x, cpu, False)

            options["torch.compile"] = compiled
        report: dict[str, object] = {"threads": args.threads, "batch": f"{args.batch} x 13 x {args.tile}²"}
        for name, make in options.items():
            row: dict[str, object] = {}
            try:
                started = time.perf_counter()
                torch.set_num_threads(args.threads)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    predict = make()
                    predict(batch)
                row["load_and_first_batch_s"] = round(time.perf_counter() - started, 1)
                row["argmax_agreement_vs_fp32_pct"] = round(
                    100 * float((predict(real.copy()).argmax(axis=1) == reference).mean()), 3)
                row[f"tile_mpx_per_s_1x{args.threads}"] = round(throughput(predict, batch, 1, args.seconds), 3)
                torch.set_num_threads(1)
                if name == "onnxruntime":  # its threads are fixed per session
                    predict = load_predictor(bundle, "cpu", "onnx", threads=1)
                streams = throughput(predict, batch, args.threads, args.seconds)
                row[f"tile_mpx_per_s_{args.threads}x1"] = round(streams, 3)
            except Exception as err:  # noqa: BLE001 - an option that fails here is reported, not fatal
                row["error"] = f"{type(err).__name__}: {str(err)[:200]}"
            report[name] = row
            print(name, row, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
