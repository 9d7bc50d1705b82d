"""The augments electron-microscopy users add: section defects, gunpowder 1.4's faster
elastic deformation, and a Gaussian blur.

Field names follow the DaCapo fork that first offered ``DefectAugmentConfig`` and
``DeformAugmentConfig`` (its JSON is accepted), plus ``augmentation_probability`` as every
augment here. Lengths in world units (nm) are as gunpowder's nodes take them. Randomness: the
defect and deform augments are gunpowder's nodes, which draw from the global generators that
gunpowder reseeds from each request's seed; the blur draws from the request's seed too. So a
resumed run sees the batches an uninterrupted run sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._augment_configs import AugmentConfig, _as_pair, _check_interval, _probability_field

if TYPE_CHECKING:
    import gunpowder as gp


def _check_unit(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1], got {value}")


def _check_positive_list(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if len(value) == 0 or any(not v > 0 for v in value):
        raise ValueError(f"{attribute.name} must list positive numbers, got {list(value)}")


@attrs.define(kw_only=True)
class DefectAugmentConfig(AugmentConfig):
    """Section defects of serial-section EM in raw (gunpowder's DefectAugment).

    Each section (a slice along ``axis``) independently becomes missing (all 0), low-contrast
    (its deviations from its mean scaled by ``contrast_scale``), or deformed (a fold: contents
    pushed towards a random line that is drawn as 0), with the given probabilities. Raw must be
    3D without channels; a deformed section is clipped to [0, 1], so use ``prob_deform`` with
    raw normalized to [0, 1]. gunpowder's blending of artifacts needs a separate data source of
    artifacts and their alpha masks, which this config does not offer.
    """

    prob_missing: float = attrs.field(
        default=0.05,
        validator=_check_unit,
        metadata={"help_text": "Probability of a section being missing (set to 0)."},
    )
    prob_low_contrast: float = attrs.field(
        default=0.05,
        validator=_check_unit,
        metadata={"help_text": "Probability of a section having low contrast."},
    )
    prob_deform: float = attrs.field(
        default=0.0,
        validator=_check_unit,
        metadata={
            "help_text": "Probability of a section being deformed by a fold (raw in [0, 1])."
        },
    )
    contrast_scale: float = attrs.field(
        default=0.1,
        validator=_check_unit,
        metadata={"help_text": "Factor of a low-contrast section's deviations from its mean."},
    )
    deformation_strength: int = attrs.field(
        default=20,
        metadata={"help_text": "Strength of a fold, in voxels."},
    )
    axis: int = attrs.field(
        default=0, metadata={"help_text": "The axis sections are cut along (0: z)."}
    )
    augmentation_probability: float = _probability_field()

    @deformation_strength.validator
    def _check_strength(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"deformation_strength must be at least 1, got {value}")

    @axis.validator
    def _check_axis(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2 (raw is 3D), got {value}")

    def __attrs_post_init__(self) -> None:
        total = self.prob_missing + self.prob_low_contrast + self.prob_deform
        if total > 1.0:
            raise ValueError(
                "prob_missing + prob_low_contrast + prob_deform must be at most 1 (each "
                f"section gets one defect at most), got {total:g}"
            )

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        from .nodes import DefectAugment

        return DefectAugment(
            raw_key,
            prob_missing=self.prob_missing,
            prob_low_contrast=self.prob_low_contrast,
            prob_artifact=0.0,
            prob_deform=self.prob_deform,
            contrast_scale=self.contrast_scale,
            deformation_strength=self.deformation_strength,
            axis=self.axis,
            p=self.augmentation_probability,
        )


@attrs.define(kw_only=True)
class DeformAugmentConfig(AugmentConfig):
    """Elastic deformation, scaling and rotation of raw, gt and mask alike (gunpowder's
    DeformAugment, faster than ElasticAugment).

    Labels (gt, mask) are moved with nearest-neighbour interpolation, raw with linear
    interpolation. ``rotation_axes`` restricts rotations to a plane (e.g. ``[1, 2]``: within
    z sections of anisotropic EM); without it, 3D data is rotated uniformly on the sphere.
    """

    control_point_spacing: list[int] = attrs.field(
        validator=_check_positive_list,
        metadata={
            "help_text": "Distance between control points of the deformation, in world units "
            "per dimension."
        },
    )
    jitter_sigma: list[float] = attrs.field(
        metadata={
            "help_text": "Standard deviation of the control points' displacement, in world "
            "units per dimension."
        },
    )
    scale_interval: tuple[float, float] = attrs.field(
        default=(1.0, 1.0),
        converter=_as_pair,
        validator=_check_interval,
        metadata={"help_text": "Interval to draw a zoom factor from (1: no zoom)."},
    )
    rotate: bool = attrs.field(
        default=True, metadata={"help_text": "Whether to rotate by a random angle."}
    )
    rotation_axes: list[int] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The two spatial axes whose plane rotations stay in (e.g. [1, 2]); "
            "default: all spatial axes."
        },
    )
    subsample: int = attrs.field(
        default=1,
        metadata={
            "help_text": "Compute the deformation on a grid coarser by this factor and "
            "interpolate it (4 is usually invisible and much faster)."
        },
    )
    spatial_dims: int = attrs.field(
        default=3, metadata={"help_text": "The number of spatial dimensions (2 or 3)."}
    )
    augmentation_probability: float = _probability_field()

    @jitter_sigma.validator
    def _check_jitter(self, attribute: attrs.Attribute[list[float]], value: list[float]) -> None:
        if len(value) != len(self.control_point_spacing) or any(v < 0 for v in value):
            raise ValueError(
                "jitter_sigma must list one non-negative number per entry of "
                f"control_point_spacing ({len(self.control_point_spacing)}), got {list(value)}"
            )

    @scale_interval.validator
    def _check_scale(self, attribute: Any, value: tuple[float, float]) -> None:
        if value[0] <= 0:
            raise ValueError(f"scale_interval must be positive, got {value}")

    @subsample.validator
    def _check_subsample(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"subsample must be at least 1, got {value}")

    @spatial_dims.validator
    def _check_dims(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {value}")
        if len(self.control_point_spacing) != value:
            raise ValueError(
                f"control_point_spacing must have spatial_dims ({value}) entries, got "
                f"{list(self.control_point_spacing)}"
            )

    @rotation_axes.validator
    def _check_rotation_axes(self, attribute: Any, value: list[int] | None) -> None:
        if value is None:
            return
        if len(value) != 2 or len(set(value)) != 2 or not all(0 <= a < 3 for a in value):
            raise ValueError(
                f"rotation_axes must be two different spatial axes among 0, 1, 2, got {value}"
            )

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        import gunpowder as gp

        from .nodes import DeformAugment

        return DeformAugment(
            control_point_spacing=gp.Coordinate(self.control_point_spacing),
            jitter_sigma=list(self.jitter_sigma),
            scale_interval=self.scale_interval,
            rotate=self.rotate,
            subsample=self.subsample,
            spatial_dims=self.spatial_dims,
            p=self.augmentation_probability,
            rotation_axes=self.rotation_axes,
        )


@attrs.define(kw_only=True)
class GaussianBlurAugmentConfig(AugmentConfig):
    """A Gaussian blur of raw, with a sigma drawn per sample (out-of-focus, thick sections).

    gunpowder has no blur node; this one filters with ``scipy.ndimage.gaussian_filter``. The
    sigma is in world units (nm), divided by each axis' voxel size.
    """

    sigma_range: tuple[float, float] = attrs.field(
        converter=_as_pair,
        validator=_check_interval,
        metadata={"help_text": "Range (min, max) to draw the blur's sigma from, in world units."},
    )
    augmentation_probability: float = _probability_field()

    @sigma_range.validator
    def _check_sigma(self, attribute: Any, value: tuple[float, float]) -> None:
        if value[0] < 0:
            raise ValueError(f"sigma_range must not be negative, got {value}")

    def node(self, raw_key: gp.ArrayKey, gt_key: gp.ArrayKey, mask_key: gp.ArrayKey) -> Any:
        from .nodes import GaussianBlurAugment

        return GaussianBlurAugment(raw_key, *self.sigma_range, p=self.augmentation_probability)


#: The EM augment configs, in the order the docs list them.
EM_AUGMENT_CONFIGS: tuple[type[AugmentConfig], ...] = (
    DefectAugmentConfig,
    DeformAugmentConfig,
    GaussianBlurAugmentConfig,
)
