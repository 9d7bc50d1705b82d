"""Augment configs: DaCapo's ``gp_augments``, each building one gunpowder node.

Field names and defaults follow DaCapo 0.3.5, so DaCapo JSON is accepted unchanged. Every
augment takes ``augmentation_probability`` (DaCapo's gamma and scale-shift augments did not; the
field defaults to 1.0, so their JSON still means the same). Importing this module imports
neither torch nor gunpowder: :meth:`AugmentConfig.node` imports them when a pipeline is built.

Raw reaches the augments as float32 with the values the dataset gives (never rescaled by the
trainer, as DaCapo): datasets that should be normalized say so in their own config (DaCapo's
``IntensitiesArrayConfig``, ``ZarrDatasetConfig.intensity_range``). "clip" below means what it
means in gunpowder: [0, 1] for IntensityAugment, skimage's range for NoiseAugment.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from dacapo_trainers import TaggedConfig

if TYPE_CHECKING:
    import gunpowder as gp


def _check_probability(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1], got {value}")


def _check_interval(
    instance: Any, attribute: attrs.Attribute[Any], value: tuple[float, float]
) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{attribute.name} must be a (min, max) pair with min <= max, got {value}")


def _as_pair(value: Any) -> tuple[float, float]:
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _probability_field() -> Any:
    return attrs.field(
        default=1.0,
        validator=_check_probability,
        metadata={"help_text": "Probability of applying the augmentation to a sample."},
    )


@attrs.define(kw_only=True)
class AugmentConfig(TaggedConfig):
    """Base class of augment configs: ``GunpowderTrainerConfig.augments`` lists them.

    A subclass builds its gunpowder node in :meth:`node`. Raw arrives as float32; gt and mask
    arrive as integers and must only be moved, never blended.
    """

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        """The gunpowder node applying this augment to a sample.

        Called once per data worker as it builds its pipeline (in each worker process, or in
        the training process with ``num_data_fetchers: 0``); import gunpowder here, not at
        module level. The node sees one sample per request, after the random location and
        before the task's target: raw (float32, as the dataset gives it) over the model's
        input region, gt (its own dtype) and mask (uint8) over the output region. ``mask_key``
        is always requested: a dataset without a mask gets ones. Draw every random choice
        from ``random`` / ``np.random`` inside ``prepare`` / ``process`` (gunpowder reseeds
        them from ``request.random_seed``, which depends only on the run seed and the sample's
        position), never from a generator made at construction: an exact resume depends on
        it. "Extending a first-party trainer" in the docs has the whole contract.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement node()")


@attrs.define(kw_only=True)
class ElasticAugmentConfig(AugmentConfig):
    """Elastic deformation plus rotation of raw, gt and mask alike (DaCapo's ElasticAugment).

    Every array is resampled by nearest neighbour, as in DaCapo (which never marks raw
    interpolatable): each deformed voxel keeps a value of its source. ``interpolate_raw``
    (ours) resamples raw linearly instead.
    """

    control_point_spacing: list[int] = attrs.field(
        metadata={
            "help_text": "Distance between control points for the elastic deformation, in "
            "voxels per dimension."
        }
    )
    control_point_displacement_sigma: list[float] = attrs.field(
        metadata={
            "help_text": "Standard deviation of control point displacement distribution, in "
            "world coordinates."
        }
    )
    rotation_interval: tuple[float, float] = attrs.field(
        converter=_as_pair,
        validator=_check_interval,
        metadata={
            "help_text": "Interval to randomly sample rotation angles from (0, 2PI); the "
            "rotation is in the plane of the last two axes."
        },
    )
    subsample: int = attrs.field(
        default=1,
        metadata={
            "help_text": "Perform the elastic augmentation on a grid downsampled by this factor."
        },
    )
    uniform_3d_rotation: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Whether or not to perform rotations uniformly on a 3D sphere. This "
            "ignores the rotation interval due to the difficulty of parameterizing 3D rotations."
        },
    )
    augmentation_probability: float = _probability_field()
    interpolate_raw: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Ours: resample raw by linear interpolation (smoother, without the "
            "blocky look of nearest neighbour on strong deformations). False: nearest "
            "neighbour, as DaCapo; gt and mask are always resampled by nearest neighbour."
        },
    )

    @subsample.validator
    def _check_subsample(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"subsample must be at least 1, got {value}")

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        from .nodes import ElasticAugment

        return ElasticAugment(
            control_point_spacing=self.control_point_spacing,
            control_point_displacement_sigma=self.control_point_displacement_sigma,
            rotation_interval=self.rotation_interval,
            subsample=self.subsample,
            uniform_3d_rotation=self.uniform_3d_rotation,
            p=self.augmentation_probability,
            linear_keys=[raw_key] if self.interpolate_raw else [],
        )


