"""The gunpowder nodes of this plugin, one per module (gunpowder's own layout).

Every node here draws its randomness from ``numpy.random.default_rng`` seeded by the request's
``random_seed`` (plus a per-node salt), and overrides ``set_seeds`` so that it does not reseed
the global ``random``/``numpy.random`` generators as gunpowder's base class would.
"""

from .array_source import ArraySource
from .defect_augment import DefectAugment
from .deform_augment import DeformAugment
from .elastic_augment import ElasticAugment
from .gamma_augment import GammaAugment
from .gaussian_blur_augment import GaussianBlurAugment
from .intensity_augment import IntensityAugment
from .intensity_scale_shift_augment import IntensityScaleShiftAugment
from .masked_random_location import MaskedRandomLocation
from .predictor_targets import PredictorTargets

__all__ = [
    "ArraySource",
    "DefectAugment",
    "DeformAugment",
    "ElasticAugment",
    "GammaAugment",
    "GaussianBlurAugment",
    "IntensityAugment",
    "IntensityScaleShiftAugment",
    "MaskedRandomLocation",
    "PredictorTargets",
]
