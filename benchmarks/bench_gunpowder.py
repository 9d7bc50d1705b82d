"""Benchmark of the gunpowder trainer against the bare model step (and DaCapo's pipeline).

Setup (as the DaCapo measurement it is compared with): the reference U-Net with 8 feature maps,
x2 per level, two (2, 2, 2) downsamplings, input 84³ -> output 44³, batch 2, the affinities
task, demo data (``make_demo_data``) of ``--volume``³ voxels with a mask.

Measured, side by side in one run:

* ``bare``: forward + loss + backward + RAdam step on tensors made once, same model, same torch
  threads; wall and process CPU seconds per step. Measured before and after the trainer runs
  of its setup, and averaged, to soften load changes on a shared machine.
* ``trainer``: ``GunpowderTrainer.iterate`` s/iter (waiting for data included) after warmup
  iterations, for (a) 1 torch thread + 1 data fetcher and (b) 2 torch threads + 2 fetchers.
* ``production``: batch production alone in this process (``num_data_fetchers=0``): wall and
  CPU seconds per batch, without augments and with elastic + simple augments.
* ``floor`` of (b): ``max(1, (cpu_step + cpu_batch) / (cores * bare_wall))``, the ratio no
  trainer can beat when step and batch production share ``cores`` cores.
* ``dacapo``: with ``--dacapo``, ``benchmarks/dacapo_baseline.py`` run by the Python in
  ``$DACAPO_PYTHON`` (default ``/work/venv-dacapo/bin/python``; the venv of ``nox -s
  dacapo-parity`` has dacapo-ml 0.3.5) on the same data (DaCapo 0.3.5's pipeline, 1 fetcher,
  synchronous).

Usage: ``python benchmarks/bench_gunpowder.py [--iterations 10] [--dacapo] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    UNetConfig,
    ZarrDatasetConfig,
    make_demo_data,
)
from dacapo_trainers_gunpowder import (
    ElasticAugmentConfig,
    GunpowderTrainerConfig,
    SimpleAugmentConfig,
)

HERE = Path(__file__).resolve().parent
#: A Python with dacapo-ml 0.3.5 (e.g. the venv of ``nox -s dacapo-parity``).
DACAPO_PYTHON = Path(os.environ.get("DACAPO_PYTHON", "/work/venv-dacapo/bin/python"))


def augments() -> list[Any]:
    """Elastic + simple augments as in DaCapo's default trainer config."""
    return [
        ElasticAugmentConfig(
            control_point_spacing=[100, 100, 100],
            control_point_displacement_sigma=[10.0, 10.0, 10.0],
            rotation_interval=(0.0, 1.5707963),
            subsample=8,
            uniform_3d_rotation=True,
        ),
        SimpleAugmentConfig(),
    ]


def problem(data: Path, input_size: int) -> tuple[Any, Any, Any]:
    architecture = UNetConfig(
        name="bench_unet",
        input_shape=[input_size] * 3,
        num_fmaps=8,
        fmap_inc_factor=2,
        downsample_factors=[[2, 2, 2], [2, 2, 2]],
    )
    task = AffinitiesTaskConfig(name="bench_affinities").build()
    dataset = ZarrDatasetConfig(name="bench", container=str(data), gt="gt", mask="mask").build()
    return architecture, task, dataset


def new_model(architecture: Any, task: Any) -> Any:
    torch.manual_seed(0)
    return task.predictor.create_model(architecture.build())


def trainer_config(fetchers: int, with_augments: bool = False) -> GunpowderTrainerConfig:
    return GunpowderTrainerConfig(
        name="bench",
        batch_size=2,
        learning_rate=1e-4,
        num_data_fetchers=fetchers,
        augments=augments() if with_augments else [],
    )


def first_batch(architecture: Any, task: Any, dataset: Any) -> list[Any]:
    """raw, target, weight tensors of one batch, made once (in this process)."""
    model = new_model(architecture, task)
    trainer = trainer_config(0).build_trainer()
    trainer.seed = 1
    trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task)
    with trainer:
        batch = trainer._start_batches(0).get(0)
        return [torch.from_numpy(batch.arrays[n].copy()) for n in ("raw", "target", "weight")]


def bare_steps(
    architecture: Any, task: Any, tensors: list[Any], iterations: int, warmup: int
) -> dict:
    """s/step of forward + loss + backward + step on ``tensors``."""
    model = new_model(architecture, task)
    optimizer = trainer_config(0).build_trainer().create_optimizer(model)
    model.train()
    walls, cpus = [], []
    for i in range(warmup + iterations):
        wall, cpu = time.perf_counter(), time.process_time()
        _bare_step(model, optimizer, task, tensors)
        if i >= warmup:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {"wall": statistics.mean(walls), "cpu": statistics.mean(cpus), "walls": walls}


