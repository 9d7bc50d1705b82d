"""Overhead of SimpleTensorTrainer.iterate against a bare hand-written torch training step.

Both sides train the same reference U-Net (same initial weights, same batch size, same
number of torch threads) with RAdam on the affinities task. The bare side reuses pre-made
tensors of the batch's shapes and runs forward, loss, backward, ``optimizer.step()`` and one
``loss.item()`` per step (every training loop reads its loss); the trainer side additionally
draws crops, flips and transposes them, and steps the warmup schedule. After a warm-up of
each, single steps of the two alternate so that drifts of a shared machine hit both, and
the median of the per-repetition ratios (trainer s/iter / bare s/iter) is reported, each
repetition's s/iter being the median of its single, alternating steps.

    python benchmarks/bench_simple_tensor.py --iterations 10 --repetitions 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
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
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="steps per repetition")
    parser.add_argument("--repetitions", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each first")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=52, help="U-Net input edge (voxels)")
    parser.add_argument("--num-fmaps", type=int, default=8)
    parser.add_argument("--data-size", type=int, default=96, help="demo volume edge (voxels)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    return parser.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    workdir = Path(tempfile.mkdtemp(prefix="bench_simple_tensor_"))
    container = make_demo_data(workdir / "demo.zarr", shape=(args.data_size,) * 3, seed=0)
    dataset = ZarrDatasetConfig(name="demo", container=str(container), mask="mask").build()
    architecture = UNetConfig(
        name="unet", input_shape=[args.input_size] * 3, num_fmaps=args.num_fmaps
    )
    task = AffinitiesTaskConfig(name="affinities").build()

    torch.manual_seed(0)
    model = task.create_model(architecture.build()).to(device)
    torch.manual_seed(0)
    bare_model = task.create_model(architecture.build()).to(device)
    config = SimpleTensorTrainerConfig(
        name="bench", batch_size=args.batch_size, learning_rate=1e-4, warmup_iterations=1000
    )
    trainer = config.build_trainer()
    trainer.seed = 0
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task)

    channels = len(task.predictor.neighborhood)
    raw = torch.rand(args.batch_size, 1, *model.input_shape, device=device)
    target = torch.rand(args.batch_size, channels, *model.output_shape, device=device)
    weight = torch.rand(args.batch_size, channels, *model.output_shape, device=device)
    bare_optimizer = torch.optim.RAdam(bare_model.parameters(), lr=1e-4)
    bare_model.train()

    # One open iterate() for every trainer step: each next() is exactly one training step.
    steps = trainer.iterate(
        args.warmup + args.iterations * args.repetitions, model, optimizer, device
    )

    def trainer_step() -> float:
        _sync(device)
        start = time.perf_counter()
        next(steps)
        _sync(device)
        return time.perf_counter() - start

    def bare_step() -> float:
        _sync(device)
        start = time.perf_counter()
        bare_optimizer.zero_grad()
        loss = task.loss.compute(bare_model(raw), target, weight)
        loss.backward()
        bare_optimizer.step()
        loss.item()
        _sync(device)
        return time.perf_counter() - start

    for _ in range(args.warmup):
        trainer_step()
        bare_step()
    trainer_times, bare_times, ratios = [], [], []
    for repetition in range(args.repetitions):
        # Single steps alternate (and which side leads alternates), so that load from other
        # processes on a shared machine falls on both sides alike; medians drop the spikes.
        trainer_run, bare_run = [], []
        for step in range(args.iterations):
            if step % 2:
                bare_run.append(bare_step())
                trainer_run.append(trainer_step())
            else:
                trainer_run.append(trainer_step())
                bare_run.append(bare_step())
        trainer_time, bare_time = statistics.median(trainer_run), statistics.median(bare_run)
        trainer_times.append(trainer_time)
        bare_times.append(bare_time)
        ratios.append(trainer_time / bare_time)
        print(
            f"repetition {repetition}: trainer {trainer_time:.4f} s/iter, "
            f"bare {bare_time:.4f} s/iter, ratio {trainer_time / bare_time:.3f} "
            f"(medians of {args.iterations} steps)"
        )
    steps.close()
    trainer.close()

    results = {
        "device": str(device),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
        "num_fmaps": args.num_fmaps,
        "iterations_per_repetition": args.iterations,
        "repetitions": args.repetitions,
        "trainer_s_per_iter": trainer_times,
        "bare_s_per_iter": bare_times,
        "ratios": ratios,
        "median_trainer_s_per_iter": statistics.median(trainer_times),
        "median_bare_s_per_iter": statistics.median(bare_times),
        "median_ratio": statistics.median(ratios),
        "goal_ratio": 1.03,
    }
    print(
        f"median: trainer {results['median_trainer_s_per_iter']:.4f} s/iter, "
        f"bare {results['median_bare_s_per_iter']:.4f} s/iter, "
        f"ratio {results['median_ratio']:.3f} (goal <= 1.03)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
