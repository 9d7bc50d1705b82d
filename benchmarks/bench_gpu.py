"""Keeping a GPU fed: trainer s/iter against the bare step, in one run, side by side.

The GPU table, for the code as it is: the reference U-Net (``small``: 8 fmaps x2, two
(2, 2, 2) downsamplings, 84³ -> 44³; ``medium``: 12 fmaps x5, three downsamplings,
140³ -> 48³), the affinities task, batch 2, demo data with a mask. For each model (and, for
the medium one, also ``bf16`` and ``bf16 + channels_last_3d``):

* ``bare step``: forward + loss + backward + RAdam step on a batch already on the device,
  synchronised (``loss.item()``), median over ``iterations`` after ``warmup``; measured before
  and after the trainers of its row, both sets pooled;
* ``simple-tensor``, ``gunpowder F fetchers`` (plain, and with elastic + simple + intensity
  augments): median ``TrainingIterationStats.time`` (waiting for data included) after
  ``warmup``, as a ratio to the bare step. For gunpowder also the training process's CPU
  seconds per iteration and the data workers' busy fraction.

``loss``: the demo run (``dacapo-trainers demo``'s config, through :func:`dacapo_trainers.train`)
in float32 and in bf16, its loss curve. ``disk``: arrays over ``preload_limit_mb`` read per
sample from zarr (raw in 64³ Blosc-Zstd chunks, as EM volumes are stored): s/iter against the
volume size and the number of datasets.

Results go to ``--out`` (``results.json``, ``results.md``, ``loss_curve.png``), written after
every measurement, so a run stopped by ``--budget-s`` or a timeout leaves what it measured.

    python benchmarks/bench_gpu.py --out bench-gpu            # on a CUDA machine
    python benchmarks/bench_gpu.py --smoke --out /tmp/smoke   # tiny sizes, on the CPU
    python benchmarks/bench_gpu.py --size cpu --parts disk --out /tmp/disk   # CPU disk table

Without a CUDA device and without ``--smoke``/``--size cpu`` it measures nothing and says so
(``nox -s bench`` runs it that way).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dacapo_trainers import open_array, train, write_array
from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    UNetConfig,
    ZarrDatasetConfig,
    make_demo_data,
)
from dacapo_trainers_gunpowder import GunpowderTrainerConfig, IntensityAugmentConfig
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gunpowder import augments as dacapo_augments

#: Sizes of a run. ``gpu``: the issue's; ``smoke``: seconds on a CPU; ``cpu``: a CPU disk table.
PRESETS: dict[str, dict[str, Any]] = {
    "gpu": {
        "iterations": 40,
        "warmup": 8,
        "fetchers": [1, 4, 8, 14],
        "volume": 256,
        "models": {
            "small": {"input": 84, "num_fmaps": 8, "fmap_inc_factor": 2, "levels": 2},
            "medium": {"input": 140, "num_fmaps": 12, "fmap_inc_factor": 5, "levels": 3},
        },
        "variants": {"small": ["32"], "medium": ["32", "bf16", "bf16+channels_last"]},
        "loss_iterations": 300,
        "disk": {
            "model": "small",
            "fetchers": 8,
            "volume_limit_mb": 8,
            "volume_edges": [256, 384, 512],
            "count_limit_mb": 2,
            "count_edge": 160,
            "counts": [1, 10, 100],
        },
    },
    "smoke": {
        "iterations": 3,
        "warmup": 1,
        "fetchers": [1, 2],
        "volume": 56,
        "models": {
            "small": {"input": 28, "num_fmaps": 2, "fmap_inc_factor": 2, "levels": 1},
            "medium": {"input": 44, "num_fmaps": 2, "fmap_inc_factor": 2, "levels": 2},
        },
        "variants": {"small": ["32"], "medium": ["32", "bf16", "bf16+channels_last"]},
        "loss_iterations": 4,
        "disk": {
            "model": "small",
            "fetchers": 1,
            "volume_limit_mb": 0.05,
            "volume_edges": [48, 64],
            "count_limit_mb": 0.05,
            "count_edge": 48,
            "counts": [1, 3],
        },
    },
    "cpu": {
        "iterations": 10,
        "warmup": 2,
        "fetchers": [1, 2],
        "volume": 96,
        "models": {
            "small": {"input": 44, "num_fmaps": 4, "fmap_inc_factor": 2, "levels": 1},
            "medium": {"input": 84, "num_fmaps": 8, "fmap_inc_factor": 2, "levels": 2},
        },
        "variants": {"small": ["32"], "medium": ["32"]},
        "loss_iterations": 50,
        "disk": {
            "model": "small",
            "fetchers": 2,
            "volume_limit_mb": 1,
            "volume_edges": [128, 192, 256],
            "count_limit_mb": 1,
            "count_edge": 112,
            "counts": [1, 10, 100],
        },
    },
}
PARTS = ("main", "loss", "disk")
BATCH_SIZE = 2
VOXEL_SIZE = (8, 8, 8)


class OutOfTime(Exception):
    """The run's time budget is spent; what is left is skipped."""


