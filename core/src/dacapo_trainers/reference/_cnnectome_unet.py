"""The CNNectome U-Net module (imports torch; loaded by ``CNNectomeUNetConfig.build()``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ._unet import _CONV, _CONV_TRANSPOSE, _MAX_POOL, _center_crop

if TYPE_CHECKING:
    from ._cnnectome_unet_config import CNNectomeUNetConfig

_BATCH_NORM = {2: torch.nn.BatchNorm2d, 3: torch.nn.BatchNorm3d}


def _conv_pass(
    in_channels: int,
    out_channels: int,
    kernels: Sequence[Sequence[int]],
    *,
    activation: type[torch.nn.Module] | None,
    padding: str,
    batch_norm: bool,
) -> torch.nn.Sequential:
    """Convolutions (each with optional batch norm and activation), as DaCapo's ConvPass."""
    layers: list[torch.nn.Module] = []
    for kernel in kernels:
        dims = len(kernel)
        pad = tuple(k // 2 for k in kernel) if padding == "same" else 0
        conv: Any = _CONV[dims]  # kernel and padding tuples are accepted
        layers.append(conv(in_channels, out_channels, tuple(kernel), padding=pad))
        if batch_norm:
            layers.append(_BATCH_NORM[dims](out_channels))
        if activation is not None:
            layers.append(activation())
        in_channels = out_channels
    return torch.nn.Sequential(*layers)


class _Upsample(torch.nn.Module):
    """Upsampling (transposed convolution, or copies and a 1x1 convolution), then a ReLU.

    With ``crop_factor``, the result is cropped so that after convolutions removing
    ``conv_crop`` voxels its size is a multiple of ``crop_factor`` (translation equivariance).
    """

    def __init__(
        self,
        factor: Sequence[int],
        *,
        constant: bool,
        in_channels: int,
        out_channels: int,
        crop_factor: Sequence[int] | None = None,
        conv_crop: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        dims = len(factor)
        layers: list[torch.nn.Module]
        if constant:
            layers = [
                torch.nn.Upsample(scale_factor=tuple(float(f) for f in factor), mode="nearest"),
                _CONV[dims](in_channels, out_channels, 1),
            ]
        else:
            kernel = tuple(int(f) for f in factor)
            transposed: Any = _CONV_TRANSPOSE[dims]  # kernel and stride tuples are accepted
            layers = [transposed(in_channels, out_channels, kernel, stride=kernel)]
        self.up = torch.nn.Sequential(*layers, torch.nn.ReLU())
        self.crop_factor = None if crop_factor is None else tuple(crop_factor)
        self.conv_crop = None if conv_crop is None else tuple(conv_crop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.crop_factor is None or self.conv_crop is None:
            return x
        dims = len(self.crop_factor)
        target = [
            (size - crop) // factor * factor + crop
            for size, crop, factor in zip(
                x.shape[-dims:], self.conv_crop, self.crop_factor, strict=True
            )
        ]
        return _center_crop(x, target)


class _AttentionGate(torch.nn.Module):
    """An attention gate on a skip connection (DaCapo's AttentionBlockModule)."""

    def __init__(
        self,
        gate_channels: int,
        skip_channels: int,
        inner_channels: int,
        factor: Sequence[int],
        batch_norm: bool,
    ) -> None:
        super().__init__()
        dims = len(factor)
        ones = [[1] * dims, [1] * dims]
        self.gate = _conv_pass(
            gate_channels,
            inner_channels,
            ones,
            activation=None,
            padding="same",
            batch_norm=batch_norm,
        )
        self.skip = torch.nn.Sequential(
            _conv_pass(
                skip_channels,
                inner_channels,
                ones,
                activation=None,
                padding="same",
                batch_norm=batch_norm,
            ),
            _MAX_POOL[dims](tuple(factor), stride=tuple(factor)),
        )
        self.psi = _conv_pass(
            inner_channels,
            1,
            ones,
            activation=torch.nn.Sigmoid,
            padding="same",
            batch_norm=batch_norm,
        )
        self.up = torch.nn.Upsample(
            scale_factor=tuple(float(f) for f in factor),
            mode="bilinear" if dims == 2 else "trilinear",
            align_corners=True,
        )

    def forward(self, gate: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        g = self.gate(gate)
        s = self.skip(skip)
        padding: list[int] = []
        for axis in reversed(range(2, g.dim())):  # last axis first, as F.pad wants
            missing = s.shape[axis] - g.shape[axis]
            padding += [missing - missing // 2, missing // 2]
        g = torch.nn.functional.pad(g, padding)
        return skip * self.up(self.psi(torch.relu(g + s)))


class CNNectomeUNet(torch.nn.Module):
    """DaCapo's CNNectome U-Net; see :class:`~dacapo_trainers.reference.CNNectomeUNetConfig`.

    Input ``(batch, fmaps_in, *input_shape)``, output ``(batch, fmaps_out, *output_shape)``.
    Convolutions are He-initialised (``kaiming_normal_``), as DaCapo's Model does.
    """

    def __init__(self, config: CNNectomeUNetConfig) -> None:
        super().__init__()
        factors = [tuple(int(f) for f in level) for level in config.downsample_factors]
        kernels_down, kernels_up = config.kernels_down(), config.kernels_up()
        levels = len(factors) + 1
        dims = len(config.input_shape)
        self.input_shape = tuple(int(s) for s in config.input_shape)
        increase = config.eval_shape_increase or [0] * dims
        self.eval_input_shape = tuple(
            s + int(e) for s, e in zip(self.input_shape, increase, strict=True)
        )
        self.output_shape = config.output_shape()
        self.num_in_channels = int(config.fmaps_in)
        self.num_out_channels = int(config.fmaps_out)
        self.upsample_factors = [tuple(int(f) for f in u) for u in config.upsample_factors or []]
        relu = torch.nn.ReLU
        common = {"padding": config.padding, "batch_norm": config.batch_norm}

        def fmaps(level: int) -> int:
            return int(config.num_fmaps) * int(config.fmap_inc_factor) ** level

        # DaCapo contracts the channels of every upsampling except the top one's.
        up_channels = [fmaps(level + 1) if level == 0 else fmaps(level) for level in range(levels)]
        self.down = torch.nn.ModuleList(
            _conv_pass(
                self.num_in_channels if level == 0 else fmaps(level - 1),
                fmaps(level),
                kernels_down[level],
                activation=relu,
                **common,  # type: ignore[arg-type]
            )
            for level in range(levels)
        )
        self.pools = torch.nn.ModuleList(_MAX_POOL[dims](f, stride=f) for f in factors)
        self.ups = torch.nn.ModuleList(
            _Upsample(
                factors[level],
                constant=config.constant_upsample,
                in_channels=fmaps(level + 1),
                out_channels=up_channels[level],
                crop_factor=[math.prod(f[axis] for f in factors[level:]) for axis in range(dims)],
                conv_crop=[sum(k[axis] - 1 for k in kernels_up[level]) for axis in range(dims)],
            )
            for level in range(levels - 1)
        )
        self.gates = (
            torch.nn.ModuleList(
                _AttentionGate(
                    fmaps(level + 1),
                    fmaps(level),
                    self.num_out_channels if level == 0 else up_channels[level],
                    factors[level],
                    config.batch_norm,
                )
                for level in range(levels - 1)
            )
            if config.use_attention
            else None
        )
        self.up_convs = torch.nn.ModuleList(
            _conv_pass(
                fmaps(level) + up_channels[level],
                self.num_out_channels if level == 0 else fmaps(level),
                kernels_up[level],
                activation=relu,
                **common,  # type: ignore[arg-type]
            )
            for level in range(levels - 1)
        )
        self.extra_ups = torch.nn.ModuleList(
            torch.nn.Sequential(
                _Upsample(
                    factor,
                    constant=True,
                    in_channels=self.num_out_channels,
                    out_channels=self.num_out_channels,
                ),
                _conv_pass(
                    self.num_out_channels,
                    self.num_out_channels,
                    kernels_up[-1],
                    activation=relu,
                    padding="valid",
                    batch_norm=config.batch_norm,
                ),
            )
            for factor in self.upsample_factors
        )
        for module in self.modules():
            if isinstance(module, (*_CONV.values(), *_CONV_TRANSPOSE.values())):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")  # type: ignore[arg-type]

    def dacapo_state_dict_names(self) -> dict[str, str]:
        """``{state-dict key: DaCapo 0.3.5's key}`` for DaCapo's weights files."""
        from ._cnnectome_names import dacapo_keys

        return dacapo_keys(self.state_dict(), extra_upsampling=bool(self.upsample_factors))

    def scale(self, voxel_size: Sequence[int]) -> tuple[int, ...]:
        """The voxel size of the output for an input of ``voxel_size`` (DaCapo's ``scale``)."""
        scaled = [int(v) for v in voxel_size]
        for factor in self.upsample_factors:
            scaled = [v // int(f) for v, f in zip(scaled, factor, strict=True)]
        return tuple(scaled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the U-Net on a batch ``(batch, channels, *spatial)``."""
        skips = []
        for level, pool in enumerate(self.pools):
            x = self.down[level](x)
            skips.append(x)
            x = pool(x)
        x = self.down[-1](x)
        for level in reversed(range(len(self.ups))):
            skip = skips[level]
            if self.gates is not None:
                skip = self.gates[level](x, skip)
            up = self.ups[level](x)
            x = torch.cat([_center_crop(skip, up.shape[2:]), up], dim=1)
            x = self.up_convs[level](x)
        for extra in self.extra_ups:
            x = extra(x)
        return x
