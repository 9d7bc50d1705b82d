"""Batch statistics of DaCapo 0.3.5's GunpowderTrainer and of this project's, on the same
data and trainer config; exits 1 when they disagree.

Run by ``nox -s dacapo-parity`` in one environment holding ``dacapo-ml==0.3.5`` and
``dacapo-trainers-gunpowder``. Not a test of the default suite: it needs DaCapo, and DaCapo's
pipeline is random without a seed, so only properties that hold for every batch are compared
exactly (value ranges, the padding value, the masked centre, the array layout) and
frequencies only loosely.

The data: a 48³ uint8 raw (values 1..255, so a 0 in a batch is padding), labels, and a mask
that is a slab two voxels thick (about 10% of an output crop: far below the 15% of
``min_masked``, which DaCapo does not use). DaCapo normalizes raw with
``IntensitiesArrayConfig(min=0, max=255)``; this project's side gets the same [0, 1] floats.
Scenarios: no augments; DaCapo's cosem intensity chain (Intensity with clip, Gamma,
ScaleShift(2, -1)); ``gt_min_reject`` (DaCapo tests the mean over the gt region its predictor
reads, e.g. the output crop grown by the affinity neighbourhood, so its crops may fall just
below the threshold; this project tests the output crop). Then, on a DaCapo RunConfig with
an affinities task (:mod:`dacapo_task_parity`): the batch statistics of both sides (raw,
target, weight, mask, class balance), the loss curves of both sides over ``--iterations``
iterations for each of ``--seeds`` (their last-window means must agree within noise), and one
training step with a snapshot on each side, whose arrays must have the same shapes (dtypes
are printed: DaCapo writes raw and weight as float64, this project as float32, which holds
its values exactly).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SHAPE = (48, 48, 48)
VOXEL_SIZE = (4, 4, 4)
GT_MIN_REJECT = 3.0

SCENARIOS: dict[str, dict[str, Any]] = {
    "plain": {"augments": []},
    "cosem": {
        "augments": [
            {
                "__type__": "IntensityAugmentConfig",
                "scale": [0.25, 1.75],
                "shift": [-0.5, 0.35],
                "clip": True,
            },
            {"__type__": "GammaAugmentConfig", "gamma_range": [0.5, 2.0]},
            {"__type__": "IntensityScaleShiftAugmentConfig", "scale": 2.0, "shift": -1.0},
        ]
    },
    "gt_min_reject": {"augments": [], "gt_min_reject": GT_MIN_REJECT},
}


def write_data(folder: Path) -> Path:
    from dacapo_trainers import write_array

    rng = np.random.default_rng(0)
    index = np.indices(SHAPE)
    labels = (1 + index[0] // 8 + 6 * (index[1] // 12)).astype(np.uint64)
    labels[:, :, :16] = 0
    raw = (1 + (labels % 7) * 30 + rng.integers(0, 40, size=SHAPE)).astype(np.uint8)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[:, 20:22, :] = 1
    # the RunConfig's mask: two thirds of the volume, so that DaCapo rarely rejects a location
    wide_mask = np.zeros(SHAPE, dtype=np.uint8)
    wide_mask[:, 8:40, :] = 1
    container = folder / "parity.zarr"
    arrays = (("raw", raw), ("gt", labels), ("mask", mask), ("wide_mask", wide_mask))
    for name, data in arrays:
        write_array(container, name, data, voxel_size=VOXEL_SIZE, offset=(0, 0, 0))
    return container


def dacapo_parts(container: Path, trainer_json: dict[str, Any]) -> tuple[Any, ...]:
    from dacapo.experiments.architectures import CNNectomeUNetConfig
    from dacapo.experiments.datasplits.datasets import RawGTDatasetConfig
    from dacapo.experiments.datasplits.datasets.arrays import (
        IntensitiesArrayConfig,
        ZarrArrayConfig,
    )
    from dacapo.experiments.tasks import AffinitiesTaskConfig
    from dacapo.experiments.trainers import GunpowderTrainerConfig
    from dacapo.experiments.trainers.gp_augments import (
        GammaAugmentConfig,
        IntensityAugmentConfig,
        IntensityScaleShiftAugmentConfig,
    )
    from funlib.geometry import Coordinate

    def array(name: str) -> Any:
        return ZarrArrayConfig(name=name, file_name=container, dataset=name)

    raw = IntensitiesArrayConfig(name="raw01", source_array_config=array("raw"), min=0, max=255)
    dataset_config = RawGTDatasetConfig(
        name="parity", raw_config=raw, gt_config=array("gt"), mask_config=array("mask")
    )
    dataset = dataset_config.dataset_type(dataset_config)
    task_config = AffinitiesTaskConfig(
        name="parity", neighborhood=[Coordinate(1, 0, 0), Coordinate(0, 1, 0), Coordinate(0, 0, 1)]
    )
    task = task_config.task_type(task_config)
    architecture_config = CNNectomeUNetConfig(
        name="parity",
        input_shape=Coordinate(36, 36, 36),
        fmaps_out=4,
        fmaps_in=1,
        num_fmaps=4,
        fmap_inc_factor=2,
        downsample_factors=[Coordinate(2, 2, 2)],
    )
    model = task.create_model(architecture_config.architecture_type(architecture_config))
    classes = {
        "IntensityAugmentConfig": IntensityAugmentConfig,
        "GammaAugmentConfig": GammaAugmentConfig,
        "IntensityScaleShiftAugmentConfig": IntensityScaleShiftAugmentConfig,
    }
    augments = [
        classes[a["__type__"]](**{k: v for k, v in a.items() if k != "__type__"})
        for a in trainer_json["augments"]
    ]
    fields = {k: v for k, v in trainer_json.items() if k not in ("__type__", "augments")}
    trainer_config = GunpowderTrainerConfig(augments=augments, **fields)
    trainer = trainer_config.trainer_type(trainer_config)
    return trainer, model, task, dataset


def dacapo_batches(
    container: Path, trainer_json: dict[str, Any], count: int
) -> tuple[list[dict[str, Any]], Any]:
    trainer, model, task, dataset = dacapo_parts(container, trainer_json)
    trainer.build_batch_provider([dataset], model, task, None)
    batches = []
    with trainer:
        for _ in range(count):
            raw, gt, target, weight, mask = trainer.next()
            arrays = (raw, gt, target, weight, mask)
            names = ("raw", "gt", "target", "weight", "mask")
            batches.append({n: np.asarray(a[a.roi]) for n, a in zip(names, arrays, strict=True)})
    return batches, model


class _Dataset:
    def __init__(self, container: Path, mask: str = "mask") -> None:
        from dacapo_trainers import InMemoryArray, open_array

        raw = open_array(container, "raw")
        # DaCapo's IntensitiesArrayConfig(min=0, max=255), done here by hand
        self.raw = InMemoryArray(
            np.asarray(raw.data[...], dtype=np.float32) / 255.0,
            voxel_size=raw.voxel_size,
            offset=raw.offset,
        )
        self.gt = open_array(container, "gt")
        self.mask = open_array(container, mask)
        self.name = "parity"
        self.weight = 1.0
        self.sample_points = None


class _Predictor:
    def create_target(self, gt: Any) -> Any:
        from dacapo_trainers import InMemoryArray

        data = (np.asarray(gt.data) > 0).astype(np.float32)[np.newaxis]
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Any, target: Any, mask: Any = None) -> Any:
        from dacapo_trainers import InMemoryArray

        data = np.asarray(mask.data, dtype=np.float32)[np.newaxis]
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)


class _Task:
    predictor = _Predictor()
    loss = None


def our_batches(
    container: Path,
    trainer_json: dict[str, Any],
    model: Any,
    count: int,
    task: Any = None,
    mask: str = "mask",
) -> list:
    from dacapo_trainers import structure_config
    from dacapo_trainers_gunpowder import GunpowderTrainerConfig

    config = structure_config({**trainer_json, "num_data_fetchers": 0}, GunpowderTrainerConfig)
    trainer = config.build_trainer()
    trainer.seed = 0
    trainer.create_optimizer(model)
    trainer.build_batch_provider([_Dataset(container, mask)], model, task or _Task())
    out = []
    with trainer:
        batches = trainer._start_batches(0)
        for index in range(count):
            batch = batches.get(index)
            out.append({name: array.copy() for name, array in batch.arrays.items()})
            batch.release()
    return out


def centre_box(model: Any) -> tuple[slice, ...]:
    """The output voxels of DaCapo's one-voxel mask placeholder (1 or 2 per axis)."""
    boxes = []
    for i, o, v in zip(model.input_shape, model.output_shape, VOXEL_SIZE, strict=True):
        input_size, output_size = i * v, o * v
        output_begin = (input_size - output_size) // 2
        begin = input_size // 2 - v // 2
        lo, hi = begin // v * v, -(-(begin + v) // v) * v
        boxes.append(slice((lo - output_begin) // v, (hi - output_begin) // v))
    return tuple(boxes)


def statistics(batches: list[dict], model: Any) -> dict[str, Any]:
    raw = np.concatenate([b["raw"].ravel() for b in batches])
    box = centre_box(model)
    masks = [m for b in batches for m in b["mask"]]
    gts = [g for b in batches for g in b["gt"]]
    return {
        "raw_min": float(raw.min()),
        "raw_max": float(raw.max()),
        "raw_below_minus_one": float((raw < -1).mean()),
        "raw_zero_fraction": float((raw == 0).mean()),
        "centre_masked": float(np.mean([m[box].any() for m in masks])),
        "mask_fraction": float(np.mean([m.mean() for m in masks])),
        "min_gt_mean": float(min(g.mean() for g in gts)),
        "shapes": {name: list(batches[0][name].shape) for name in ("raw", "gt", "mask")},
    }


def compare(name: str, dacapo: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    problems = []
    if dacapo["shapes"] != ours["shapes"]:
        problems.append(f"batch shapes {ours['shapes']} != DaCapo's {dacapo['shapes']}")
    for key in ("centre_masked",):
        if ours[key] != dacapo[key]:
            problems.append(f"{key} {ours[key]} != DaCapo's {dacapo[key]}")
    low = -1.0 if name == "cosem" else 0.0
    for side, stats in (("DaCapo", dacapo), ("ours", ours)):
        if stats["raw_min"] < low or stats["raw_max"] > 1.0:
            problems.append(f"{side}: raw in [{stats['raw_min']}, {stats['raw_max']}]")
    if name == "plain":
        # raw is >= 1/255 inside the data: zeros are padding, in both or neither
        if (dacapo["raw_zero_fraction"] > 0) != (ours["raw_zero_fraction"] > 0):
            problems.append("padding with 0: only one side pads")
        if abs(dacapo["mask_fraction"] - ours["mask_fraction"]) > 0.05:
            problems.append("mean mask fraction of the crops differs by more than 0.05")
    if name == "gt_min_reject" and ours["min_gt_mean"] <= GT_MIN_REJECT:
        problems.append(f"ours: a crop's mean gt {ours['min_gt_mean']} <= {GT_MIN_REJECT}")
    return problems


def snapshot_layouts(container: Path, folder: Path) -> dict[str, Any]:
    """Each side's snapshot after one training step on the affinities RunConfig."""
    import torch
    from dacapo.store.array_store import LocalContainerIdentifier as DacapoContainer
    from dacapo_task_parity import dacapo_run, layout, run_document

    from dacapo_trainers import ZarrContainer, load_run_config, structure_config
    from dacapo_trainers_gunpowder import GunpowderTrainerConfig

    document = run_document(container, "parity_snapshot", 1)
    trainer_json = {**document["trainer_config"], "snapshot_interval": 1}
    document["trainer_config"] = trainer_json
    layouts: dict[str, Any] = {}
    run = dacapo_run(document, 0)
    path = folder / "dacapo_snapshot.zarr"
    try:
        run.trainer.build_batch_provider(
            run.datasplit.train, run.model, run.task, DacapoContainer(path)
        )
        with run.trainer:
            list(run.trainer.iterate(1, run.model, run.optimizer, torch.device("cpu")))
        layouts["dacapo"] = layout(path)
    except Exception as error:  # DaCapo's snapshot writing needs its whole store stack
        layouts["dacapo"] = f"unavailable: {type(error).__name__}: {error}"
    run_file = folder / "snapshot_run.json"
    run_file.write_text(json.dumps(document))
    ours_config = load_run_config(run_file)
    task = ours_config.task_config.build()
    model = task.create_model(ours_config.architecture_config.build())
    config = structure_config({**trainer_json, "num_data_fetchers": 0}, GunpowderTrainerConfig)
    ours = config.build_trainer()
    optimizer = ours.create_optimizer(model)
    path = folder / "our_snapshot.zarr"
    dataset = _Dataset(container, "wide_mask")
    ours.build_batch_provider([dataset], model, task, ZarrContainer(path))
    with ours:
        list(ours.iterate(1, model, optimizer, torch.device("cpu")))
    layouts["ours"] = layout(path)
    return layouts


def task_batches_and_losses(container: Path, folder: Path, args: argparse.Namespace) -> int:
    """The batch-statistics table and the loss curves on the affinities RunConfig; returns
    the number of failed checks."""
    from dacapo_task_parity import (
        batch_statistics,
        dacapo_task_batches,
        loss_parity,
        print_losses,
        print_table,
        run_document,
    )

    from dacapo_trainers import load_run_config

    document = run_document(container, "parity_table", 1)
    theirs, model = dacapo_task_batches(document, args.batches)
    run_file = folder / "table_run.json"
    run_file.write_text(json.dumps(document))
    task = load_run_config(run_file).task_config.build()
    trainer_json = document["trainer_config"]
    mine = our_batches(container, trainer_json, model, args.batches, task, "wide_mask")
    dacapo, ours = batch_statistics(theirs), batch_statistics(mine)
    print(f"batch statistics on the affinities RunConfig ({args.batches} batches per side):")
    print_table(dacapo, ours)
    losses = loss_parity(container, folder, args.iterations, args.seeds)
    print_losses(losses)
    args.results["task_batches"] = {"dacapo": dacapo, "ours": ours}
    args.results["losses"] = losses
    return int(not losses["within_noise"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    sys.path.insert(0, str(Path(__file__).parent))  # dacapo_task_parity, next to this file
    from dacapo_task_parity import compare_layouts

    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    args.results = results
    failures = 0
    with tempfile.TemporaryDirectory() as folder:
        container = write_data(Path(folder))
        for name, settings in SCENARIOS.items():
            trainer_json = {
                "__type__": "GunpowderTrainerConfig",
                "name": f"parity_{name}",
                "batch_size": 4,
                "learning_rate": 1e-4,
                "num_data_fetchers": 1,
                "min_masked": 0.15,
                **settings,
            }
            theirs, model = dacapo_batches(container, trainer_json, args.batches)
            mine = our_batches(container, trainer_json, model, args.batches)
            dacapo, ours = statistics(theirs, model), statistics(mine, model)
            problems = compare(name, dacapo, ours)
            failures += bool(problems)
            results[name] = {"dacapo": dacapo, "ours": ours, "problems": problems}
            print(f"{name}: {'OK' if not problems else 'DIFFERS'}")
            print(f"  DaCapo: {dacapo}\n  ours:   {ours}")
            for problem in problems:
                print(f"  - {problem}")
        failures += task_batches_and_losses(container, Path(folder), args)
        layouts = snapshot_layouts(container, Path(folder))
        problems = compare_layouts(layouts)
        failures += bool(problems)
        results["snapshot_layout"] = {**layouts, "problems": problems}
        print(f"snapshot layout: {'OK' if not problems else 'DIFFERS'}")
        for side, layout in layouts.items():
            print(f"  {side}: {layout}")
        for problem in problems:
            print(f"  - {problem}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
