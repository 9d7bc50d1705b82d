"""DaCapo's dataset and datasplit configs: ``RawGTDatasetConfig``, ``TrainValidateDataSplitConfig``.

Names, fields and defaults are DaCapo 0.3.5's, so its stored configs load unchanged.
"""

from __future__ import annotations

import attrs

from dacapo_trainers import Array, ArrayConfig, DatasetConfig, DataSplitConfig

from ._zarr_dataset import ZarrDataset


@attrs.define(kw_only=True)
class RawGTDatasetConfig(DatasetConfig):
    """A dataset of raw, ground truth and optional mask arrays, each an array config.

    The arrays may live anywhere and be transformed (intensities, binarize, crop). A mask is
    nonzero where the gt is valid.
    """

    weight: int = attrs.field(
        default=1,
        metadata={"help_text": "The relative sampling weight of this dataset during training."},
    )
    raw_config: ArrayConfig | None = attrs.field(
        default=None,
        metadata={"help_text": "Config for the raw data associated with this dataset."},
    )
    gt_config: ArrayConfig | None = attrs.field(
        default=None,
        metadata={"help_text": "Config for the ground truth data associated with this dataset."},
    )
    mask_config: ArrayConfig | None = attrs.field(
        default=None,
        metadata={
            "help_text": "An optional mask: nonzero where the ground truth is valid (the loss "
            "is zero elsewhere)."
        },
    )
    sample_points: list[list[float]] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "An optional list of points (world units) around which training "
            "samples are extracted."
        },
    )

    @weight.validator
    def _check_weight(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"weight must not be negative, got {value}")

    @raw_config.validator
    def _check_raw(self, attribute: attrs.Attribute[ArrayConfig | None], value: object) -> None:
        if value is None:
            raise ValueError("raw_config is required: the raw array of this dataset")

    def build(self) -> ZarrDataset:
        """Open the arrays (lazily).

        :raises ValueError: an array cannot be opened, or the sample points do not match
            the raw array's dimensions.
        """
        assert self.raw_config is not None  # the validator refuses None
        raw = self._open("raw_config", self.raw_config)
        dims = len(raw.voxel_size)
        for point in self.sample_points or ():
            if len(point) != dims:
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: sample point {list(point)} has "
                    f"{len(point)} coordinates, but the raw array has {dims} spatial axes"
                )
        return ZarrDataset(
            name=self.name,
            raw=raw,
            gt=None if self.gt_config is None else self._open("gt_config", self.gt_config),
            mask=None if self.mask_config is None else self._open("mask_config", self.mask_config),
            weight=float(self.weight),
            sample_points=self.sample_points,
        )

    def _open(self, field: str, config: ArrayConfig) -> Array:
        try:
            return config.build()
        except ValueError as error:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {field}: {error}") from error


@attrs.define(kw_only=True)
class TrainValidateDataSplitConfig(DataSplitConfig):
    """Training datasets and validation datasets (DaCapo's ``TrainValidateDataSplitConfig``).

    The run trains on ``train_configs`` and computes a validation loss on ``validate_configs``
    every ``validation_interval`` iterations.
    """

    train_configs: list[DatasetConfig] = attrs.field(
        metadata={"help_text": "All of the datasets to use for training."}
    )
    validate_configs: list[DatasetConfig] = attrs.field(
        metadata={"help_text": "All of the datasets to use for validation."}
    )

    def train_dataset_configs(self) -> list[DatasetConfig]:
        """``train_configs``."""
        return list(self.train_configs)

    def validate_dataset_configs(self) -> list[DatasetConfig]:
        """``validate_configs``."""
        return list(self.validate_configs)
