"""Against DaCapo 0.3.5 itself (``nox -s tests-dacapo``): its stores' files and its objects.

Skipped unless dacapo-ml is installed. It checks the emulation the other DaCapo tests rely on
(:mod:`dacapo_written`) against DaCapo's own converter and file store, and what
:mod:`dacapo_trainers._contract._protocols` says DaCapo's objects satisfy.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Under `nox -s tests-dacapo` (DACAPO_ML=1) DaCapo must import: a broken install fails loudly
# instead of skipping every check.
dacapo = (
    importlib.import_module("dacapo")
    if os.environ.get("DACAPO_ML")
    else pytest.importorskip("dacapo")
)

from dacapo_written import (  # noqa: E402
    affinities_task,
    binarize_config,
    cnnectome_unet,
    coordinate,
    crop_config,
    datasplit,
    dummy_trainer,
    intensities_config,
    prepare_array,
    raw_gt_dataset,
    run_document,
    zarr_array_config,
)

from dacapo_trainers import (  # noqa: E402
    Array,
    Dataset,
    LocalContainerIdentifier,
    Loss,
    Model,
    ScalingModel,
    load_run_config,
    write_array,
)


def dacapo_run_config(container: Path) -> Any:
    """The run of :func:`emulated` built with DaCapo's own classes."""
    from dacapo.experiments import RunConfig
    from dacapo.experiments.architectures import CNNectomeUNetConfig
    from dacapo.experiments.datasplits import TrainValidateDataSplitConfig
    from dacapo.experiments.datasplits.datasets import RawGTDatasetConfig
    from dacapo.experiments.datasplits.datasets.arrays import (
        BinarizeArrayConfig,
        CropArrayConfig,
        IntensitiesArrayConfig,
        ZarrArrayConfig,
    )
    from dacapo.experiments.tasks import AffinitiesTaskConfig
    from dacapo.experiments.trainers import DummyTrainerConfig
    from funlib.geometry import Coordinate, Roi

    raw = IntensitiesArrayConfig(
        name="raw",
        source_array_config=ZarrArrayConfig(name="raw", file_name=container, dataset="raw"),
        min=0,
        max=255,
    )
    labels = ZarrArrayConfig(name="labels", file_name=container, dataset="labels")
    gt = CropArrayConfig(
        name="crop",
        source_array_config=BinarizeArrayConfig(
            name="cells", source_array_config=labels, groupings=[("cell", [])]
        ),
        roi=Roi((0, 0, 0), (32, 32, 32)),
    )
    train = RawGTDatasetConfig(name="train", raw_config=raw, gt_config=gt)
    return RunConfig(
        name="dacapo_run",
        task_config=AffinitiesTaskConfig(name="affs", neighborhood=[Coordinate(1, 0, 0)]),
        architecture_config=CNNectomeUNetConfig(
            name="unet",
            input_shape=Coordinate(28, 28, 28),
            fmaps_out=4,
            fmaps_in=1,
            num_fmaps=4,
            fmap_inc_factor=2,
            downsample_factors=[Coordinate(2, 2, 2)],
        ),
        trainer_config=DummyTrainerConfig(
            name="dummy", batch_size=1, learning_rate=1e-3, mirror_augment=False
        ),
        datasplit_config=TrainValidateDataSplitConfig(
            name="split", train_configs=[train], validate_configs=[]
        ),
        repetition=0,
        num_iterations=2,
    )


def emulated(container: Path) -> dict[str, Any]:
    raw = intensities_config("raw", zarr_array_config("raw", container, "raw"), 0, 255)
    labels = zarr_array_config("labels", container, "labels")
    gt = crop_config(
        "crop", binarize_config("cells", labels, [("cell", [])]), (0, 0, 0), (32, 32, 32)
    )
    return run_document(
        "dacapo_run",
        affinities_task([coordinate(1, 0, 0)]),
        cnnectome_unet(coordinate(28, 28, 28)),
        dummy_trainer(),
        datasplit("split", [raw_gt_dataset("train", raw, gt)], []),
        num_iterations=2,
    )


@pytest.fixture
def container(tmp_path: Path) -> Path:
    path = tmp_path / "data.zarr"
    prepare_array(path, "raw", np.zeros((16, 16, 16), np.uint8), voxel_size=(2, 2, 2))
    prepare_array(path, "labels", np.ones((16, 16, 16), np.uint64), voxel_size=(2, 2, 2))
    return path


def test_our_emulation_is_dacapos_converter_output(container: Path) -> None:
    from dacapo.store.converter import converter

    assert converter.unstructure(dacapo_run_config(container)) == emulated(container)


def test_dacapos_file_store_yaml_loads(container: Path, tmp_path: Path) -> None:
    from dacapo.store.file_config_store import FileConfigStore

    store = FileConfigStore(tmp_path / "store")
    store.store_run_config(dacapo_run_config(container))
    written = next((tmp_path / "store").rglob("dacapo_run.yaml"))
    assert "!!python/tuple" in written.read_text()
    run = load_run_config(written)
    assert run.architecture_config.input_shape == [28, 28, 28]  # type: ignore[attr-defined]
    assert [c.name for c in run.train_configs] == ["train"]


def test_what_dacapos_objects_satisfy(container: Path, tmp_path: Path) -> None:
    from dacapo.experiments import Run
    from dacapo.store.local_array_store import LocalArrayStore

    run = Run(dacapo_run_config(container), load_starter_model=False)
    dataset = run.datasplit.train[0]
    assert isinstance(dataset, Dataset) and isinstance(dataset.raw, Array)
    assert isinstance(run.model, Model) and isinstance(run.model, ScalingModel)
    assert isinstance(run.task.loss, Loss)
    # DaCapo's predictors return (weight, moving counts): not our Predictor's contract.
    gt = dataset.gt
    target = run.task.predictor.create_target(gt)
    assert isinstance(run.task.predictor.create_weight(gt, target, gt), tuple)
    snapshots = LocalArrayStore(tmp_path / "arrays").snapshot_container("dacapo_run")
    assert isinstance(snapshots, LocalContainerIdentifier)
    write_array(snapshots, "raw", np.zeros((4, 4, 4), np.float32), voxel_size=(2, 2, 2))
    assert (Path(snapshots.container) / "raw").is_dir()