def side_by_side(
    architecture: Any,
    task: Any,
    dataset: Any,
    fetchers: int,
    rounds: int,
    per_round: int,
    warmup: int,
) -> dict:
    """Bare steps and trainer iterations, alternating in rounds, in the same process.

    Each round runs ``per_round`` bare steps (on tensors of the trainer's first batch, a
    separate copy of the model) and then ``per_round`` trainer iterations. While the bare steps
    run, the data workers fill their prefetch slots and wait, so the trainer's first
    iterations of a round find batches ready: use enough iterations per round that this
    does not flatter it (the ``continuous`` numbers have no such pauses).
    """
    model = new_model(architecture, task)
    bare_model = new_model(architecture, task)
    trainer = trainer_config(fetchers).build_trainer()
    trainer.seed = 0
    optimizer = trainer.create_optimizer(model)
    bare_optimizer = trainer_config(0).build_trainer().create_optimizer(bare_model)
    trainer.build_batch_provider([dataset], model, task)
    tensors = first_batch(architecture, task, dataset)
    bare_times: list[float] = []
    bare_cpu: list[float] = []
    trainer_times: list[float] = []
    with trainer:
        iterations = trainer.iterate(
            warmup + rounds * per_round, model, optimizer, torch.device("cpu")
        )
        first = [next(iterations).time for _ in range(warmup)]
        bare_model.train()
        for _ in range(warmup):
            _bare_step(bare_model, bare_optimizer, task, tensors)
        for _ in range(rounds):
            for _ in range(per_round):
                wall, cpu = time.perf_counter(), time.process_time()
                _bare_step(bare_model, bare_optimizer, task, tensors)
                bare_times.append(time.perf_counter() - wall)
                bare_cpu.append(time.process_time() - cpu)
            for _ in range(per_round):
                trainer_times.append(next(iterations).time)
    # Load from other processes comes and goes: compare each round's medians, and the minima.
    round_ratios = [
        statistics.median(trainer_times[r * per_round : (r + 1) * per_round])
        / statistics.median(bare_times[r * per_round : (r + 1) * per_round])
        for r in range(rounds)
    ]
    return {
        "bare_wall": statistics.mean(bare_times),
        "bare_cpu": statistics.mean(bare_cpu),
        "trainer_wall": statistics.mean(trainer_times),
        "median_round_ratio": statistics.median(round_ratios),
        "round_ratios": round_ratios,
        "min_ratio": min(trainer_times) / min(bare_times),
        "first_iterations": first,
        "bare_walls": bare_times,
        "trainer_walls": trainer_times,
    }


def _bare_step(model: Any, optimizer: Any, task: Any, tensors: list[Any]) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = task.loss.compute(model(tensors[0]), tensors[1], tensors[2])
    loss.backward()
    optimizer.step()
    loss.item()


def continuous(
    architecture: Any, task: Any, dataset: Any, fetchers: int, iterations: int, warmup: int
) -> dict:
    """s/iter of GunpowderTrainer.iterate (data waits included) after ``warmup`` iterations."""
    model = new_model(architecture, task)
    trainer = trainer_config(fetchers).build_trainer()
    trainer.seed = 0
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task)
    times, cpus = [], []
    with trainer:
        cpu = time.process_time()
        for stats in trainer.iterate(warmup + iterations, model, optimizer, torch.device("cpu")):
            times.append(stats.time)
            cpus.append(time.process_time() - cpu)
            cpu = time.process_time()
    return {
        "wall": statistics.mean(times[warmup:]),
        "cpu": statistics.mean(cpus[warmup:]),  # of this (the training) process only
        "first": times[0],
        "walls": times[warmup:],
    }


