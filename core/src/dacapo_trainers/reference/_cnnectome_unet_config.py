"""``CNNectomeUNetConfig``: DaCapo's U-Net, with its names, fields and defaults (no torch here).

The shape arithmetic (:func:`cnnectome_output_shape`) runs in plain Python, so a config is
checked, and its output shape known, without building the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from dacapo_trainers import ArchitectureConfig

if TYPE_CHECKING:
    from dacapo_trainers import Model

_PADDINGS = ("valid", "same")


def _conv_size(size: int, kernel: int, padding: str) -> int:
    pad = kernel // 2 if padding == "same" else 0
    return size + 2 * pad - kernel + 1


def cnnectome_output_shape(
    input_shape: Sequence[int],
    downsample_factors: Sequence[Sequence[int]],
    kernel_size_down: Sequence[Sequence[Sequence[int]]],
    kernel_size_up: Sequence[Sequence[Sequence[int]]],
    padding: str,
    upsample_factors: Sequence[Sequence[int]] = (),
) -> tuple[int, ...]:
    """The output shape of the CNNectome U-Net for ``input_shape``, per axis.

    Follows the network exactly: convolution passes, max-pooling (sizes must divide), then on
    the way up an upsampling, a crop of the upsampled map so that the following convolutions
    leave a multiple of the product of the downsample factors below (translation
    equivariance, as funlib's ``crop_to_factor``), the skip connection centre-cropped to it,
    and a convolution pass; finally each of ``upsample_factors`` multiplies the size and is
    followed by the last up-convolution pass.

    :raises ValueError: naming the axis and level where the size does not fit.
    """
    output = []
    levels = len(downsample_factors)
    for axis, size in enumerate(input_shape):
        current = int(size)
        skips = []
        for level in range(levels + 1):
            for kernel in kernel_size_down[level]:
                current = _conv_size(current, int(kernel[axis]), padding)
            if current < 1:
                raise ValueError(
                    f"axis {axis}: input size {size} is too small, nothing is left after the "
                    f"convolutions of level {level}"
                )
            if level == levels:
                break
            factor = int(downsample_factors[level][axis])
            if current % factor:
                raise ValueError(
                    f"axis {axis}: size {current} after the convolutions of level {level} is not "
                    f"divisible by the downsample factor {factor}"
                )
            skips.append(current)
            current //= factor
        for level in reversed(range(levels)):
            current *= int(downsample_factors[level][axis])
            crop_factor = math.prod(int(f[axis]) for f in downsample_factors[level:])
            conv_crop = sum(int(k[axis]) - 1 for k in kernel_size_up[level])
            target = (current - conv_crop) // crop_factor * crop_factor + conv_crop
            if target != current and target <= conv_crop:
                raise ValueError(
                    f"axis {axis}: input size {size} is too small, the upsampled map of level "
                    f"{level} cannot be cropped for translation equivariance"
                )
            current = target
            if skips[level] < current:
                raise ValueError(
                    f"axis {axis}: the skip connection of level {level} ({skips[level]}) is "
                    f"smaller than the upsampled map ({current})"
                )
            for kernel in kernel_size_up[level]:
                current = _conv_size(current, int(kernel[axis]), padding)
            if current < 1:
                raise ValueError(
                    f"axis {axis}: input size {size} is too small for level {level} on the way up"
                )
        for factors in upsample_factors:
            current *= int(factors[axis])
            # as in DaCapo, the convolutions after an extra upsampling are always valid
            for kernel in kernel_size_up[-1]:
                current = _conv_size(current, int(kernel[axis]), "valid")
            if current < 1:
                raise ValueError(f"axis {axis}: input size {size} is too small for upsampling")
        output.append(current)
    return tuple(output)


@attrs.define(kw_only=True)
class CNNectomeUNetConfig(ArchitectureConfig):
    """DaCapo's CNNectome U-Net: convolution passes, max-pooling, upsampling, skip connections.

    Fields, defaults and layers are DaCapo 0.3.5's: convolution passes of ``kernel_size_down``
    / ``kernel_size_up`` (default two 3-voxel convolutions per level), each followed by an
    optional batch norm and a ReLU; max-pooling by ``downsample_factors``; upsampling by a
    transposed convolution, or nearest-neighbour copies and a 1x1 convolution with
    ``constant_upsample``, followed by a ReLU; optional attention gates on the skip
    connections; ``fmaps_out`` output channels; and ``upsample_factors`` for an output finer
    than the input (:meth:`~dacapo_trainers.reference.CNNectomeUNet.scale` gives the output
    voxel size). ``_eval_shape_increase`` enlarges the input at prediction time
    (``eval_input_shape``).
    """

    #: DaCapo main writes the input shape as ``_input_shape`` (a private attribute there).
    key_aliases: ClassVar[dict[str, str]] = {"_input_shape": "input_shape"}

    input_shape: list[int] = attrs.field(
        metadata={"help_text": "The shape of the data passed into the network during training."}
    )
    fmaps_out: int = attrs.field(
        metadata={"help_text": "The number of channels produced by your architecture."}
    )
    fmaps_in: int = attrs.field(
        metadata={"help_text": "The number of channels expected from the raw data."}
    )
    num_fmaps: int = attrs.field(
        metadata={"help_text": "The number of feature maps in the top level of the UNet."}
    )
    fmap_inc_factor: int = attrs.field(
        metadata={
            "help_text": "The multiplication factor for the number of feature maps for each "
            "level of the UNet."
        }
    )
    downsample_factors: list[list[int]] = attrs.field(
        metadata={
            "help_text": "The factors to downsample the feature maps along each axis per layer."
        }
    )
    kernel_size_down: list[list[list[int]]] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The size of the convolutional kernels used before downsampling in "
            "each layer (default: two 3-voxel kernels per level)."
        },
    )
    kernel_size_up: list[list[list[int]]] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The size of the convolutional kernels used before upsampling in each "
            "layer (default: two 3-voxel kernels per level)."
        },
    )
    _eval_shape_increase: list[int] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The amount by which to increase the input size when just predicting "
            "rather than training."
        },
    )
    upsample_factors: list[list[int]] | None = attrs.field(
        default=None,
        metadata={"help_text": "The amount by which to upsample the output of the UNet."},
    )
    constant_upsample: bool = attrs.field(
        default=True,
        metadata={
            "help_text": "Whether to use a transpose convolution or simply copy voxels to upsample."
        },
    )
    padding: str = attrs.field(
        default="valid",
        metadata={"help_text": "The padding to use in convolution operations: valid or same."},
    )
    use_attention: bool = attrs.field(
        default=False,
        metadata={"help_text": "Whether to use attention blocks in the UNet (2D and 3D)."},
    )
    batch_norm: bool = attrs.field(
        default=False, metadata={"help_text": "Whether to use batch normalization."}
    )

    def __attrs_post_init__(self) -> None:
        dims = len(self.input_shape)
        problem = self._problem(dims)
        if problem is not None:
            raise ValueError(problem)

    def _problem(self, dims: int) -> str | None:
        if dims not in (2, 3):
            return f"input_shape must have 2 or 3 entries, got {list(self.input_shape)}"
        if not self.downsample_factors:
            return "downsample_factors must have at least one level"
        named: list[tuple[str, list[list[int]] | None]] = [
            ("downsample_factors", self.downsample_factors),
            ("upsample_factors", self.upsample_factors),
            (
                "_eval_shape_increase",
                None if self._eval_shape_increase is None else [self._eval_shape_increase],
            ),
        ]
        for name, value in named:
            for entry in value or []:
                if len(entry) != dims:
                    return f"{name} entry {list(entry)} must have {dims} entries, like input_shape"
        for name, value in named[:2]:
            if any(f < 1 for entry in value or [] for f in entry):
                return f"{name} must be positive, got {value}"
        levels = len(self.downsample_factors) + 1
        for name, kernels, expected in (
            ("kernel_size_down", self.kernel_size_down, levels),
            ("kernel_size_up", self.kernel_size_up, levels - 1),
        ):
            if kernels is None:
                continue
            if len(kernels) != expected:
                return f"{name} must list {expected} levels, got {len(kernels)}"
            for level in kernels:
                if not level or any(len(k) != dims or min(k) < 1 for k in level):
                    return f"{name} must list positive kernels of {dims} entries per level"
        if self.padding not in _PADDINGS:
            return f"padding must be 'valid' or 'same', got {self.padding!r}"
        for name in ("fmaps_out", "fmaps_in", "num_fmaps", "fmap_inc_factor"):
            if getattr(self, name) < 1:
                return f"{name} must be at least 1, got {getattr(self, name)}"
        return None

    @property
    def eval_shape_increase(self) -> list[int] | None:
        """DaCapo's ``_eval_shape_increase``."""
        return self._eval_shape_increase

    def kernels_down(self) -> list[list[list[int]]]:
        """``kernel_size_down``, or its default: two 3-voxel kernels per level."""
        if self.kernel_size_down is not None:
            return [[list(k) for k in level] for level in self.kernel_size_down]
        dims = len(self.input_shape)
        return [[[3] * dims, [3] * dims] for _ in range(len(self.downsample_factors) + 1)]

    def kernels_up(self) -> list[list[list[int]]]:
        """``kernel_size_up``, or its default: two 3-voxel kernels per level."""
        if self.kernel_size_up is not None:
            return [[list(k) for k in level] for level in self.kernel_size_up]
        dims = len(self.input_shape)
        return [[[3] * dims, [3] * dims] for _ in range(len(self.downsample_factors))]

    def output_shape(self, input_shape: Sequence[int] | None = None) -> tuple[int, ...]:
        """The output shape for ``input_shape`` (default: this config's), without torch.

        :raises ValueError: the input shape does not fit the network (which axis and why).
        """
        shape = list(self.input_shape if input_shape is None else input_shape)
        try:
            return cnnectome_output_shape(
                shape,
                self.downsample_factors,
                self.kernels_down(),
                self.kernels_up(),
                self.padding,
                self.upsample_factors or [],
            )
        except ValueError as error:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: input_shape {shape} does not fit the "
                f"network ({error})"
            ) from None

    def build(self) -> Model:
        """Build the network (imports torch).

        :raises ValueError: the input shape does not fit the network.
        """
        self.output_shape()
        if self._eval_shape_increase is not None:
            eval_shape = [
                i + e for i, e in zip(self.input_shape, self._eval_shape_increase, strict=True)
            ]
            self.output_shape(eval_shape)
        from ._cnnectome_unet import CNNectomeUNet

        model: Any = CNNectomeUNet(self)
        return model  # type: ignore[no-any-return]