@attrs.define(kw_only=True)
class SimpleAugmentConfig(AugmentConfig):
    """Random mirrors and transposes of the spatial axes (gunpowder's SimpleAugment)."""

    augmentation_probability: float = _probability_field()

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        import gunpowder as gp

        return gp.SimpleAugment(p=self.augmentation_probability)


@attrs.define(kw_only=True)
class GammaAugmentConfig(AugmentConfig):
    """Random gamma correction of raw, within each sample's intensity range.

    Unlike DaCapo 0.3.5's GammaAugment (which computes the corrected data and then returns the
    input unchanged), this one applies the gamma.
    """

    gamma_range: tuple[float, float] = attrs.field(
        converter=_as_pair,
        validator=_check_interval,
        metadata={"help_text": "The range (min/max) of gamma noise to apply to your data."},
    )
    augmentation_probability: float = _probability_field()

    @gamma_range.validator
    def _check_gamma_range(
        self, attribute: attrs.Attribute[tuple[float, float]], value: tuple[float, float]
    ) -> None:
        if not all(v > 0 and math.isfinite(v) for v in value):
            raise ValueError(f"gamma_range must be positive, got {value}")

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        from .nodes import GammaAugment

        return GammaAugment(
            raw_key,
            gamma_min=self.gamma_range[0],
            gamma_max=self.gamma_range[1],
            p=self.augmentation_probability,
        )


@attrs.define(kw_only=True)
class IntensityAugmentConfig(AugmentConfig):
    """Random contrast scale and brightness shift of raw, around each sample's mean.

    gunpowder's IntensityAugment: with ``clip``, raw must be in [0, 1] and stays there.
    """

    scale: tuple[float, float] = attrs.field(
        converter=_as_pair,
        validator=_check_interval,
        metadata={"help_text": "A range within which to choose a random scale factor."},
    )
    shift: tuple[float, float] = attrs.field(
        converter=_as_pair,
        validator=_check_interval,
        metadata={"help_text": "A range within which to choose a random additive shift."},
    )
    clip: bool = attrs.field(
        default=True,
        metadata={
            "help_text": "Set to False if modified values should not be clipped to [0, 1]. "
            "With True (as gunpowder), raw must already be in [0, 1]."
        },
    )
    augmentation_probability: float = _probability_field()

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        from .nodes import IntensityAugment

        return IntensityAugment(
            raw_key,
            scale_min=self.scale[0],
            scale_max=self.scale[1],
            shift_min=self.shift[0],
            shift_max=self.shift[1],
            clip=self.clip,
            p=self.augmentation_probability,
        )


@attrs.define(kw_only=True)
class IntensityScaleShiftAugmentConfig(AugmentConfig):
    """A constant affine intensity change of raw: ``raw * scale + shift``."""

    scale: float = attrs.field(metadata={"help_text": "A constant to scale your intensities."})
    shift: float = attrs.field(metadata={"help_text": "A constant to shift your intensities."})
    augmentation_probability: float = _probability_field()

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        from .nodes import IntensityScaleShiftAugment

        return IntensityScaleShiftAugment(
            raw_key, scale=self.scale, shift=self.shift, p=self.augmentation_probability
        )


@attrs.define(kw_only=True)
class NoiseAugmentConfig(AugmentConfig):
    """Random noise on raw through ``skimage.util.random_noise`` (gunpowder's NoiseAugment).

    ``kwargs`` is passed on as in later DaCapo versions' NoiseAugmentConfig: ``mode``
    (default ``"gaussian"``), ``clip`` and the mode's parameters (``mean``, ``var``,
    ``amount``, ...). With ``clip`` (the default), as gunpowder and skimage: raw must lie in
    [-1, 1], and the result is clipped to [-1, 1] when the sample has negative values, else
    to [0, 1].
    """

    kwargs: dict[str, Any] = attrs.field(
        factory=dict,
        metadata={
            "help_text": "Keyword arguments for skimage's random_noise (mode, clip, mean, var, "
            "amount, ...); see https://scikit-image.org/docs/stable/api/skimage.util.html"
            "#skimage.util.random_noise"
        },
    )
    augmentation_probability: float = _probability_field()

    @kwargs.validator
    def _check_kwargs(
        self, attribute: attrs.Attribute[dict[str, Any]], value: dict[str, Any]
    ) -> None:
        for reserved in ("p", "array", "rng", "seed"):
            if reserved in value:
                raise ValueError(
                    f"kwargs may not set {reserved!r}: it is chosen by the trainer "
                    "(use augmentation_probability for the probability)"
                )

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        import gunpowder as gp

        return gp.NoiseAugment(raw_key, p=self.augmentation_probability, **self.kwargs)


#: Every augment config this plugin provides, in the order the docs list them.
AUGMENT_CONFIGS: tuple[type[AugmentConfig], ...] = (
    ElasticAugmentConfig,
    SimpleAugmentConfig,
    GammaAugmentConfig,
    IntensityAugmentConfig,
    IntensityScaleShiftAugmentConfig,
    NoiseAugmentConfig,
)
