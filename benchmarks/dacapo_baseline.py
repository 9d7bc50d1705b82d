"""DaCapo 0.3.5's GunpowderTrainer pipeline on the benchmark data (run in /work/venv-dacapo).

Builds DaCapo's own dataset (RawGTDatasetConfig of ZarrArrayConfigs on raw/gt/mask), task
(affinities, the three nearest neighbours), architecture (CNNectomeUNet, 8 feature maps, x2
per level, two (2, 2, 2) downsamplings, input 84³) and trainer (batch 2, 1 data fetcher: the
pipeline runs synchronously in this process), then times ``trainer.next()``, without and with
DaCapo's default elastic + simple augments. With ``--train``, also DaCapo's ``iterate`` s/iter
and its bare step for ``--threads`` torch threads and ``--fetchers`` data fetchers.

Usage: ``/work/venv-dacapo/bin/python benchmarks/dacapo_baseline.py --data bench.zarr``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def build(data: Path, fetchers: int, with_augments: bool, input_size: int) -> tuple[Any, ...]:
    from dacapo.experiments.architectures import CNNectomeUNetConfig
    from dacapo.experiments.datasplits.datasets import RawGTDatasetConfig
    from dacapo.experiments.datasplits.datasets.arrays import ZarrArrayConfig
    from dacapo.experiments.tasks import AffinitiesTaskConfig
    from dacapo.experiments.trainers import GunpowderTrainerConfig
    from dacapo.experiments.trainers.gp_augments import (
        ElasticAugmentConfig,
        SimpleAugmentConfig,
    )
    from funlib.geometry import Coordinate

    def array(name: str) -> Any:
        return ZarrArrayConfig(name=name, file_name=data, dataset=name)

    dataset_config = RawGTDatasetConfig(
        name="bench", raw_config=array("raw"), gt_config=array("gt"), mask_config=array("mask")
    )
    dataset = dataset_config.dataset_type(dataset_config)
    task_config = AffinitiesTaskConfig(
        name="bench", neighborhood=[Coordinate(1, 0, 0), Coordinate(0, 1, 0), Coordinate(0, 0, 1)]
    )
    task = task_config.task_type(task_config)
    architecture_config = CNNectomeUNetConfig(
        name="bench",
        input_shape=Coordinate((input_size,) * 3),
        fmaps_out=8,
        fmaps_in=1,
        num_fmaps=8,
        fmap_inc_factor=2,
        downsample_factors=[Coordinate(2, 2, 2), Coordinate(2, 2, 2)],
    )
    architecture = architecture_config.architecture_type(architecture_config)
    augments = []
    if with_augments:
        augments = [
            ElasticAugmentConfig(
                control_point_spacing=[100, 100, 100],
                control_point_displacement_sigma=[10.0, 10.0, 10.0],
                rotation_interval=(0.0, 1.5707963),
                subsample=8,
                uniform_3d_rotation=True,
            ),
            SimpleAugmentConfig(),
        ]
    trainer_config = GunpowderTrainerConfig(
        name="bench",
        batch_size=2,
        learning_rate=1e-4,
        num_data_fetchers=fetchers,
        augments=augments,
    )
    trainer = trainer_config.trainer_type(trainer_config)
    model = task.create_model(architecture)
    return trainer, model, task, dataset


def production(data: Path, batches: int, with_augments: bool, input_size: int) -> dict:
    trainer, model, task, dataset = build(data, 1, with_augments, input_size)
    trainer.build_batch_provider([dataset], model, task, None)
    walls, cpus = [], []
    with trainer:
        trainer.next()  # builds the pipeline
        for _ in range(batches):
            wall, cpu = time.perf_counter(), time.process_time()
            raw, *_ = trainer.next()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {
        "wall": statistics.mean(walls),
        "cpu": statistics.mean(cpus),
        "raw_dtype": str(raw[raw.roi].dtype),
    }


def train(data: Path, fetchers: int, iterations: int, warmup: int, input_size: int) -> dict:
    import torch

    trainer, model, task, dataset = build(data, fetchers, False, input_size)
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task, None)
    times = []
    with trainer:
        raw, _, target, weight, _ = trainer.next()
        tensors = [torch.as_tensor(a[a.roi]).float() for a in (raw, target, weight)]
        start = time.perf_counter()
        last = start
        for _stats in trainer.iterate(warmup + iterations, model, optimizer, "cpu"):
            now = time.perf_counter()
            times.append(now - last)  # the whole iteration, fetch included
            last = now
    bare = []
    for i in range(warmup + iterations):
        wall = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = task.loss.compute(model.forward(tensors[0]), tensors[1], tensors[2])
        loss.backward()
        optimizer.step()
        loss.item()
        if i >= warmup:
            bare.append(time.perf_counter() - wall)
    trainer_wall = statistics.mean(times[warmup:])
    bare_wall = statistics.mean(bare)
    return {"trainer_wall": trainer_wall, "bare_wall": bare_wall, "ratio": trainer_wall / bare_wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="zarr with raw, gt, mask")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--input", type=int, default=84)
    parser.add_argument("--train", action="store_true", help="also time DaCapo's iterate")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fetchers", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-production", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    for name, with_augments in (("plain", False), ("elastic+simple", True)):
        if args.skip_production:
            break
        results[f"production_{name}"] = production(
            args.data, args.batches, with_augments, args.input
        )
        print(f"dacapo production {name}: {results[f'production_{name}']}", flush=True)
    if args.train:
        torch.set_num_threads(args.threads)
        results["train"] = train(args.data, args.fetchers, args.iterations, args.warmup, args.input)
        results["train"].update(threads=args.threads, fetchers=args.fetchers)
        print(f"dacapo train: {results['train']}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
