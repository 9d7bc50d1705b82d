"""``UNetConfig``: the reference architecture, a U-Net in the style of DaCapo's CNNectomeUNet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from dacapo_trainers import ArchitectureConfig

from ._unet_shapes import UNetShapeError, nearest_valid_sizes, unet_output_shape

if TYPE_CHECKING:
    from dacapo_trainers import Model


def _check_positive(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.define(kw_only=True)
class UNetConfig(ArchitectureConfig):
    """A U-Net with valid convolutions, as DaCapo's ``CNNectomeUNetConfig``.

    Each level runs ``num_convs_per_level`` convolutions (each followed by a ReLU), then
    max-pools by its downsample factor. On the way up, each level upsamples (a transposed
    convolution, or nearest-neighbour upsampling with ``constant_upsample``), crops the result
    so that the network stays translation-equivariant (funlib's ``crop_to_factor``),
    concatenates the centre-cropped skip connection and runs another convolution pass.

    The output shape follows exactly from that arithmetic: with the defaults (8 feature maps,
    factor 2, two downsamplings by 2) an input of 84³ voxels gives an output of 44³.
    :meth:`output_shape` computes it without torch.
    """

    input_shape: list[int] = attrs.field(
        metadata={
            "help_text": "The spatial shape of one training input, in voxels: 3 entries for "
            "3D data, 2 for 2D. Every pooled size must be divisible by its downsample factor."
        }
    )
    num_in_channels: int = attrs.field(
        default=1,
        validator=_check_positive,
        metadata={"help_text": "The number of channels of the raw input."},
    )
    num_fmaps: int = attrs.field(
        default=8,
        validator=_check_positive,
        metadata={"help_text": "The number of feature maps of the top level."},
    )
    fmap_inc_factor: int = attrs.field(
        default=2,
        validator=_check_positive,
        metadata={"help_text": "The factor the number of feature maps grows by per level down."},
    )
    downsample_factors: list[list[int]] = attrs.field(
        default=attrs.Factory(lambda: [[2, 2, 2], [2, 2, 2]]),
        metadata={
            "help_text": "The max-pooling factor of each level, top level first; one entry per "
            "spatial axis. The number of entries is the number of downsamplings."
        },
    )
    num_convs_per_level: int = attrs.field(
        default=2,
        validator=_check_positive,
        metadata={"help_text": "The number of convolutions in each convolution pass."},
    )
    kernel_size: int = attrs.field(
        default=3,
        validator=_check_positive,
        metadata={"help_text": "The edge length of every convolution kernel, in voxels."},
    )
    num_fmaps_out: int | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The number of feature maps the U-Net outputs (a task adds its own "
            "head on top). Defaults to num_fmaps."
        },
    )
    constant_upsample: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Upsample by repeating voxels (nearest neighbour) instead of a "
            "learned transposed convolution."
        },
    )

    @input_shape.validator
    def _check_input_shape(self, attribute: attrs.Attribute[list[int]], value: list[int]) -> None:
        if len(value) not in (2, 3):
            raise ValueError(f"input_shape must have 2 or 3 entries, got {list(value)}")
        if any(int(v) < 1 for v in value):
            raise ValueError(f"input_shape entries must be positive, got {list(value)}")

    @downsample_factors.validator
    def _check_downsample_factors(
        self, attribute: attrs.Attribute[list[list[int]]], value: list[list[int]]
    ) -> None:
        dims = len(self.input_shape)
        for level, factors in enumerate(value):
            if len(factors) != dims:
                raise ValueError(
                    f"downsample_factors[{level}] = {list(factors)} has {len(factors)} entries, "
                    f"but input_shape {list(self.input_shape)} has {dims}"
                )
            if any(int(f) < 1 for f in factors):
                raise ValueError(f"downsample_factors[{level}] = {list(factors)} must be positive")

    @num_fmaps_out.validator
    def _check_num_fmaps_out(
        self, attribute: attrs.Attribute[int | None], value: int | None
    ) -> None:
        if value is not None and value < 1:
            raise ValueError(f"num_fmaps_out must be at least 1, got {value}")

    @property
    def dims(self) -> int:
        """The number of spatial dimensions (2 or 3)."""
        return len(self.input_shape)

    @property
    def conv_crop(self) -> int:
        """Voxels one convolution pass removes along each axis."""
        return self.num_convs_per_level * (self.kernel_size - 1)

    def output_shape(self, input_shape: list[int] | None = None) -> tuple[int, ...]:
        """The output shape for ``input_shape`` (default: this config's), without torch.

        :raises ValueError: if the input shape does not fit the downsampling; the message
            names the axis and the nearest valid input shapes.
        """
        shape = [int(s) for s in (self.input_shape if input_shape is None else input_shape)]
        factors = [[int(f) for f in level] for level in self.downsample_factors]
        try:
            return unet_output_shape(shape, factors, self.conv_crop)
        except UNetShapeError as error:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: input_shape {shape} does not fit "
                f"downsample_factors {factors} with {self.num_convs_per_level} convolutions of "
                f"size {self.kernel_size} per level ({error}). "
                f"{self._nearest_valid_message(shape, factors)}"
            ) from None

    def _nearest_valid_message(self, shape: list[int], factors: list[list[int]]) -> str:
        smaller, larger = [], []
        for axis, size in enumerate(shape):
            low, high = nearest_valid_sizes(size, [f[axis] for f in factors], self.conv_crop)
            smaller.append(low)
            larger.append(high)
        options = []
        if all(s is not None for s in smaller):
            options.append(f"{smaller} (smaller)")
        if all(s is not None for s in larger):
            options.append(f"{larger} (larger)")
        if not options:
            return "No valid input shape was found near it."
        return "Nearest valid input shapes: " + " or ".join(options) + "."

    def build(self) -> Model:
        """Build the U-Net: a ``torch.nn.Module`` with the :class:`~dacapo_trainers.Model` shapes.

        :raises ValueError: if :attr:`input_shape` does not fit the downsampling.
        """
        self.output_shape()  # validate before importing torch
        from ._unet import UNet

        return UNet(
            input_shape=[int(s) for s in self.input_shape],
            num_in_channels=self.num_in_channels,
            num_fmaps=self.num_fmaps,
            fmap_inc_factor=self.fmap_inc_factor,
            downsample_factors=[[int(f) for f in level] for level in self.downsample_factors],
            num_convs_per_level=self.num_convs_per_level,
            kernel_size=self.kernel_size,
            num_fmaps_out=self.num_fmaps if self.num_fmaps_out is None else self.num_fmaps_out,
            constant_upsample=self.constant_upsample,
        )
