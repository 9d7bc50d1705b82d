"""The reference U-Net module (imports torch; loaded only by :meth:`UNetConfig.build`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._unet_shapes import crop_to_factor_size, unet_output_shape

_CONV = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
_CONV_TRANSPOSE = {2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}
_MAX_POOL = {2: torch.nn.MaxPool2d, 3: torch.nn.MaxPool3d}


def _conv_pass(
    dims: int, in_channels: int, out_channels: int, num_convs: int, kernel_size: int
) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i in range(num_convs):
        layers.append(
            _CONV[dims](in_channels if i == 0 else out_channels, out_channels, kernel_size)
        )
        layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _center_crop(tensor: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    dims = len(shape)
    slices = [slice(None)] * (tensor.dim() - dims)
    for size, target in zip(tensor.shape[-dims:], shape, strict=True):
        start = (size - target) // 2
        slices.append(slice(start, start + target))
    return tensor[tuple(slices)]


class UNet(torch.nn.Module):
    """A valid-convolution U-Net; see :class:`~dacapo_trainers.reference.UNetConfig`.

    Convolutions are He-initialised (``kaiming_normal_`` for ReLU) with zero biases.
    Input ``(batch, num_in_channels, *input_shape)``, output
    ``(batch, num_out_channels, *output_shape)``.
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_in_channels: int,
        num_fmaps: int,
        fmap_inc_factor: int,
        downsample_factors: Sequence[Sequence[int]],
        num_convs_per_level: int,
        kernel_size: int,
        num_fmaps_out: int,
        constant_upsample: bool,
    ) -> None:
        super().__init__()
        dims = len(input_shape)
        levels = len(downsample_factors)
        self.dims = dims
        self.downsample_factors = [tuple(f) for f in downsample_factors]
        self.conv_crop = num_convs_per_level * (kernel_size - 1)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.eval_input_shape = self.input_shape
        self.output_shape = unet_output_shape(
            self.input_shape, self.downsample_factors, self.conv_crop
        )
        self.num_in_channels = num_in_channels
        self.num_out_channels = num_fmaps_out
        # crop_factors[level]: product of the downsample factors of this level and below.
        self.crop_factors = [
            tuple(
                math.prod(f[axis] for f in self.downsample_factors[level:]) for axis in range(dims)
            )
            for level in range(levels)
        ]

        def fmaps(level: int) -> int:
            return num_fmaps * fmap_inc_factor**level

        self.down_convs = torch.nn.ModuleList(
            _conv_pass(
                dims,
                num_in_channels if level == 0 else fmaps(level - 1),
                fmaps(level),
                num_convs_per_level,
                kernel_size,
            )
            for level in range(levels)
        )
        self.pools = torch.nn.ModuleList(
            _MAX_POOL[dims](factors, stride=factors) for factors in self.downsample_factors
        )
        self.bottom = _conv_pass(
            dims,
            num_in_channels if levels == 0 else fmaps(levels - 1),
            num_fmaps_out if levels == 0 else fmaps(levels),
            num_convs_per_level,
            kernel_size,
        )
        self.ups = torch.nn.ModuleList(
            torch.nn.Upsample(scale_factor=factors, mode="nearest")
            if constant_upsample
            else _CONV_TRANSPOSE[dims](
                fmaps(level + 1),
                fmaps(level + 1),
                kernel_size=factors,  # type: ignore[arg-type]  # tuples are accepted
                stride=factors,  # type: ignore[arg-type]
            )
            for level, factors in enumerate(self.downsample_factors)
        )
        self.up_convs = torch.nn.ModuleList(
            _conv_pass(
                dims,
                fmaps(level) + fmaps(level + 1),
                num_fmaps_out if level == 0 else fmaps(level),
                num_convs_per_level,
                kernel_size,
            )
            for level in range(levels)
        )
        self._initialize()

    def _initialize(self) -> None:
        # He initialisation suits the ReLU after every convolution; with PyTorch's default
        # (uniform, gain for leaky ReLU) short trainings often stall at the trivial solution.
        for module in self.modules():
            if isinstance(module, (*_CONV.values(), *_CONV_TRANSPOSE.values())):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")  # type: ignore[arg-type]
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the U-Net on a batch ``(batch, channels, *spatial)``."""
        skips = []
        for down_conv, pool in zip(self.down_convs, self.pools, strict=True):
            x = down_conv(x)
            skips.append(x)
            x = pool(x)
        x = self.bottom(x)
        for level in reversed(range(len(self.ups))):
            x = self.ups[level](x)
            target = [
                crop_to_factor_size(size, factor, self.conv_crop)
                for size, factor in zip(x.shape[2:], self.crop_factors[level], strict=True)
            ]
            x = _center_crop(x, target)
            x = torch.cat([_center_crop(skips[level], target), x], dim=1)
            x = self.up_convs[level](x)
        return x
