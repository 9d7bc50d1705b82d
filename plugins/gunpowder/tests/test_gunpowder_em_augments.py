"""The EM augments (defects, DeformAugment, Gaussian blur): what each does to raw, their
config checks, and exact resume of a run using all three."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from gunpowder_helpers import centre, demo_run_file, run_node
from test_gunpowder_augments import SHAPE, node_of, raw_volume

from dacapo_trainers import (
    ConfigError,
    load_run_config,
    structure_config,
    train,
    unstructure_config,
)
from dacapo_trainers.reference import make_demo_data
from dacapo_trainers_gunpowder import (
    AugmentConfig,
    DefectAugmentConfig,
    DeformAugmentConfig,
    GaussianBlurAugmentConfig,
)


def sections(array: np.ndarray) -> list[np.ndarray]:
    return [array[z] for z in range(array.shape[0])]


def test_missing_sections_are_zero() -> None:
    config = DefectAugmentConfig(prob_missing=1.0, prob_low_contrast=0.0)
    out, _ = run_node(node_of(config), raw_volume())
    assert out.shape == centre(raw_volume()).shape
    assert not out.any()


def test_some_sections_missing_the_others_untouched() -> None:
    raw = raw_volume()
    out, _ = run_node(node_of(DefectAugmentConfig(prob_missing=0.5, prob_low_contrast=0.0)), raw)
    kept = [np.array_equal(o, r) for o, r in zip(sections(out), sections(centre(raw)), strict=True)]
    zero = [not o.any() for o in sections(out)]
    assert all(k != z for k, z in zip(kept, zero, strict=True)) and any(kept) and any(zero)


def test_low_contrast_sections_keep_their_mean_and_shrink_deviations() -> None:
    raw = raw_volume()
    config = DefectAugmentConfig(prob_missing=0.0, prob_low_contrast=1.0, contrast_scale=0.25)
    out, _ = run_node(node_of(config), raw)
    for got, was in zip(sections(out), sections(centre(raw)), strict=True):
        # the mean of each section of the request's crop (gunpowder scales the requested crop)
        np.testing.assert_allclose(got - got.mean(), (was - was.mean()) * 0.25, atol=1e-5)
        assert abs(got.mean() - was.mean()) < 1e-5


def test_a_deformed_section_has_a_dark_fold_line_and_stays_in_zero_one() -> None:
    raw = raw_volume()
    config = DefectAugmentConfig(
        prob_missing=0.0, prob_low_contrast=0.0, prob_deform=1.0, deformation_strength=2
    )
    out, _ = run_node(node_of(config), raw)
    assert out.shape == centre(raw).shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert all((section == 0).any() for section in sections(out))  # the fold's line
    assert not np.allclose(out, centre(raw))


def test_deform_moves_labels_without_blending_them() -> None:
    labels = (1 + np.indices(SHAPE).sum(axis=0) // 6).astype(np.uint32)
    config = DeformAugmentConfig(control_point_spacing=[4, 4, 4], jitter_sigma=[2.0, 2.0, 2.0])
    out, _ = run_node(node_of(config), labels, interpolatable=False)
    assert set(np.unique(out)) <= set(np.unique(labels))
    assert not np.array_equal(out, centre(labels))


def test_deform_rotation_axes_keep_rotations_in_the_plane() -> None:
    """Raw that varies only along z is left alone by rotations within z sections, not by
    rotations that tilt z."""
    raw = np.broadcast_to(
        np.linspace(0.1, 0.9, SHAPE[0], dtype=np.float32)[:, None, None], SHAPE
    ).copy()
    in_plane = DeformAugmentConfig(
        control_point_spacing=[4, 4, 4], jitter_sigma=[0.0, 0.0, 0.0], rotation_axes=[1, 2]
    )
    tilting = attrs.evolve(in_plane, rotation_axes=[0, 1])
    for seed in range(3):
        np.testing.assert_allclose(
            run_node(node_of(in_plane), raw, seed=seed)[0], centre(raw), atol=1e-5
        )
    assert any(
        not np.allclose(run_node(node_of(tilting), raw, seed=seed)[0], centre(raw), atol=1e-3)
        for seed in range(3)
    )


def test_blur_reduces_variance_and_keeps_the_mean() -> None:
    raw = raw_volume()
    out, _ = run_node(node_of(GaussianBlurAugmentConfig(sigma_range=(4.0, 8.0))), raw)  # 1-2 voxels
    assert out.var() < 0.5 * centre(raw).var()
    assert abs(out.mean() - centre(raw).mean()) < 0.02


def test_blur_sigma_is_drawn_per_request_seed() -> None:
    node = node_of(GaussianBlurAugmentConfig(sigma_range=(2.0, 12.0)))
    first, again = run_node(node, raw_volume(), seed=1)[0], run_node(node, raw_volume(), seed=1)[0]
    other = run_node(node, raw_volume(), seed=2)[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "config",
    [
        DefectAugmentConfig(prob_missing=0.5, augmentation_probability=0.0),
        DeformAugmentConfig(
            control_point_spacing=[4, 4, 4], jitter_sigma=[2.0] * 3, augmentation_probability=0.0
        ),
        GaussianBlurAugmentConfig(sigma_range=(1.0, 2.0), augmentation_probability=0.0),
    ],
    ids=lambda c: type(c).__name__,
)
def test_probability_zero_leaves_raw_unchanged(config: Any) -> None:
    raw = raw_volume()
    for seed in range(3):
        np.testing.assert_array_equal(run_node(node_of(config), raw, seed=seed)[0], centre(raw))


@pytest.mark.parametrize(
    ("augment", "path", "message"),
    [
        (
            {"__type__": "DefectAugmentConfig", "prob_missing": 0.7, "prob_low_contrast": 0.5},
            "augments[0]",
            "at most 1",
        ),
        ({"__type__": "DefectAugmentConfig", "axis": 3}, "augments[0].axis", "0, 1 or 2"),
        (
            {
                "__type__": "DeformAugmentConfig",
                "control_point_spacing": [4, 4, 4],
                "jitter_sigma": [1.0, 1.0],
            },
            "augments[0].jitter_sigma",
            "one non-negative number per entry",
        ),
        (
            {
                "__type__": "DeformAugmentConfig",
                "control_point_spacing": [4, 4, 4],
                "jitter_sigma": [1.0] * 3,
                "rotation_axes": [1, 1],
            },
            "augments[0].rotation_axes",
            "two different spatial axes",
        ),
        (
            {"__type__": "GaussianBlurAugmentConfig", "sigma_range": [2.0, 1.0]},
            "augments[0].sigma_range",
            "min <= max",
        ),
    ],
)
def test_bad_fields_name_their_path(
    tmp_path: Path, augment: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_run_config(demo_run_file(tmp_path, 2, [augment]))
    assert f"$.trainer_config.{path}" in str(info.value)
    assert message in str(info.value)


EM_AUGMENTS = [
    {"__type__": "DefectAugmentConfig", "prob_missing": 0.1, "prob_low_contrast": 0.1},
    {
        "__type__": "DeformAugmentConfig",
        "control_point_spacing": [80, 80, 80],  # world units: the demo's voxels are 8 nm
        "jitter_sigma": [8.0, 8.0, 8.0],
        "rotation_axes": [1, 2],
        "subsample": 2,
    },
    {"__type__": "GaussianBlurAugmentConfig", "sigma_range": [0.0, 1.5]},
]


@pytest.mark.slow
def test_a_run_with_the_em_augments_resumes_exactly(tmp_path: Path) -> None:
    make_demo_data(tmp_path / "demo.zarr", shape=(40, 40, 40))
    run = load_run_config(demo_run_file(tmp_path, 4, EM_AUGMENTS, intensity_range=[0, 255]))
    train(run, quiet=True)
    resumed = train(attrs.evolve(run, num_iterations=6), quiet=True)
    assert resumed.resumed_from == 4
    straight = train(attrs.evolve(run, num_iterations=6, output=tmp_path / "straight"), quiet=True)
    losses = [line for line in (tmp_path / "out" / "stats.jsonl").read_text().splitlines()]
    expected = [line for line in (tmp_path / "straight" / "stats.jsonl").read_text().splitlines()]
    assert straight.iteration == 6
    assert _losses(losses) == _losses(expected)


def _losses(lines: list[str]) -> list[float]:
    return [json.loads(line)["loss"] for line in lines]


@pytest.mark.parametrize("augment", EM_AUGMENTS, ids=lambda a: str(a["__type__"]))
def test_configs_survive_json(augment: dict[str, Any]) -> None:
    """What run_config.json holds reads back equal (a run using them can resume)."""
    config = structure_config(augment, AugmentConfig)
    assert structure_config(json.loads(json.dumps(unstructure_config(config))), AugmentConfig) == (
        config
    )
