"""Benchmark: gunpowder batch production from an S3 server on loopback ÷ from local disk.

The same demo container (``make_demo_data``, ``--volume``³ voxels, raw/gt/mask in 64³ chunks)
is read from local disk and from moto's S3 server (``python -m moto.server`` on 127.0.0.1),
by the gunpowder trainer's batch production in this process (``num_data_fetchers=0``), with
nothing preloaded (``preload_limit_mb=0``): every crop is read lazily from its container.

Measured, interleaved in rounds (local then S3, then S3 then local, ...), wall seconds per
batch:

* ``cold``: the first ``--batches`` batches of a freshly opened dataset, after the batch that
  builds the pipeline (S3: the process's chunk cache is empty and fills; local: the OS page
  cache is warm, as it is after the upload);
* ``warm``: the next ``--batches`` batches (S3: chunks come from the process's LRU cache of
  encoded chunk bytes, so what remains is decompression, as from disk).

``ratio = S3 / local``; the goal is ``warm <= 1.5``.

Usage: ``python benchmarks/bench_remote.py [--batches 10] [--rounds 2] [--json out.json]``;
needs ``pip install 'dacapo-trainers[remote]' 'moto[server]'`` and the gunpowder plugin.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from dacapo_trainers._arrays._remote_data import forget_remote_arrays
from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    UNetConfig,
    ZarrDatasetConfig,
    make_demo_data,
)
from dacapo_trainers_gunpowder import GunpowderTrainerConfig

KEYS = {"key": "bench-key", "secret": "bench-secret"}


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def produce(container: str, options: dict[str, Any] | None, batches: int) -> tuple[float, float]:
    """Mean wall seconds per batch: the first ``batches`` (cold) and the next (warm)."""
    forget_remote_arrays()  # each run starts with an empty chunk cache, as a new process does
    architecture = UNetConfig(
        name="bench_unet", input_shape=[44] * 3, num_fmaps=4, downsample_factors=[[2, 2, 2]]
    )
    task = AffinitiesTaskConfig(name="bench_affinities").build()
    dataset = ZarrDatasetConfig(
        name="bench", container=container, mask="mask", storage_options=options
    ).build()
    torch.manual_seed(0)
    model = task.predictor.create_model(architecture.build())
    config = GunpowderTrainerConfig(
        name="bench", batch_size=2, learning_rate=1e-4, num_data_fetchers=0, preload_limit_mb=0
    )
    trainer = config.build_trainer()
    trainer.seed = 0
    trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task)
    walls = []
    with trainer:
        source = trainer._start_batches(0)
        source.get(0).release()  # builds the pipeline (not timed)
        for index in range(1, 2 * batches + 1):
            start = time.perf_counter()
            source.get(index).release()
            walls.append(time.perf_counter() - start)
    return statistics.mean(walls[:batches]), statistics.mean(walls[batches:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="batches per phase")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--volume", type=int, default=128, help="demo volume edge (voxels)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import s3fs

    local = make_demo_data(Path(tempfile.mkdtemp()) / "bench.zarr", shape=(args.volume,) * 3)
    results: dict[str, Any] = {
        "setup": {"volume": args.volume, "batches": args.batches, "rounds": args.rounds},
        "load_average": os.getloadavg(),
    }
    with s3_server() as endpoint:
        options = {"endpoint_url": endpoint, **KEYS}
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        fs.mkdir("bench")
        fs.put(str(local), "bench/bench.zarr", recursive=True)
        sources = {"local": (str(local), None), "s3": ("s3://bench/bench.zarr", options)}
        produce(str(local), None, 2)  # imports and first-use costs, not timed
        times: dict[str, list[tuple[float, float]]] = {"local": [], "s3": []}
        for round_index in range(args.rounds):
            order = ["local", "s3"] if round_index % 2 == 0 else ["s3", "local"]
            for name in order:
                container, storage_options = sources[name]
                times[name].append(produce(container, storage_options, args.batches))
    for phase, column in (("cold", 0), ("warm", 1)):
        local_s = statistics.mean(t[column] for t in times["local"])
        s3_s = statistics.mean(t[column] for t in times["s3"])
        results[phase] = {"local_s": local_s, "s3_s": s3_s, "ratio": s3_s / local_s}
        print(
            f"{phase}: local {local_s:.4f} s/batch, s3 {s3_s:.4f} s/batch, "
            f"ratio {s3_s / local_s:.2f}",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
