"""Shape arithmetic of the reference U-Net, in plain Python (no torch).

The U-Net uses *valid* convolutions, so every convolution pass shrinks a feature map by
``num_convs_per_level * (kernel_size - 1)`` voxels per axis. Each axis is independent, so the
arithmetic runs per axis; :func:`unet_output_shape` and the torch module share
:func:`crop_to_factor_size` so that the computed and the real shapes cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class UNetShapeError(ValueError):
    """An input size does not fit the U-Net along one axis; the message says where and why."""


def crop_to_factor_size(size: int, factor: int, conv_crop: int) -> int:
    """The size an upsampled feature map is cropped to before its convolution pass.

    As funlib's and DaCapo's ``crop_to_factor``: after the following convolutions (which remove
    ``conv_crop`` voxels) the size must be a multiple of ``factor``, the product of the
    downsample factors below this level, so that the network stays translation-equivariant
    with that stride. Returns ``size`` unchanged when it already fits.
    """
    return ((size - conv_crop) // factor) * factor + conv_crop


def axis_output_size(size: int, factors: Sequence[int], conv_crop: int) -> int:
    """Output size of the U-Net along one axis, or :class:`UNetShapeError` if ``size`` does not fit.

    :param size: the input size along the axis, in voxels.
    :param factors: the downsample factor of each level along the axis, top level first.
    :param conv_crop: voxels one convolution pass removes: ``num_convs * (kernel_size - 1)``.
    """
    skips: list[int] = []
    current = size
    for level, factor in enumerate(factors):
        current -= conv_crop
        if current < 1:
            raise UNetShapeError(
                f"size {size} is too small: nothing is left after the convolutions of level {level}"
            )
        if current % factor:
            raise UNetShapeError(
                f"size {current} after the convolutions of level {level} is not divisible by "
                f"the downsample factor {factor}"
            )
        skips.append(current)
        current //= factor
    current -= conv_crop
    if current < 1:
        raise UNetShapeError(
            f"size {size} is too small: nothing is left after the convolutions of the bottom level"
        )
    for level in reversed(range(len(factors))):
        current *= factors[level]
        target = crop_to_factor_size(current, math.prod(factors[level:]), conv_crop)
        if target <= conv_crop:
            raise UNetShapeError(
                f"size {size} is too small: the upsampled feature map of level {level} cannot be "
                "cropped for translation equivariance"
            )
        current = target - conv_crop
        # The skip connection is centre-cropped to the upsampled map; it is always larger.
        assert skips[level] >= target
    return current


def unet_output_shape(
    input_shape: Sequence[int],
    downsample_factors: Sequence[Sequence[int]],
    conv_crop: int,
) -> tuple[int, ...]:
    """Output shape of the U-Net for ``input_shape`` (spatial axes only).

    Raises :class:`UNetShapeError` naming the first axis that does not fit.
    """
    output = []
    for axis, size in enumerate(input_shape):
        factors = [level[axis] for level in downsample_factors]
        try:
            output.append(axis_output_size(size, factors, conv_crop))
        except UNetShapeError as error:
            raise UNetShapeError(f"axis {axis}: {error}") from None
    return tuple(output)


def nearest_valid_sizes(
    size: int, factors: Sequence[int], conv_crop: int
) -> tuple[int | None, int | None]:
    """The largest valid input size <= ``size`` and the smallest valid input size >= ``size``.

    Either is None when there is none (the smaller one, for a too small ``size``). Valid sizes
    repeat with the period ``prod(factors)``, so the upward search is short.
    """

    def valid(candidate: int) -> bool:
        try:
            axis_output_size(candidate, factors, conv_crop)
        except UNetShapeError:
            return False
        return True

    smaller = next((s for s in range(size, 0, -1) if valid(s)), None)
    limit = (
        size + 2 * math.prod(factors) * (len(factors) + 1) + 2 * conv_crop * (2 * len(factors) + 1)
    )
    larger = next((s for s in range(max(size, 1), limit + 1) if valid(s)), None)
    return smaller, larger
