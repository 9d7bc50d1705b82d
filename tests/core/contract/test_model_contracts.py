"""The model of a run is built and read in one place each: ``build_model`` (predictors that are
a ``ModelFactory``) and ``output_voxel_size`` (models that are a ``ScalingModel``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from dacapo_trainers import (
    Architecture,
    Model,
    ModelFactory,
    ScalingModel,
    build_model,
    output_voxel_size,
)
from dacapo_trainers.reference import AffinitiesTaskConfig, UNetConfig


@attrs.define
class PlainPredictor:
    """A predictor without create_model: the architecture is trained as it is."""

    def create_target(self, gt: Any) -> Any:
        return gt

    def create_weight(self, gt: Any, target: Any, mask: Any = None) -> Any:
        return gt


@attrs.define
class PlainTask:
    predictor: Any
    loss: Any = None


@attrs.define
class Upsampling:
    """An architecture that predicts at half the input voxel size, recording what it got."""

    input_shape: tuple[int, ...] = (8, 8, 8)
    num_in_channels: int = 1
    num_out_channels: int = 2
    seen: list[Any] = attrs.Factory(list)

    def scale(self, voxel_size: Sequence[int]) -> Sequence[int]:
        self.seen.append(voxel_size)
        return [int(v) // 2 for v in voxel_size]


def test_a_model_factory_builds_the_model() -> None:
    task = AffinitiesTaskConfig(name="a", neighborhood=[[1, 0, 0], [0, 1, 0]]).build()
    architecture = UNetConfig(
        name="u", input_shape=[20, 20, 20], num_fmaps=2, downsample_factors=[[2, 2, 2]]
    ).build()
    assert isinstance(task.predictor, ModelFactory)
    assert isinstance(architecture, Architecture)
    model = build_model(task, architecture)
    assert isinstance(model, Model)
    assert model.num_out_channels == 2  # one channel per affinity offset
    assert tuple(model.input_shape) == (20, 20, 20)


def test_without_a_factory_the_architecture_is_the_model() -> None:
    architecture = UNetConfig(
        name="u", input_shape=[20, 20, 20], num_fmaps=2, downsample_factors=[[2, 2, 2]]
    ).build()
    assert not isinstance(PlainPredictor(), ModelFactory)
    assert build_model(PlainTask(PlainPredictor()), architecture) is architecture


def test_a_refusing_factory_raises_value_error() -> None:
    task = AffinitiesTaskConfig(name="a", neighborhood=[[30, 0, 0]]).build()
    architecture = UNetConfig(
        name="u", input_shape=[20, 20, 20], num_fmaps=2, downsample_factors=[[2, 2, 2]]
    ).build()
    with pytest.raises(ValueError, match="30"):
        build_model(task, architecture)


def test_output_voxel_size_without_scale_is_the_input_size() -> None:
    architecture = UNetConfig(
        name="u", input_shape=[20, 20, 20], num_fmaps=2, downsample_factors=[[2, 2, 2]]
    ).build()
    assert not isinstance(architecture, ScalingModel)
    assert output_voxel_size(architecture, [8, 8, 4]) == (8, 8, 4)


def test_output_voxel_size_asks_scale_with_funlib_coordinates_where_installed() -> None:
    model = Upsampling()
    assert isinstance(model, ScalingModel)
    assert output_voxel_size(model, (8, 8, 8)) == (4, 4, 4)
    (given,) = model.seen
    if importlib.util.find_spec("funlib.geometry") is not None:
        from funlib.geometry import Coordinate

        assert isinstance(given, Coordinate)  # DaCapo's scale divides a Coordinate
    else:
        assert given == (8, 8, 8)


def test_the_driver_builds_the_model_with_it(tmp_path: Path, demo_zarr: Path) -> None:
    from dacapo_trainers import RunConfig, default_registry
    from dacapo_trainers._run._run_inputs import build_trainer, open_inputs
    from dacapo_trainers.reference import DummyTrainerConfig, ZarrDatasetConfig

    run = RunConfig(
        name="models",
        trainer_config=DummyTrainerConfig(
            name="d", batch_size=1, learning_rate=1e-3, mirror_augment=False
        ),
        architecture_config=UNetConfig(
            name="u", input_shape=[20, 20, 20], num_fmaps=2, downsample_factors=[[2, 2, 2]]
        ),
        task_config=AffinitiesTaskConfig(name="a", neighborhood=[[1, 0, 0]]),
        datasets=[ZarrDatasetConfig(name="d", container=demo_zarr)],
        num_iterations=1,
        output=tmp_path / "out",
        device="cpu",
    )
    registry = default_registry()
    trainer = build_trainer(run, registry, None)
    try:
        inputs = open_inputs(run, trainer, registry, None)
    finally:
        trainer.close()
    expected = build_model(run.task_config.build(), run.architecture_config.build())
    assert type(inputs.model) is type(expected)
    assert inputs.model.num_out_channels == expected.num_out_channels == 1
    assert not (tmp_path / "out").exists()  # opening the inputs writes nothing
