"""Overhead of 2-rank DDP training (gloo, CPU) against 2 independent single-process trainings.

Two worker processes (one torch thread each, so each has one core of a 2-core machine) both
hold the same model twice: one copy trained through ``DistributedTrainer`` (a real process
group, DistributedDataParallel, the per-step loss all-reduce and progress marks), one trained
by the inner ``SimpleTensorTrainer`` alone. Single steps of the two alternate; before every
step both workers meet at a barrier (untimed), so the two independent steps run side by side
on the same cores, as the two DDP ranks do. Reported: the median over repetitions of
(median DDP step time) / (median independent step time) on rank 0, the goal being <= 1.10.

It also times gloo's all-reduce of a flat float32 tensor of the model's gradient size and of
a few larger sizes, for the scaling estimate in docs/plugins/distributed.rst.

    python benchmarks/bench_distributed.py --iterations 6 --repetitions 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    UNetConfig,
    ZarrDatasetConfig,
    make_demo_data,
)
from dacapo_trainers_distributed import DistributedTrainerConfig, rank_seed
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

WORLD_SIZE = 2
CPU = torch.device("cpu")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6, help="steps per repetition")
    parser.add_argument("--repetitions", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--batch-size", type=int, default=1, help="per rank")
    parser.add_argument("--input-size", type=int, default=44, help="U-Net input edge (voxels)")
    parser.add_argument("--num-fmaps", type=int, default=6)
    parser.add_argument("--data-size", type=int, default=64, help="demo volume edge (voxels)")
    parser.add_argument(
        "--allreduce-sizes",
        type=int,
        nargs="*",
        default=[1_000_000, 8_000_000, 32_000_000],
        help="extra all-reduce sizes (float32 elements) besides the model's gradient",
    )
    parser.add_argument("--allreduce-repetitions", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    return parser.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(call: Any) -> float:
    dist.barrier()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _allreduce_seconds(numel: int, repetitions: int) -> float:
    tensor = torch.ones(numel, dtype=torch.float32)
    for _ in range(2):
        dist.all_reduce(tensor)
    return statistics.median(_timed(lambda: dist.all_reduce(tensor)) for _ in range(repetitions))


def worker(rank: int, args: argparse.Namespace, container: str, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(args.threads)
    dataset = ZarrDatasetConfig(name="demo", container=container, mask="mask").build()
    architecture = UNetConfig(
        name="unet",
        input_shape=[args.input_size] * 3,
        num_fmaps=args.num_fmaps,
        downsample_factors=[[2, 2, 2]],
    )
    task = AffinitiesTaskConfig(name="affinities").build()
    torch.manual_seed(0)
    ddp_model = task.predictor.create_model(architecture.build())
    torch.manual_seed(0)
    single_model = task.predictor.create_model(architecture.build())
    inner = SimpleTensorTrainerConfig(
        name="bench", batch_size=args.batch_size, learning_rate=1e-4, warmup_iterations=100
    )

    ddp = DistributedTrainerConfig(
        trainer_config=inner, backend="gloo", timeout=300
    ).build_trainer()
    assert ddp.launch([]) is None  # joins the group from the environment
    ddp.seed = 0
    ddp_optimizer = ddp.create_optimizer(ddp_model)
    ddp.build_batch_provider([dataset], ddp_model, task)

    single = inner.build_trainer()
    single.seed = rank_seed(0, rank)
    single_optimizer = single.create_optimizer(single_model)
    single.build_batch_provider([dataset], single_model, task)

    total = args.warmup + args.iterations * args.repetitions
    ddp_steps = ddp.iterate(total, ddp_model, ddp_optimizer, CPU)
    single_steps = single.iterate(total, single_model, single_optimizer, CPU)
    for _ in range(args.warmup):
        _timed(lambda: next(ddp_steps))
        _timed(lambda: next(single_steps))
    ddp_times, single_times, ratios = [], [], []
    for _ in range(args.repetitions):
        ddp_run, single_run = [], []
        for step in range(args.iterations):
            # Alternate which side leads, so drifts of a shared machine hit both alike.
            if step % 2:
                single_run.append(_timed(lambda: next(single_steps)))
                ddp_run.append(_timed(lambda: next(ddp_steps)))
            else:
                ddp_run.append(_timed(lambda: next(ddp_steps)))
                single_run.append(_timed(lambda: next(single_steps)))
        ddp_time, single_time = statistics.median(ddp_run), statistics.median(single_run)
        ddp_times.append(ddp_time)
        single_times.append(single_time)
        ratios.append(ddp_time / single_time)
        if rank == 0:
            print(
                f"DDP {ddp_time:.4f} s/iter, independent {single_time:.4f} s/iter, "
                f"ratio {ddp_time / single_time:.3f} (medians of {args.iterations} steps)",
                flush=True,
            )
    ddp_steps.close()
    single_steps.close()

    parameters = sum(p.numel() for p in ddp_model.parameters())
    allreduce = {
        str(numel): _allreduce_seconds(numel, args.allreduce_repetitions)
        for numel in [parameters, *args.allreduce_sizes]
    }
    if rank == 0:
        results = {
            "world_size": WORLD_SIZE,
            "backend": "gloo",
            "device": "cpu",
            "threads_per_rank": args.threads,
            "cpu_count": os.cpu_count(),
            "batch_size_per_rank": args.batch_size,
            "input_shape": list(ddp_model.input_shape),
            "output_shape": list(ddp_model.output_shape),
            "num_fmaps": args.num_fmaps,
            "parameters": parameters,
            "iterations_per_repetition": args.iterations,
            "repetitions": args.repetitions,
            "ddp_s_per_iter": ddp_times,
            "independent_s_per_iter": single_times,
            "ratios": ratios,
            "median_ddp_s_per_iter": statistics.median(ddp_times),
            "median_independent_s_per_iter": statistics.median(single_times),
            "median_ratio": statistics.median(ratios),
            "goal_ratio": 1.10,
            "allreduce_float32_s": allreduce,
            "allreduce_bus_bandwidth_GBps": {
                numel: _bus_bandwidth(int(numel), seconds) for numel, seconds in allreduce.items()
            },
        }
        Path(out).write_text(json.dumps(results, indent=2) + "\n")
    ddp.close()
    single.close()
    dist.barrier()
    dist.destroy_process_group()


def _bus_bandwidth(numel: int, seconds: float) -> float:
    """NCCL-tests' "bus bandwidth" of a ring all-reduce: 2 (n - 1) / n x bytes / time."""
    return 2 * (WORLD_SIZE - 1) / WORLD_SIZE * 4 * numel / seconds / 1e9


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench_distributed_"))
    container = make_demo_data(workdir / "demo.zarr", shape=(args.data_size,) * 3, seed=0)
    out = workdir / "results.json"
    mp.spawn(worker, args=(args, str(container), _free_port(), str(out)), nprocs=WORLD_SIZE)
    results: dict[str, Any] = json.loads(out.read_text())
    print(
        f"median: DDP {results['median_ddp_s_per_iter']:.4f} s/iter, independent "
        f"{results['median_independent_s_per_iter']:.4f} s/iter, ratio "
        f"{results['median_ratio']:.3f} (goal <= 1.10); {results['parameters']} parameters"
    )
    for numel, seconds in results["allreduce_float32_s"].items():
        bandwidth = results["allreduce_bus_bandwidth_GBps"][numel]
        print(
            f"gloo all-reduce of {int(numel):>10} float32: {seconds * 1e3:8.2f} ms, "
            f"bus bandwidth {bandwidth:.2f} GB/s"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
