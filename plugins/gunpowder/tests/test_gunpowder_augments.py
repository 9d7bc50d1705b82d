"""Each augment changes the data as it should; augmentation_probability=0 leaves it alone."""

from __future__ import annotations

import gunpowder as gp
import numpy as np
import pytest
from gunpowder_helpers import centre, run_node

from dacapo_trainers_gunpowder import (
    ElasticAugmentConfig,
    GammaAugmentConfig,
    IntensityAugmentConfig,
    IntensityScaleShiftAugmentConfig,
    NoiseAugmentConfig,
    SimpleAugmentConfig,
)
from dacapo_trainers_gunpowder.nodes.gamma_augment import sample_gamma

SHAPE = (16, 16, 16)


def raw_volume() -> np.ndarray:
    """Normalized raw, as DaCapo's IntensitiesArrayConfig gives it: float in [0, 1]."""
    rng = np.random.default_rng(0)
    return rng.uniform(0.1, 0.9, size=SHAPE).astype(np.float32)


def labels_volume() -> np.ndarray:
    index = np.indices(SHAPE)
    return (1 + index[0] // 4 + 4 * (index[1] // 4) + 16 * (index[2] // 4)).astype(np.uint32)


def node_of(config: object) -> object:
    return config.node(gp.ArrayKey("RAW"), gp.ArrayKey("GT"), gp.ArrayKey("MASK"))  # type: ignore[attr-defined]


ALL_AUGMENTS = [
    ElasticAugmentConfig(
        control_point_spacing=[4, 4, 4],
        control_point_displacement_sigma=[6.0, 6.0, 6.0],
        rotation_interval=(0.3, 1.2),
    ),
    SimpleAugmentConfig(),
    GammaAugmentConfig(gamma_range=(0.5, 2.0)),
    IntensityAugmentConfig(scale=(0.5, 1.5), shift=(-0.2, 0.2)),
    IntensityScaleShiftAugmentConfig(scale=2.0, shift=0.1),
    NoiseAugmentConfig(kwargs={"mode": "gaussian", "var": 0.01}),
]


@pytest.mark.parametrize("config", ALL_AUGMENTS, ids=lambda c: type(c).__name__)
def test_probability_zero_leaves_the_data_unchanged(config: object) -> None:
    raw = raw_volume()
    off = type(config)(**{**_fields(config), "augmentation_probability": 0.0})
    for seed in range(3):
        out, _ = run_node(node_of(off), raw, seed=seed)
        np.testing.assert_array_equal(out, centre(raw))


@pytest.mark.parametrize("config", ALL_AUGMENTS, ids=lambda c: type(c).__name__)
def test_probability_one_changes_the_data(config: object) -> None:
    raw = raw_volume()
    changed = [
        not np.array_equal(run_node(node_of(config), raw, seed=seed)[0], centre(raw))
        for seed in range(3)
    ]
    assert any(changed)  # SimpleAugment may draw the identity once in a while
    if not isinstance(config, SimpleAugmentConfig):
        assert all(changed)


def test_gamma_is_really_applied() -> None:
    raw = raw_volume()
    config = GammaAugmentConfig(gamma_range=(2.0, 2.0))
    out, _ = run_node(node_of(config), raw)
    crop = centre(raw)
    lo, hi = crop.min(), crop.max()
    expected = lo + (hi - lo) * ((crop - lo) / (hi - lo)) ** 2
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_gamma_samples_within_the_range_on_both_sides_of_one() -> None:
    rng = np.random.default_rng(0)
    gammas = np.array([sample_gamma(rng, 0.5, 2.0) for _ in range(2000)])
    assert gammas.min() >= 0.5 and gammas.max() <= 2.0
    assert 0.4 < np.mean(gammas < 1.0) < 0.6


def test_intensity_scales_and_shifts_around_the_mean() -> None:
    raw = 0.4 + raw_volume() * 0.2
    config = IntensityAugmentConfig(scale=(2.0, 2.0), shift=(0.1, 0.1))
    out, _ = run_node(node_of(config), raw)
    crop = centre(raw)
    np.testing.assert_allclose(out, crop.mean() + (crop - crop.mean()) * 2 + 0.1, atol=1e-5)


def test_intensity_clips_to_zero_one_as_gunpowder() -> None:
    config = IntensityAugmentConfig(scale=(5.0, 5.0), shift=(0.0, 0.0))
    out, _ = run_node(node_of(config), raw_volume())
    assert out.min() == 0.0 and out.max() == 1.0


def test_intensity_without_clip_leaves_the_range_open() -> None:
    config = IntensityAugmentConfig(scale=(5.0, 5.0), shift=(0.0, 0.0), clip=False)
    out, _ = run_node(node_of(config), raw_volume())
    assert out.min() < -1.0 and out.max() > 2.0


def test_intensity_with_clip_refuses_raw_outside_zero_one() -> None:
    config = IntensityAugmentConfig(scale=(1.0, 1.0), shift=(0.0, 0.0))
    with pytest.raises(Exception, match=r"needs raw in \[0, 1\].*intensity_range"):
        run_node(node_of(config), raw_volume() * 255)


def test_intensity_scale_shift_is_exact() -> None:
    raw = raw_volume()
    out, _ = run_node(node_of(IntensityScaleShiftAugmentConfig(scale=2.0, shift=0.1)), raw)
    np.testing.assert_allclose(out, centre(raw) * 2 + 0.1, rtol=1e-6)


def test_noise_changes_values_but_not_their_scale() -> None:
    raw = raw_volume()
    out, _ = run_node(node_of(NoiseAugmentConfig(kwargs={"var": 0.01})), raw)
    difference = out - centre(raw)
    assert 0.05 < difference.std() < 0.15


def test_simple_augment_mirrors_or_transposes_raw_and_gt_alike() -> None:
    raw = raw_volume()
    labels = labels_volume()
    out_raw, out_gt = run_node(node_of(SimpleAugmentConfig()), raw, extra_gt=labels, seed=5)
    assert out_gt is not None
    assert sorted(out_raw.ravel()) == sorted(centre(raw).ravel())
    # the voxel that holds a raw value holds the gt value of the same source voxel
    lookup = dict(zip(raw.ravel().tolist(), labels.ravel().tolist(), strict=True))
    assert all(lookup[r] == g for r, g in zip(out_raw.ravel(), out_gt.ravel(), strict=True))


def test_elastic_moves_labels_without_blending_them() -> None:
    labels = labels_volume()
    config = ElasticAugmentConfig(
        control_point_spacing=[4, 4, 4],
        control_point_displacement_sigma=[6.0, 6.0, 6.0],
        rotation_interval=(0.0, 0.0),
        uniform_3d_rotation=True,
    )
    out, _ = run_node(node_of(config), labels, interpolatable=False)
    assert out.dtype == labels.dtype
    assert set(np.unique(out)) <= set(np.unique(labels)) | {0}
    assert not np.array_equal(out, centre(labels))


@pytest.mark.parametrize("interpolate_raw", [False, True])
def test_elastic_raw_keeps_source_values_as_dacapo_unless_interpolated(
    interpolate_raw: bool,
) -> None:
    raw = raw_volume()
    config = ElasticAugmentConfig(
        control_point_spacing=[4, 4, 4],
        control_point_displacement_sigma=[6.0, 6.0, 6.0],
        rotation_interval=(0.3, 1.2),
        interpolate_raw=interpolate_raw,
    )
    # the source marks raw interpolatable: the config alone decides
    out, _ = run_node(node_of(config), raw, interpolatable=True)
    assert out.dtype == raw.dtype
    assert not np.array_equal(out, centre(raw))
    kept = np.isin(out, np.append(raw.ravel(), 0))
    if interpolate_raw:
        assert kept.mean() < 0.5  # blended values
    else:
        assert kept.all()  # every deformed voxel holds a source value (or 0 outside)


def test_elastic_without_deformation_or_rotation_is_the_identity() -> None:
    raw = raw_volume()
    config = ElasticAugmentConfig(
        control_point_spacing=[4, 4, 4],
        control_point_displacement_sigma=[0.0, 0.0, 0.0],
        rotation_interval=(0.0, 0.0),
        subsample=2,
    )
    out, _ = run_node(node_of(config), raw)
    np.testing.assert_allclose(out, centre(raw), atol=1e-5)


def test_elastic_rotation_by_a_right_angle_rotates_the_last_two_axes() -> None:
    raw = raw_volume()
    config = ElasticAugmentConfig(
        control_point_spacing=[4, 4, 4],
        control_point_displacement_sigma=[0.0, 0.0, 0.0],
        rotation_interval=(np.pi / 2, np.pi / 2),
    )
    out, _ = run_node(node_of(config), raw)
    # centred even-sized crop of a centred rotation: equal to a 90 degree np.rot90 of the crop
    candidates = [np.rot90(centre(raw), k, axes=(1, 2)) for k in (1, 3)]
    assert any(np.allclose(out, c, atol=1e-4) for c in candidates)


def _fields(config: object) -> dict[str, object]:
    import attrs

    return attrs.asdict(config, recurse=False)  # type: ignore[arg-type]
