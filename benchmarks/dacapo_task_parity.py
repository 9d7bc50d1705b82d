"""Loss curves of DaCapo 0.3.5 and of this project on one DaCapo RunConfig, the batch
statistics of both sides on its task, and the layout of their snapshots.

Used by ``benchmarks/dacapo_parity.py`` (``nox -s dacapo-parity``), in one environment with
``dacapo-ml==0.3.5`` and ``dacapo-trainers-gunpowder``. The run document is DaCapo's
(``RunConfig`` as its converter writes it: an affinities task, a small CNNectomeUNet, a
``GunpowderTrainerConfig`` without augments, raw normalized by ``IntensitiesArrayConfig``, a
mask over two thirds of the volume);
DaCapo structures it with its own converter and trains it with its ``Run``'s trainer, this
project loads the same document and trains it with ``dacapo_trainers.train``. Each side runs
once per seed (DaCapo: torch's, numpy's and Python's global seeds; ours: the run's ``seed``).
The figure compared is the mean of the last ``WINDOW`` losses; "within noise" means the
difference of the two sides' means is within ``TOLERANCE_SE`` standard errors (the losses of
the last windows of every seed, as independent draws).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

WINDOW = 20
TOLERANCE_SE = 3.0


def run_document(container: Path, name: str, iterations: int) -> dict[str, Any]:
    """DaCapo's RunConfig, unstructured (tuples as lists, as a JSON export of its store)."""

    def array(dataset: str) -> dict[str, Any]:
        return {
            "__type__": "ZarrArrayConfig",
            "name": dataset,
            "file_name": str(container),
            "dataset": dataset,
            "snap_to_grid": None,
            "_axes": None,
            "mode": "a",
        }

    raw = {
        "__type__": "IntensitiesArrayConfig",
        "name": "raw01",
        "source_array_config": array("raw"),
        "min": 0.0,
        "max": 255.0,
    }
    dataset = {
        "__type__": "RawGTDatasetConfig",
        "name": "parity",
        "weight": 1,
        "raw_config": raw,
        "gt_config": array("gt"),
        "mask_config": array("wide_mask"),
        "sample_points": None,
    }
    return {
        "name": name,
        "repetition": 0,
        "num_iterations": iterations,
        "validation_interval": 100000,
        "start_config": None,
        "task_config": {
            "__type__": "AffinitiesTaskConfig",
            "name": "parity_affinities",
            "neighborhood": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            "lsds": False,
        },
        "architecture_config": {
            "__type__": "CNNectomeUNetConfig",
            "name": "parity_unet",
            "input_shape": [36, 36, 36],
            "fmaps_out": 4,
            "fmaps_in": 1,
            "num_fmaps": 4,
            "fmap_inc_factor": 2,
            "downsample_factors": [[2, 2, 2]],
        },
        "trainer_config": {
            "__type__": "GunpowderTrainerConfig",
            "name": "parity_trainer",
            "batch_size": 2,
            "learning_rate": 5e-3,
            "num_data_fetchers": 1,
            "augments": [],
            "snapshot_interval": None,
            "min_masked": 0.15,
        },
        "datasplit_config": {
            "__type__": "TrainValidateDataSplitConfig",
            "name": "parity_split",
            "train_configs": [dataset],
            "validate_configs": [],
        },
    }


def dacapo_run(document: dict[str, Any], seed: int) -> Any:
    """DaCapo's ``Run`` of ``document``, its weights drawn after seeding every generator."""
    import torch
    from dacapo.experiments import Run, RunConfig
    from dacapo.store.converter import converter

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    return Run(converter.structure(document, RunConfig))


def dacapo_losses(document: dict[str, Any], seed: int) -> list[float]:
    """DaCapo's training losses on ``document`` (its trainer's ``iterate``, on the CPU)."""
    import torch

    run = dacapo_run(document, seed)
    trainer = run.trainer
    trainer.build_batch_provider(run.datasplit.train, run.model, run.task, None)
    with trainer:
        stats = trainer.iterate(
            document["num_iterations"], run.model, run.optimizer, torch.device("cpu")
        )
        return [float(s.loss) for s in stats]


def our_losses(document: dict[str, Any], seed: int, folder: Path) -> list[float]:
    """This project's training losses on ``document`` (``train``, on the CPU)."""
    from dacapo_trainers import load_run_config, train

    output = folder / f"ours_{seed}"
    ours = {**document, "seed": seed, "device": "cpu", "output": str(output)}
    path = folder / f"run_{seed}.json"
    path.write_text(json.dumps(ours))
    train(load_run_config(path), quiet=True)
    lines = [json.loads(line) for line in (output / "stats.jsonl").read_text().splitlines()]
    return [float(line["loss"]) for line in lines if "loss" in line]