def production(
    dataset: Any, architecture: Any, task: Any, batches: int, with_augments: bool
) -> dict:
    """Wall and CPU seconds per batch produced in this process."""
    model = new_model(architecture, task)
    trainer = trainer_config(0, with_augments).build_trainer()
    trainer.seed = 0
    trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task)
    walls, cpus = [], []
    with trainer:
        source = trainer._start_batches(0)
        source.get(0).release()  # builds the pipeline
        for index in range(1, batches + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            source.get(index).release()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {"wall": statistics.mean(walls), "cpu": statistics.mean(cpus)}


def run_dacapo(data: Path, batches: int) -> dict | None:
    if not DACAPO_PYTHON.exists():
        return None
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [
        str(DACAPO_PYTHON),
        str(HERE / "dacapo_baseline.py"),
        "--data",
        str(data),
        "--batches",
        str(batches),
        "--json",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {"error": result.stderr[-2000:]}
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the interleaved runs")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--batches", type=int, default=20, help="batches timed for production")
    parser.add_argument("--volume", type=int, default=160, help="demo volume edge (voxels)")
    parser.add_argument("--input", type=int, default=84, help="model input edge (voxels)")
    parser.add_argument("--data", type=Path, default=None, help="demo data container (reused)")
    parser.add_argument("--setups", default="a,b", help="which of a (1 thread, 1 fetcher), b")
    parser.add_argument("--dacapo", action="store_true", help="also run dacapo_baseline.py")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    data = args.data or Path(tempfile.mkdtemp()) / "bench.zarr"
    if not (data / "raw").exists():
        make_demo_data(data, shape=(args.volume,) * 3)
    architecture, task, dataset = problem(data, args.input)
    cores = len(os.sched_getaffinity(0))
    results: dict[str, Any] = {
        "setup": {
            "input": args.input,
            "volume": args.volume,
            "batch_size": 2,
            "cores": cores,
            "iterations": args.iterations,
            "warmup": args.warmup,
            "torch": torch.__version__,
            "load_average": os.getloadavg(),
        }
    }
    print(f"cores={cores} load={os.getloadavg()}", flush=True)

    torch.set_num_threads(1)
    for name, with_augments in (("plain", False), ("elastic+simple", True)):
        produced = production(dataset, architecture, task, args.batches, with_augments)
        results[f"production_{name}"] = produced
        print(
            f"production {name}: {produced['wall']:.4f} s/batch wall, "
            f"{produced['cpu']:.4f} s/batch cpu",
            flush=True,
        )

    setups = {"a": (1, 1), "b": (2, 2)}
    tensors = first_batch(architecture, task, dataset)
    batch_cpu = results["production_plain"]["cpu"]
    for key in filter(None, args.setups.split(",")):  # --setups "": production only
        threads, fetchers = setups[key]
        torch.set_num_threads(threads)
        pair = side_by_side(
            architecture, task, dataset, fetchers, args.rounds, args.iterations, args.warmup
        )
        before = bare_steps(architecture, task, tensors, args.iterations, args.warmup)
        ours = continuous(architecture, task, dataset, fetchers, args.iterations, args.warmup)
        after = bare_steps(architecture, task, tensors, args.iterations, args.warmup)
        bare_wall = (before["wall"] + after["wall"]) / 2
        entry = {
            "threads": threads,
            "fetchers": fetchers,
            "interleaved_bare_wall": pair["bare_wall"],
            "interleaved_trainer_wall": pair["trainer_wall"],
            "interleaved_ratio": pair["trainer_wall"] / pair["bare_wall"],
            "interleaved_median_round_ratio": pair["median_round_ratio"],
            "interleaved_round_ratios": pair["round_ratios"],
            "interleaved_min_ratio": pair["min_ratio"],
            "interleaved_bare_cpu": pair["bare_cpu"],
            "continuous_bare_wall": bare_wall,
            "continuous_bare_before": before["wall"],
            "continuous_bare_after": after["wall"],
            "continuous_trainer_wall": ours["wall"],
            "continuous_trainer_cpu": ours["cpu"],
            "continuous_bare_cpu": (before["cpu"] + after["cpu"]) / 2,
            "continuous_ratio": ours["wall"] / bare_wall,
            "trainer_first_iteration": ours["first"],
            "floor": max(1.0, (pair["bare_cpu"] + batch_cpu) / (cores * pair["bare_wall"])),
            # the floor were the step to keep every core busy: a batch's CPU time on top
            "floor_if_step_saturates": 1.0 + batch_cpu / (cores * pair["bare_wall"]),
            "walls": {
                "interleaved_bare": pair["bare_walls"],
                "interleaved_trainer": pair["trainer_walls"],
                "continuous_trainer": ours["walls"],
            },
        }
        results[f"setup_{key}"] = entry
        print(
            f"setup {key} ({threads} threads, {fetchers} fetchers): interleaved bare "
            f"{pair['bare_wall']:.3f} s (cpu {pair['bare_cpu']:.3f}) vs trainer "
            f"{pair['trainer_wall']:.3f} s/iter -> {entry['interleaved_ratio']:.3f}x (median of "
            f"round ratios {pair['median_round_ratio']:.3f}x, of minima "
            f"{pair['min_ratio']:.3f}x); "
            f"continuous bare {bare_wall:.3f} (before {before['wall']:.3f}, after "
            f"{after['wall']:.3f}) vs trainer {ours['wall']:.3f} -> "
            f"{entry['continuous_ratio']:.3f}x (training-process cpu/iter "
            f"{ours['cpu']:.3f} vs bare {entry['continuous_bare_cpu']:.3f}); "
            f"floor {entry['floor']:.3f}x ({entry['floor_if_step_saturates']:.3f}x if the step "
            f"kept all cores busy); first iteration "
            f"{ours['first']:.3f} s",
            flush=True,
        )

    if args.dacapo:
        dacapo = run_dacapo(data, args.batches)
        results["dacapo"] = dacapo
        if dacapo and "error" not in dacapo:
            for name in ("plain", "elastic+simple"):
                theirs = dacapo[f"production_{name}"]["wall"]
                ours_wall = results[f"production_{name}"]["wall"]
                results[f"production_ratio_{name}"] = ours_wall / theirs
                print(
                    f"dacapo production {name}: {theirs:.4f} s/batch; ours/dacapo = "
                    f"{ours_wall / theirs:.3f}",
                    flush=True,
                )
        else:
            print(f"dacapo baseline unavailable: {dacapo}", flush=True)

    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