class Bench:
    """One run: its settings, device, deadline and results (saved after each measurement)."""

    def __init__(self, args: argparse.Namespace, preset: dict[str, Any], device: Any) -> None:
        self.args = args
        self.preset = preset
        self.device = device
        self.out: Path = args.out
        self.deadline = time.monotonic() + args.budget_s if args.budget_s else math.inf
        self.results: dict[str, Any] = {"setup": setup_facts(args, preset, device)}

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTime

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.results, indent=2, default=float)
        (self.out / "results.json").write_text(text + "\n")
        if self.args.json is not None:
            self.args.json.write_text(text + "\n")
        (self.out / "results.md").write_text(markdown(self.results))


def setup_facts(args: argparse.Namespace, preset: dict[str, Any], device: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "size": args.size,
        "device": str(device),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cores": len(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(),
        "batch_size": BATCH_SIZE,
        **{k: preset[k] for k in ("iterations", "warmup", "fetchers", "volume")},
    }
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    for distribution in ("gunpowder", "zarr", "funlib.persistence", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            facts[distribution] = importlib.metadata.version(distribution)
    return facts


# -- problem ---------------------------------------------------------------------------------


def architecture(spec: dict[str, Any]) -> UNetConfig:
    return UNetConfig(
        name="bench_unet",
        input_shape=[spec["input"]] * 3,
        num_fmaps=spec["num_fmaps"],
        fmap_inc_factor=spec["fmap_inc_factor"],
        downsample_factors=[[2, 2, 2]] * spec["levels"],
    )


def new_model(spec: dict[str, Any], task: Any, device: Any) -> Any:
    torch.manual_seed(0)
    return task.predictor.create_model(architecture(spec).build()).to(device)


def dataset(container: Path, name: str = "demo") -> Any:
    """A dataset of the demo's layout, its uint8 raw mapped onto [0, 1]: DaCapo's
    IntensityAugment (the augmented rows) clips to [0, 1] and needs raw there."""
    return ZarrDatasetConfig(
        name=name,
        container=str(container),
        gt="gt",
        mask="mask",
        intensity_range=(0, 255),
        normalized_range=(0, 1),
    ).build()


def augments() -> list[Any]:
    """Elastic + simple (as DaCapo's default trainer config, bench_gunpowder.py's) + intensity."""
    return [*dacapo_augments(), IntensityAugmentConfig(scale=(0.75, 1.5), shift=(-0.2, 0.2))]


def step_fields(variant: str) -> dict[str, Any]:
    """BatchTrainerConfig fields of a row variant: ``32``, ``bf16``, ``bf16+channels_last``."""
    return {
        "precision": "bf16" if variant.startswith("bf16") else "32",
        "channels_last_3d": variant.endswith("channels_last"),
    }


def gunpowder_config(variant: str, fetchers: int, **fields: Any) -> GunpowderTrainerConfig:
    return GunpowderTrainerConfig(
        name="bench",
        batch_size=BATCH_SIZE,
        learning_rate=1e-4,
        num_data_fetchers=fetchers,
        **step_fields(variant),
        **fields,
    )


# -- measurements ------------------------------------------------------------------------------


def sync(device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_batch(spec: dict[str, Any], task: Any, datasets: list[Any]) -> list[Any]:
    """raw, target, weight of a gunpowder batch, made once in this process (on the host)."""
    model = new_model(spec, task, torch.device("cpu"))
    trainer = gunpowder_config("32", 0).build_trainer()
    trainer.seed = 1
    trainer.create_optimizer(model)
    trainer.build_batch_provider(datasets, model, task)
    with trainer:
        batch = trainer.next_batch(0)
        tensors = [t.clone() for t in (batch.raw, batch.target, batch.weight)]
        batch.release()
    return tensors


def bare_steps(
    spec: dict[str, Any], task: Any, tensors: list[Any], variant: str, bench: Bench
) -> list[float]:
    """Seconds of each synchronised bare step after warmup (batch already on the device)."""
    device, preset = bench.device, bench.preset
    model = new_model(spec, task, device)
    optimizer = torch.optim.RAdam(model.parameters(), lr=1e-4, decoupled_weight_decay=True)
    raw, target, weight = (t.to(device) for t in tensors)
    fields = step_fields(variant)
    if fields["channels_last_3d"]:
        model.to(memory_format=torch.channels_last_3d)
        raw = raw.contiguous(memory_format=torch.channels_last_3d)
    dtype = torch.bfloat16 if fields["precision"] == "bf16" else None
    model.train()
    times = []
    for i in range(preset["warmup"] + preset["iterations"]):
        sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss = task.loss.compute(model(raw), target, weight)
        loss.backward()
        optimizer.step()
        loss.item()
        sync(device)
        if i >= preset["warmup"]:
            times.append(time.perf_counter() - start)
    return times


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of processes ``pids`` so far (Linux), or None."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return None
    return total


def trainer_run(
    config: Any, spec: dict[str, Any], task: Any, datasets: list[Any], bench: Bench
) -> dict[str, Any]:
    """Median s/iter of ``config``'s trainer after warmup, and where the CPU time went."""
    bench.check_time()
    device, preset = bench.device, bench.preset
    model = new_model(spec, task, device)
    trainer = config.build_trainer()
    trainer.seed = 0
    optimizer = trainer.create_optimizer(model)
    built = time.perf_counter()
    trainer.build_batch_provider(datasets, model, task)
    prepare = time.perf_counter() - built
    times: list[float] = []
    own_cpu = workers_cpu = None
    with trainer:
        steps = trainer.iterate(preset["warmup"] + preset["iterations"], model, optimizer, device)
        times += [next(steps).time for _ in range(preset["warmup"])]
        pids = list(getattr(trainer, "worker_pids", []))
        own, workers, wall = time.process_time(), cpu_seconds(pids), time.perf_counter()
        times += [stats.time for stats in steps]
        wall = time.perf_counter() - wall
        own_cpu = (time.process_time() - own) / preset["iterations"]
        after = cpu_seconds(pids)
        if pids and workers is not None and after is not None:
            workers_cpu = (after - workers) / (wall * len(pids))
    timed = times[preset["warmup"] :]
    return {
        "s_per_iter": statistics.median(timed),
        "walls": timed,
        "first_iteration": times[0],
        "prepare_s": prepare,
        "training_process_cpu_s_per_iter": own_cpu,
        "workers_busy": workers_cpu,
    }


def measure_row(
    bench: Bench, name: str, spec: dict[str, Any], variant: str, demo: Path
) -> dict[str, Any]:
    """One row of the table: bare step, simple-tensor, gunpowder without and with augments."""
    task = AffinitiesTaskConfig(name="bench_affinities").build()
    datasets = [dataset(demo)]
    tensors = first_batch(spec, task, datasets)
    row: dict[str, Any] = {"model": name, "variant": variant, "input": spec["input"]}
    key = f"{name} {variant}"
    bench.results.setdefault("rows", {})[key] = row
    bare = bare_steps(spec, task, tensors, variant, bench)
    row["bare_before"] = statistics.median(bare)

    def measure(label: str, config: Any) -> None:
        try:
            result = trainer_run(config, spec, task, datasets, bench)
        except OutOfTime:
            row[label] = {"skipped": "time budget spent"}
            raise
        result["ratio"] = result["s_per_iter"] / row["bare_s"]
        row[label] = result
        print(
            f"{key:<28} {label:<26} {result['s_per_iter'] * 1e3:8.1f} ms  {result['ratio']:6.2f}x",
            flush=True,
        )
        bench.save()

    row["bare_s"] = row["bare_before"]
    try:
        simple = SimpleTensorTrainerConfig(
            name="bench", batch_size=BATCH_SIZE, learning_rate=1e-4, **step_fields(variant)
        )
        measure("simple-tensor", simple)
        for with_augments in (False, True):
            for fetchers in bench.preset["fetchers"]:
                config = gunpowder_config(
                    variant, fetchers, augments=augments() if with_augments else []
                )
                measure(f"gunpowder {fetchers}{' augmented' if with_augments else ''}", config)
    finally:
        after = bare_steps(spec, task, tensors, variant, bench)
        row["bare_after"] = statistics.median(after)
        row["bare_s"] = statistics.median(bare + after)
        for result in row.values():  # ratios against the pooled bare step
            if isinstance(result, dict) and "s_per_iter" in result:
                result["ratio"] = result["s_per_iter"] / row["bare_s"]
        bench.save()
    return row


# -- the demo's loss curve ----------------------------------------------------------------------


def loss_curves(bench: Bench) -> None:
    from dacapo_trainers._cli._demo_setup import demo_run_data  # the demo's own run config

    curves: dict[str, Any] = {}
    bench.results["loss"] = curves
    data = bench.out / "work" / "demo-run.zarr"
    if not (data / "mask").exists():
        make_demo_data(data)  # the demo's data
    for precision in ("32", "bf16"):
        bench.check_time()
        output = bench.out / "work" / f"demo-{precision}"
        if output.exists():
            shutil.rmtree(output)
        output.mkdir(parents=True)
        run = demo_run_data("GunpowderTrainerConfig", bench.preset["loss_iterations"], output)
        run["datasets"][0]["container"] = str(data)
        run["trainer_config"]["precision"] = precision
        run["device"] = str(bench.device)
        run_file = output / "run.json"
        run_file.write_text(json.dumps(run))
        started = time.perf_counter()
        train(run_file, quiet=True)
        records = [json.loads(line) for line in (output / "stats.jsonl").read_text().splitlines()]
        losses = [r["loss"] for r in records if "loss" in r and "iteration" in r]
        tail = max(1, len(losses) // 6)
        curves[precision] = {
            "losses": losses,
            "first_mean": statistics.mean(losses[:tail]),
            "last_mean": statistics.mean(losses[-tail:]),
            "wall_s": time.perf_counter() - started,
        }
        print(
            f"demo loss {precision}: {curves[precision]['first_mean']:.4f} -> "
            f"{curves[precision]['last_mean']:.4f}",
            flush=True,
        )
        bench.save()
    plot_losses(curves, bench.out / "loss_curve.png")


def plot_losses(curves: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for precision, curve in curves.items():
        axes.plot(curve["losses"], label=precision, linewidth=1)
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss")
    axes.set_title("demo run: float32 vs bf16 autocast")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# -- data read from disk per sample -------------------------------------------------------------


def write_blosc_raw(container: Path, data: np.ndarray) -> None:
    """Rewrite ``raw`` in 64³ chunks compressed with Blosc (zstd, bit shuffle), attributes kept."""
    import zarr

    group = zarr.open_group(str(container), mode="a")
    attributes = dict(group["raw"].attrs)
    del group["raw"]
    chunks = (64,) * data.ndim
    if hasattr(group, "create_array"):  # zarr 3
        from zarr.codecs import BloscCodec

        codec = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")
        array = group.create_array(
            "raw", shape=data.shape, dtype=data.dtype, chunks=chunks, compressors=[codec]
        )
    else:  # zarr 2
        from numcodecs import Blosc

        compressor = Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)
        array = group.create_dataset(
            "raw", shape=data.shape, dtype=data.dtype, chunks=chunks, compressor=compressor
        )
    array[...] = data
    array.attrs.update(attributes)


def disk_volume(base: dict[str, np.ndarray], edge: int, path: Path) -> Path:
    """The demo volume tiled to ``edge``³ (gt as uint32) in zarr at ``path``, 64³ chunks."""
    if (path / ".done").exists():
        return path
    for name, data in base.items():
        reps = -(-edge // data.shape[0])
        tiled = np.tile(data, (reps,) * 3)[:edge, :edge, :edge]
        if name == "gt":
            tiled = tiled.astype(np.uint32)
        write_array(path, name, tiled, voxel_size=VOXEL_SIZE, chunks=(64,) * 3)
        if name == "raw":
            write_blosc_raw(path, tiled)
    (path / ".done").write_text("")
    return path


def disk_part(bench: Bench, demo: Path) -> None:
    settings = bench.preset["disk"]
    spec = bench.preset["models"][settings["model"]]
    task = AffinitiesTaskConfig(name="bench_affinities").build()
    base = {name: open_array(demo, name).to_numpy() for name in ("raw", "gt", "mask")}
    work = bench.out / "work" / "disk"
    disk: dict[str, Any] = {"settings": settings, "model": settings["model"], "rows": {}}
    bench.results["disk"] = disk
    tensors = first_batch(spec, task, [dataset(demo)])
    bare_before = bare_steps(spec, task, tensors, "32", bench)
    bare = statistics.median(bare_before)
    disk["bare_s"] = bare
    fetchers = settings["fetchers"]

    def measure(label: str, datasets: list[Any], limit_mb: float, nbytes: int) -> None:
        config = gunpowder_config("32", fetchers, preload_limit_mb=limit_mb)
        result = trainer_run(config, spec, task, datasets, bench)
        result["ratio"] = result["s_per_iter"] / bare
        result["raw_mb_per_dataset"] = nbytes / 2**20
        result["times_limit"] = nbytes / 2**20 / limit_mb if limit_mb < 1e6 else None
        disk["rows"][label] = result
        print(
            f"disk {label:<34} {result['s_per_iter'] * 1e3:8.1f} ms  {result['ratio']:6.2f}x"
            f"  prepare {result['prepare_s']:.1f} s",
            flush=True,
        )
        bench.save()

    try:
        disk_rows(bench, base, work, measure)
    finally:  # the bare step again, pooled with the first one; every ratio against both
        bare = statistics.median(bare_before + bare_steps(spec, task, tensors, "32", bench))
        disk["bare_s"] = bare
        rows = disk["rows"]
        for label, result in rows.items():
            result["ratio"] = result["s_per_iter"] / bare
            preloaded = rows.get(label.replace("from disk", "preloaded"))
            if preloaded is not None and preloaded is not result:
                result["vs_preloaded"] = result["s_per_iter"] / preloaded["s_per_iter"]
        bench.save()


def disk_rows(
    bench: Bench, base: dict[str, np.ndarray], work: Path, measure: Callable[..., None]
) -> None:
    """The volume sizes (each from disk and preloaded), then the numbers of datasets."""
    settings = bench.preset["disk"]
    for edge in settings["volume_edges"]:
        path = disk_volume(base, edge, work / f"volume-{edge}.zarr")
        limit = settings["volume_limit_mb"]
        measure(f"volume {edge}³, from disk", [dataset(path)], limit, edge**3)
        measure(f"volume {edge}³, preloaded", [dataset(path)], 1e6, edge**3)  # no limit
    edge = settings["count_edge"]
    source = disk_volume(base, edge, work / f"count-{edge}.zarr")
    for count in settings["counts"]:
        paths = []
        for i in range(count):
            path = work / f"count-{edge}-{i}.zarr"
            if not path.exists():
                shutil.copytree(source, path)
            paths.append(path)
        datasets = [dataset(path, f"d{i}") for i, path in enumerate(paths)]
        label = f"{count} dataset{'s' if count > 1 else ''} of {edge}³, from disk"
        measure(label, datasets, settings["count_limit_mb"], edge**3)


# -- the report ---------------------------------------------------------------------------------


def ratio_cell(row: dict[str, Any], label: str) -> str:
    result = row.get(label)
    if not isinstance(result, dict):
        return "-"
    if "skipped" in result:
        return "skipped"
    return f"{result['ratio']:.2f}x"


def markdown(results: dict[str, Any]) -> str:
    setup = results["setup"]
    fetchers = setup["fetchers"]
    lines = [
        f"# bench_gpu ({setup['size']}): {setup.get('gpu', setup['device'])}",
        "",
        f"torch {setup['torch']}, Python {setup['python']}, gunpowder "
        f"{setup.get('gunpowder', '?')}, zarr {setup.get('zarr', '?')}, {setup['cores']} cores; "
        f"batch {setup['batch_size']}, median of {setup['iterations']} iterations after "
        f"{setup['warmup']}; ratios are trainer s/iter / bare step s/iter.",
        "",
        "| model | bare step | simple-tensor | gunpowder "
        + " / ".join(map(str, fetchers))
        + " fetchers | same with elastic + simple + intensity augments |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, row in results.get("rows", {}).items():
        plain = " / ".join(ratio_cell(row, f"gunpowder {f}") for f in fetchers)
        augmented = " / ".join(ratio_cell(row, f"gunpowder {f} augmented") for f in fetchers)
        bare = f"{row['bare_s'] * 1e3:.1f} ms" if "bare_s" in row else "-"
        lines.append(
            f"| {key} | {bare} | {ratio_cell(row, 'simple-tensor')} | {plain} | {augmented} |"
        )
    if results.get("rows"):
        lines += [
            "",
            "Training-process CPU s/iter and data workers' busy fraction (gunpowder):",
            "",
        ]
        lines += ["| row | trainer | CPU s/iter | workers busy |", "| --- | --- | --- | --- |"]
        for key, row in results["rows"].items():
            for label, result in row.items():
                if label.startswith("gunpowder") and "s_per_iter" in result:
                    cpu = result["training_process_cpu_s_per_iter"]
                    busy = result["workers_busy"]
                    lines.append(
                        f"| {key} | {label} | {cpu:.4f} | "
                        + (f"{busy:.0%}" if busy is not None else "-")
                        + " |"
                    )
    loss = results.get("loss")
    if loss:
        lines += ["", "Demo loss (mean of the first and last sixth of the iterations):", ""]
        lines += ["| precision | first | last | wall |", "| --- | --- | --- | --- |"]
        for precision, curve in loss.items():
            lines.append(
                f"| {precision} | {curve['first_mean']:.4f} | {curve['last_mean']:.4f} | "
                f"{curve['wall_s']:.0f} s |"
            )
    disk = results.get("disk")
    if disk and disk.get("rows"):
        settings = disk["settings"]
        lines += [
            "",
            f"Data read from disk per sample ({disk['model']} model, {settings['fetchers']} "
            f"fetchers; bare step {disk['bare_s'] * 1e3:.1f} ms):",
            "",
            "| data | raw MB per dataset | x limit | s/iter | ratio | from disk / preloaded "
            "| prepare |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for label, result in disk["rows"].items():
            times = result["times_limit"]
            lines.append(
                f"| {label} | {result['raw_mb_per_dataset']:.1f} | "
                + (f"{times:.1f}" if times is not None else "in memory")
                + " "
                f"| {result['s_per_iter'] * 1e3:.1f} ms | {result['ratio']:.2f}x | "
                + (f"{result['vs_preloaded']:.2f}" if "vs_preloaded" in result else "-")
                + f" | {result['prepare_s']:.1f} s |"
            )
    skipped = results.get("skipped")
    if skipped:
        lines += ["", f"Not measured: {skipped}"]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-gpu"), help="results folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--size", choices=sorted(PRESETS), default="gpu")
    parser.add_argument("--smoke", action="store_true", help="--size smoke (tiny, any device)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if any), cpu, cuda[:N]")
    parser.add_argument("--parts", default=",".join(PARTS), help="of " + ", ".join(PARTS))
    parser.add_argument("--budget-s", type=float, default=None, help="stop measuring after")
    parser.add_argument("--iterations", type=int, default=None, help="override the preset")
    parser.add_argument("--fetchers", default=None, help="override, e.g. 1,4")
    parser.add_argument(
        "--only",
        default=None,
        help="measure only these steps, e.g. medium-bf16,loss (steps: small-32, medium-32, "
        "medium-bf16, medium-bf16+channels_last, loss, disk; of the parts chosen)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.size = "smoke"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = json.loads(json.dumps(PRESETS[args.size]))
    if args.iterations is not None:
        preset["iterations"] = args.iterations
    if args.fetchers is not None:
        preset["fetchers"] = [int(f) for f in args.fetchers.split(",")]
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"--parts: unknown {unknown}; choose from {', '.join(PARTS)}")
    if args.device == "auto":
        if torch.cuda.is_available():
            args.device = "cuda"
        elif args.size == "gpu":
            message = "no CUDA device: nothing measured (--smoke or --size cpu run on a CPU)"
            print(message)
            if args.json is not None:
                args.json.write_text(json.dumps({"skipped": message}) + "\n")
            return 0
        else:
            args.device = "cpu"
    device = torch.device(args.device)
    bench = Bench(args, preset, device)
    print(f"bench_gpu {args.size} on {bench.results['setup'].get('gpu', device)}", flush=True)
    demo = bench.out / "work" / "demo.zarr"
    if not (demo / "mask").exists():
        make_demo_data(demo, shape=(preset["volume"],) * 3, voxel_size=VOXEL_SIZE)
    steps: list[tuple[str, Callable[[], Any]]] = []
    if "main" in parts:
        for name, spec in preset["models"].items():
            for variant in preset["variants"][name]:
                steps.append(
                    (f"{name}-{variant}", _bind(measure_row, bench, name, spec, variant, demo))
                )
    if "loss" in parts:
        steps.append(("loss", _bind(loss_curves, bench)))
    if "disk" in parts:
        steps.append(("disk", _bind(disk_part, bench, demo)))
    if args.only is not None:
        chosen = set(args.only.split(","))
        unknown = sorted(chosen - {label for label, _ in steps})
        if unknown:
            raise SystemExit(f"--only: no step {unknown}; steps: {[s for s, _ in steps]}")
        steps = [(label, step) for label, step in steps if label in chosen]
    done = []
    for label, step in steps:
        try:
            bench.check_time()
            step()
            done.append(label)
        except OutOfTime:
            break
    left = [label for label, _ in steps if label not in done]
    if left:
        bench.results["skipped"] = f"{', '.join(left)} (time budget of {args.budget_s} s spent)"
    bench.save()
    print((bench.out / "results.md").read_text())
    return 0


def _bind(function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: function(*args)


if __name__ == "__main__":
    sys.exit(main())