def compare_losses(
    dacapo: Sequence[Sequence[float]], ours: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """The last-window means of both sides and whether they agree within noise."""
    last_d = np.concatenate([np.asarray(c[-WINDOW:]) for c in dacapo])
    last_o = np.concatenate([np.asarray(c[-WINDOW:]) for c in ours])
    standard_error = math.sqrt(last_d.var(ddof=1) / last_d.size + last_o.var(ddof=1) / last_o.size)
    difference = float(last_o.mean() - last_d.mean())
    return {
        "dacapo_first": [float(c[0]) for c in dacapo],
        "ours_first": [float(c[0]) for c in ours],
        "dacapo_last_mean_per_seed": [float(np.mean(c[-WINDOW:])) for c in dacapo],
        "ours_last_mean_per_seed": [float(np.mean(c[-WINDOW:])) for c in ours],
        "dacapo_last_mean": float(last_d.mean()),
        "ours_last_mean": float(last_o.mean()),
        "difference": difference,
        "standard_error": standard_error,
        "within_noise": abs(difference) <= TOLERANCE_SE * standard_error,
    }


def loss_parity(
    container: Path, folder: Path, iterations: int, seeds: Sequence[int]
) -> dict[str, Any]:
    """Both sides' loss curves for every seed, and their comparison."""
    document = run_document(container, "parity_losses", iterations)
    dacapo = [dacapo_losses(document, seed) for seed in seeds]
    ours = [our_losses(document, seed, folder) for seed in seeds]
    return {
        "iterations": iterations,
        "seeds": list(seeds),
        "dacapo_curves": dacapo,
        "our_curves": ours,
        **compare_losses(dacapo, ours),
    }


def dacapo_task_batches(document: dict[str, Any], count: int) -> tuple[list[dict], Any]:
    """``count`` batches of DaCapo's trainer on ``document``'s task, and its model."""
    run = dacapo_run(document, 0)
    trainer = run.trainer
    trainer.build_batch_provider(run.datasplit.train, run.model, run.task, None)
    names = ("raw", "gt", "target", "weight", "mask")
    batches = []
    with trainer:
        for _ in range(count):
            arrays = trainer.next()
            batches.append({n: np.asarray(a[a.roi]) for n, a in zip(names, arrays, strict=True)})
    return batches, run.model


def batch_statistics(batches: list[dict]) -> dict[str, dict[str, float]]:
    """Per array: mean, standard deviation, min, max over all batches; and for target and
    weight the positive fraction and the mean weight of positives and negatives."""
    table: dict[str, dict[str, float]] = {}
    for name in ("raw", "target", "weight", "mask"):
        values = np.concatenate([np.asarray(b[name], dtype=np.float64).ravel() for b in batches])
        table[name] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    target = np.concatenate([np.asarray(b["target"]).ravel() for b in batches]) > 0.5
    weight = np.concatenate([np.asarray(b["weight"], dtype=np.float64).ravel() for b in batches])
    table["balance"] = {
        "positive_fraction": float(target.mean()),
        "weight_positive": float(weight[target].mean()) if target.any() else 0.0,
        "weight_negative": float(weight[~target].mean()) if (~target).any() else 0.0,
        "weight_zero_fraction": float((weight == 0).mean()),
    }
    return table


def print_table(dacapo: dict[str, dict[str, float]], ours: dict[str, dict[str, float]]) -> None:
    """The two sides' statistics side by side, one line per array and figure."""
    print(f"  {'array':8} {'figure':20} {'DaCapo':>10} {'ours':>10}")
    for name, figures in dacapo.items():
        for figure, value in figures.items():
            print(f"  {name:8} {figure:20} {value:10.4f} {ours[name][figure]:10.4f}")


def print_losses(result: dict[str, Any]) -> None:
    """The loss figures: first losses, last-window means per seed and overall."""
    verdict = "within noise" if result["within_noise"] else "NOT within noise"
    print(f"losses ({result['iterations']} iterations, seeds {result['seeds']}):")
    print(f"  first loss      DaCapo {result['dacapo_first']}  ours {result['ours_first']}")
    print(
        f"  last {WINDOW} mean    DaCapo {result['dacapo_last_mean_per_seed']}  "
        f"ours {result['ours_last_mean_per_seed']}"
    )
    print(
        f"  overall         DaCapo {result['dacapo_last_mean']:.4f}  ours "
        f"{result['ours_last_mean']:.4f}  difference {result['difference']:+.4f} "
        f"(standard error {result['standard_error']:.4f}): {verdict}"
    )


def layout(path: Path) -> dict[str, Any]:
    """Every zarr (v2) array under ``path``: its shape, dtype and voxel size, from the files."""
    out: dict[str, Any] = {}
    for meta in sorted(path.rglob(".zarray")):
        attrs_file = meta.parent / ".zattrs"
        attrs = json.loads(attrs_file.read_text()) if attrs_file.exists() else {}
        header = json.loads(meta.read_text())
        out[str(meta.parent.relative_to(path))] = {
            "shape": header["shape"],
            "dtype": header["dtype"],
            "voxel_size": attrs.get("voxel_size", attrs.get("resolution")),
        }
    return out


def compare_layouts(layouts: dict[str, Any]) -> list[str]:
    """The arrays of one side missing on the other, or shaped differently."""
    dacapo, ours = layouts["dacapo"], layouts["ours"]
    if isinstance(dacapo, str):
        return []
    problems = []
    for name in sorted(set(dacapo) | set(ours)):
        if name not in dacapo or name not in ours:
            problems.append(f"snapshot {name}: only {'ours' if name in ours else 'DaCapo'}")
        elif dacapo[name]["shape"] != ours[name]["shape"]:
            problems.append(
                f"snapshot {name}: shape {ours[name]['shape']} != DaCapo's {dacapo[name]['shape']}"
            )
    return problems
