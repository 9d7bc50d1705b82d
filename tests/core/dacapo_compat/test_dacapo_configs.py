"""DaCapo 0.3.5's config files and types: YAML with python tuples, JSON, fields, models, tasks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from dacapo_written import (
    affinities_task,
    binarize_config,
    cnnectome_unet,
    coordinate,
    crop_config,
    datasplit,
    distance_task,
    dummy_trainer,
    intensities_config,
    raw_gt_dataset,
    run_document,
    write_file_store_yaml,
    write_mongo_json,
    zarr_array_config,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from dacapo_trainers import (
    ConfigError,
    InMemoryArray,
    Model,
    ModelFactory,
    RunConfig,
    ScalingModel,
    load_run_config,
    read_config_file,
    unstructure_config,
)
from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    BinarizeArrayConfig,
    CNNectomeUNetConfig,
    CropArrayConfig,
    DistanceTaskConfig,
    IntensitiesArrayConfig,
    OneHotTaskConfig,
    RawGTDatasetConfig,
    TrainValidateDataSplitConfig,
    ZarrArrayConfig,
)


def full_document(tmp_path: Path) -> dict[str, Any]:
    """A DaCapo run touching every DaCapo type of the reference package."""
    raw = intensities_config("raw", zarr_array_config("raw", tmp_path / "c.zarr", "raw"), 0, 255)
    labels = zarr_array_config("labels", tmp_path / "c.zarr", "labels")
    gt = binarize_config("cells", labels, [("cell", []), ("mito", [2, 3])])
    train = raw_gt_dataset(
        "train",
        raw,
        crop_config("crop", gt, coordinate(0, 0, 0), coordinate(64, 64, 64)),
        sample_points=[coordinate(8, 8, 8)],
    )
    split = datasplit("split", [train], [raw_gt_dataset("val", raw, gt)])
    architecture = cnnectome_unet(coordinate(28, 28, 28), _eval_shape_increase=coordinate(8, 8, 8))
    return run_document(
        "dacapo_run",
        distance_task(["cell", "mito"]),
        architecture,
        dummy_trainer(),
        split,
        num_iterations=10,
        validation_interval=5,
        repetition=2,
        start={"__type__": "StartConfig", "run": "other", "criterion": "latest"},
    )


def check_full_run(run: RunConfig, tmp_path: Path) -> None:
    assert run.repetition == 2 and run.validation_interval == 5 and run.num_iterations == 10
    assert run.datasets is None
    split = run.datasplit_config
    assert isinstance(split, TrainValidateDataSplitConfig)
    train = split.train_configs[0]
    assert isinstance(train, RawGTDatasetConfig)
    assert train.sample_points == [[8, 8, 8]]
    assert isinstance(train.raw_config, IntensitiesArrayConfig)
    assert (train.raw_config.min, train.raw_config.max) == (0, 255)
    source = train.raw_config.source_array_config
    assert isinstance(source, ZarrArrayConfig)
    assert source.file_name == str(tmp_path / "c.zarr") and source.axes is None
    assert isinstance(train.gt_config, CropArrayConfig)
    assert train.gt_config.roi == [[0, 0, 0], [64, 64, 64]]
    binarize = train.gt_config.source_array_config
    assert isinstance(binarize, BinarizeArrayConfig)
    assert binarize.groupings == [("cell", []), ("mito", [2, 3])]
    architecture = run.architecture_config
    assert isinstance(architecture, CNNectomeUNetConfig)
    assert architecture.input_shape == [28, 28, 28]
    assert architecture.downsample_factors == [[2, 2, 2]]
    assert architecture.eval_shape_increase == [8, 8, 8]
    assert isinstance(run.task_config, DistanceTaskConfig)
    assert run.start_config is not None and run.start_config.criterion == "latest"
    assert [c.name for c in run.train_configs] == ["train"]
    assert [c.name for c in run.validate_configs] == ["val"]
    assert run.effective_seed == run.seed + 2


def test_file_store_yaml_with_python_tuples_loads(tmp_path: Path) -> None:
    path = write_file_store_yaml(tmp_path / "run.yaml", full_document(tmp_path))
    assert "!!python/tuple" in path.read_text()
    check_full_run(load_run_config(path), tmp_path)


def test_mongo_json_loads_to_the_same_run(tmp_path: Path) -> None:
    document = full_document(tmp_path)
    from_yaml = load_run_config(write_file_store_yaml(tmp_path / "run.yaml", document))
    from_json = load_run_config(write_mongo_json(tmp_path / "run.json", document))
    check_full_run(from_json, tmp_path)
    assert from_json == from_yaml


def test_unstructure_writes_dacapo_keys_and_round_trips(tmp_path: Path) -> None:
    path = write_file_store_yaml(tmp_path / "run.yaml", full_document(tmp_path))
    run = load_run_config(path)
    data = unstructure_config(run)
    assert data["architecture_config"]["_eval_shape_increase"] == [8, 8, 8]
    source = data["datasplit_config"]["train_configs"][0]["raw_config"]["source_array_config"]
    assert source["_axes"] is None and source["mode"] == "a" and source["snap_to_grid"] is None
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(data))
    assert load_run_config(again) == run


def test_cli_validates_a_dacapo_file(tmp_path: Path) -> None:
    path = write_file_store_yaml(tmp_path / "run.yaml", full_document(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert '"_eval_shape_increase"' in result.stdout


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['touch {marker}']",
        "a: !!python/object/new:os.system ['touch {marker}']",
        "a: !!python/name:os.system",
        "a: !!python/module:os",
        "a: !!python/object:pathlib.Path {{}}",
    ],
)
def test_other_python_tags_are_refused_and_run_nothing(tmp_path: Path, text: str) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.yaml"
    path.write_text(text.format(marker=marker))
    with pytest.raises(ConfigError, match="could not determine a constructor"):
        read_config_file(path)
    assert not marker.exists()


nested = st.recursive(
    st.integers(-5, 5) | st.text(alphabet="abc", max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple),
    max_leaves=12,
)


def as_lists(value: Any) -> Any:
    return [as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


@settings(max_examples=60, deadline=None)
@given(value=nested)
def test_python_tuples_read_as_lists_at_any_depth(tmp_path_factory: Any, value: Any) -> None:
    path = tmp_path_factory.mktemp("yaml") / "value.yaml"
    path.write_text(yaml.dump({"value": value}))
    assert read_config_file(path) == {"value": as_lists(value)}


def minimal_run(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    document = run_document(
        "run",
        affinities_task([coordinate(1, 0, 0)]),
        cnnectome_unet(coordinate(28, 28, 28)),
        dummy_trainer(),
        datasplit("split", [], []),
        num_iterations=1,
    )
    document["datasplit_config"]["train_configs"] = [
        raw_gt_dataset(
            "d",
            zarr_array_config("raw", tmp_path / "c.zarr", "raw"),
            zarr_array_config("gt", tmp_path / "c.zarr", "gt"),
        )
    ]
    document.update(changes)
    return document


def issues(tmp_path: Path, document: dict[str, Any]) -> list[str]:
    path = write_mongo_json(tmp_path / "run.json", document)
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    return [str(issue) for issue in info.value.issues]


def test_datasets_and_datasplit_are_exclusive(tmp_path: Path) -> None:
    ours = [{"__type__": "ZarrDatasetConfig", "name": "d", "container": "c.zarr"}]
    both = issues(tmp_path, minimal_run(tmp_path, datasets=ours))
    assert len(both) == 1 and both[0].startswith("$.datasplit_config: is given together with")
    neither = issues(tmp_path, minimal_run(tmp_path, datasplit_config=None))
    assert len(neither) == 1 and neither[0].startswith("$.datasets: is missing")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"repetition": -1}, "$.repetition: must not be negative"),
        ({"validation_interval": 0}, "$.validation_interval: must be at least 1"),
        ({"start_config": {"__type__": "StartConfig", "run": "x"}}, "$.start_config.criterion"),
    ],
)
def test_dacapo_run_fields_are_checked(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    assert any(
        issue.startswith(expected) for issue in issues(tmp_path, minimal_run(tmp_path, **changes))
    )


def test_lsds_are_refused_with_a_reason(tmp_path: Path) -> None:
    task = affinities_task([coordinate(1, 0, 0)])
    task["lsds"] = True
    found = issues(tmp_path, minimal_run(tmp_path, task_config=task))
    assert found == [
        "$.task_config.lsds: is not implemented in dacapo-trainers (local shape descriptors "
        "need DaCapo's lsd extractor); set lsds: false"
    ]


def test_unknown_keys_stay_errors_in_dacapo_types(tmp_path: Path) -> None:
    architecture = cnnectome_unet(coordinate(28, 28, 28), eval_shape_increase=None)
    found = issues(tmp_path, minimal_run(tmp_path, architecture_config=architecture))
    assert found[0].startswith("$.architecture_config.eval_shape_increase: unknown key")
    assert "did you mean '_eval_shape_increase'?" in found[0]


# -- CNNectomeUNetConfig --------------------------------------------------------------------


def unet(**changes: Any) -> CNNectomeUNetConfig:
    fields: dict[str, Any] = {
        "name": "u",
        "input_shape": [28, 28, 28],
        "fmaps_in": 1,
        "fmaps_out": 3,
        "num_fmaps": 2,
        "fmap_inc_factor": 2,
        "downsample_factors": [[2, 2, 2]],
    }
    fields.update(changes)
    return CNNectomeUNetConfig(**fields)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"constant_upsample": False},
        {"input_shape": [36, 36], "downsample_factors": [[2, 2], [2, 2]], "padding": "same"},
        {"input_shape": [44, 44, 44], "downsample_factors": [[2, 2, 2], [2, 2, 2]]},
        {"use_attention": True, "batch_norm": True},
        {"input_shape": [40, 44], "downsample_factors": [[2, 2]], "use_attention": True},
        {
            "input_shape": [30, 34],
            "downsample_factors": [[2, 2]],
            "kernel_size_down": [[[3, 3]], [[3, 3], [3, 3]]],
            "kernel_size_up": [[[5, 5]]],
        },
        {"input_shape": [37, 37, 37], "downsample_factors": [[1, 3, 3]]},
        {"input_shape": [40, 40], "downsample_factors": [[2, 2]], "upsample_factors": [[2, 2]]},
    ],
)
def test_cnnectome_unet_shapes_match_a_forward_pass(changes: dict[str, Any]) -> None:
    config = unet(**changes)
    model = config.build()
    assert isinstance(model, Model)
    with torch.no_grad():
        output = model(torch.zeros(2, 1, *config.input_shape))
    assert tuple(output.shape) == (2, 3, *config.output_shape())
    assert model.output_shape == config.output_shape()
    assert (model.num_in_channels, model.num_out_channels) == (1, 3)


def test_cnnectome_unet_scale_eval_shape_and_dacapo_defaults() -> None:
    plain = unet()
    assert plain.constant_upsample is True and plain.padding == "valid"
    assert plain.kernels_down() == [[[3, 3, 3], [3, 3, 3]]] * 2
    model = unet(eval_shape_increase=[16, 16, 16]).build()  # attrs drops the underscore
    assert model.eval_input_shape == (44, 44, 44)
    assert isinstance(model, ScalingModel)
    assert model.scale((8, 8, 8)) == (8, 8, 8)
    upsampling = unet(input_shape=[40, 40], downsample_factors=[[2, 2]], upsample_factors=[[2, 2]])
    assert upsampling.build().scale((8, 8)) == (4, 4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_shape": [29, 29, 29]}, "not divisible by the downsample factor 2"),
        ({"downsample_factors": [[2, 2]]}, "downsample_factors entry [2, 2] must have 3 entries"),
        ({"padding": "reflect"}, "padding must be 'valid' or 'same'"),
        ({"kernel_size_up": [[[3, 3, 3]], [[3, 3, 3]]]}, "kernel_size_up must list 1 levels"),
    ],
)
def test_cnnectome_unet_refuses_what_does_not_fit(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        unet(**changes).build()


# -- tasks -----------------------------------------------------------------------------------


def test_neighborhood_past_the_output_shape_is_refused() -> None:
    architecture = unet().build()
    task = AffinitiesTaskConfig(name="affs", neighborhood=[[1000, 0, 0]]).build()
    assert isinstance(task.predictor, ModelFactory)
    with pytest.raises(ValueError, match=r"offset \[1000, 0, 0\] reaches past the model's output"):
        task.predictor.create_model(architecture)
    fits = AffinitiesTaskConfig(name="affs", neighborhood=[[3, 0, 0], [0, 0, -5]]).build()
    assert fits.predictor.create_model(architecture).output_shape == (12, 12, 12)


def test_background_as_object_gives_background_affinities() -> None:
    labels = np.array([[0, 0, 1], [0, 0, 1]], dtype=np.uint64)
    gt = InMemoryArray(labels, voxel_size=(1, 1), offset=(0, 0))
    plain = AffinitiesTaskConfig(name="a", neighborhood=[[0, 1]]).build()
    as_object = AffinitiesTaskConfig(name="a", neighborhood=[[0, 1]], background_as_object=True)
    assert plain.predictor.create_target(gt).data[0].tolist() == [[0, 0, 0], [0, 0, 0]]
    target = as_object.build().predictor.create_target(gt).data[0]
    assert target.tolist() == [[1, 0, 0], [1, 0, 0]]


def test_clip_bounds_the_weight_of_a_rare_class() -> None:
    labels = np.zeros((1, 41), dtype=np.uint64)
    labels[0, :2] = 1  # one positive affinity among 40 known voxels: fraction 0.025
    gt = InMemoryArray(labels, voxel_size=(1, 1), offset=(0, 0))
    predictor = AffinitiesTaskConfig(name="a", neighborhood=[[0, 1]]).build().predictor
    weight = predictor.create_weight(gt, predictor.create_target(gt)).data[0, 0]
    assert weight[0] == pytest.approx(0.5 / 0.05)  # the fraction is clipped to 0.05
    assert weight[1] == pytest.approx(0.5 / 0.95)  # 39 / 40 is clipped to 0.95


def test_one_hot_kernel_size_shrinks_the_output() -> None:
    architecture = unet().build()
    default = OneHotTaskConfig(name="o", classes=["a", "b"], kernel_size=None).build()
    one = OneHotTaskConfig(name="o", classes=["a", "b"], kernel_size=1).build()
    assert one.predictor.create_model(architecture).output_shape == (12, 12, 12)
    model = default.predictor.create_model(architecture)  # null: 3, as DaCapo 0.3.5
    assert model.output_shape == (10, 10, 10)
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 28, 28, 28)).shape == (1, 2, 10, 10, 10)


def test_distance_target_weight_and_loss() -> None:
    inside = np.zeros((2, 1, 9), dtype=np.uint8)
    inside[0, 0, 3:6] = 1  # channel 0: an object of 3 voxels; channel 1: empty
    gt = InMemoryArray(inside, voxel_size=(4, 4), offset=(0, 0))
    task = DistanceTaskConfig(
        name="d", channels=["a", "b"], clip_distance=1, tol_distance=1, scale_factor=8
    ).build()
    target = task.predictor.create_target(gt).data
    # distances to the faces at 3 and 6 (in voxels), times 4 nm, positive inside
    expected = np.array([-10, -6, -2, 2, 6, 2, -2, -6, -10]) * 1.0
    np.testing.assert_allclose(target[0, 0], np.tanh(expected / 8), rtol=1e-5)
    assert np.all(target[1] == np.float32(np.tanh(-2.0 / 8)))  # no face: minus half an extent
    square = np.zeros((15, 15), dtype=np.uint8)
    square[5:10, 5:10] = 1
    gt = InMemoryArray(square, voxel_size=(4, 4), offset=(0, 0))
    task = DistanceTaskConfig(
        name="d", channels=["a"], clip_distance=1, tol_distance=1, scale_factor=8
    ).build()
    target = task.predictor.create_target(gt).data
    mask_data = np.ones((15, 15), np.uint8)
    mask_data[:, 12:] = 0
    mask = InMemoryArray(mask_data, voxel_size=(4, 4), offset=(0, 0))
    weight = task.predictor.create_weight(gt, task.predictor.create_target(gt), mask).data
    assert weight.shape == (1, 15, 15)
    assert weight[0, 7, 7] > 0  # the centre is far from the edges of crop and mask
    assert weight[0, 0, 0] == 0  # a corner cannot know its distance to the object
    assert np.all(weight[0, :, 12:] == 0)  # outside the mask
    loss = task.loss.compute(
        torch.zeros(1, 1, 15, 15), torch.from_numpy(target)[None], torch.from_numpy(weight)[None]
    )
    manual = ((weight * (0 - target)) ** 2).mean()
    assert loss.item() == pytest.approx(float(manual), rel=1e-5)


@pytest.mark.parametrize("true_edge_distance", [False, True])
def test_distance_mask_compares_with_half_the_edge_distance_as_dacapo(
    true_edge_distance: bool,
) -> None:
    square = np.zeros((15, 15), dtype=np.uint8)
    square[4:11, 4:11] = 1
    gt = InMemoryArray(square, voxel_size=(4, 4), offset=(0, 0))
    config = DistanceTaskConfig(
        name="d",
        channels=["a"],
        clip_distance=1,
        tol_distance=1,
        scale_factor=8,
        true_edge_distance=true_edge_distance,
    )
    predictor = config.build().predictor
    target = predictor.create_target(gt).data
    weight = predictor.create_weight(gt, predictor.create_target(gt)).data
    # DaCapo's rule, written out: the edge distance sampled with half (or all) the voxel size
    divisor = 1.0 if true_edge_distance else 2.0
    edge = ndimage.distance_transform_edt(np.pad(np.ones((15, 15)), 1), sampling=4 / divisor)
    edge = np.tanh(edge[1:-1, 1:-1] / 8)
    unknown = np.minimum(np.abs(target[0]) + 0.05, 0.8) >= edge
    np.testing.assert_array_equal(weight[0] > 0, ~unknown)
    assert 0 < unknown.sum() < unknown.size


def test_distance_needs_one_gt_channel_per_task_channel() -> None:
    gt = InMemoryArray(np.zeros((3, 4, 4), np.uint8), voxel_size=(1, 1), offset=(0, 0))
    task = DistanceTaskConfig(name="d", channels=["a", "b"], clip_distance=1, tol_distance=1)
    with pytest.raises(ValueError, match="one binary channel per task channel"):
        task.build().predictor.create_target(gt)
