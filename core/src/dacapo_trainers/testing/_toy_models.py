"""Toy models for trainer tests: the smallest models a trainer trains (imports torch).

They satisfy :class:`~dacapo_trainers.Model` (and :class:`~dacapo_trainers.ScalingModel` for the
upsampling one) and record the inputs of each forward, so a test sees what the trainer fed.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch


class ToyModel(torch.nn.Module):
    """``convolutions`` valid 3³ convolutions (ReLU between): input 12³ gives output 8³ with
    the default two; ``inputs`` holds a copy of each forward's input."""

    num_in_channels = 1

    def __init__(
        self,
        num_out_channels: int = 1,
        *,
        input_shape: tuple[int, int, int] = (12, 12, 12),
        convolutions: int = 2,
        hidden_channels: int = 4,
    ) -> None:
        super().__init__()
        self.num_out_channels = num_out_channels
        self.input_shape = input_shape
        self.eval_input_shape = input_shape
        self.output_shape = tuple(s - 2 * convolutions for s in input_shape)
        channels = [1, *[hidden_channels] * (convolutions - 1), num_out_channels]
        layers: list[torch.nn.Module] = []
        for index, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
            layers += [torch.nn.ReLU()] if index else []
            layers.append(torch.nn.Conv3d(c_in, c_out, 3))
        self.net = torch.nn.Sequential(*layers)
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.net(x)  # type: ignore[no-any-return]


class ToyUpsamplingModel(torch.nn.Module):
    """A valid 3³ convolution then x2 upsampling: raw 10³ at 4 nm gives a 16³ prediction at
    2 nm; ``scale`` halves the voxel size, as DaCapo's upsampling models do."""

    input_shape = (10, 10, 10)
    output_shape = (16, 16, 16)
    eval_input_shape = (10, 10, 10)
    num_in_channels = 1

    def __init__(self, num_out_channels: int = 1) -> None:
        super().__init__()
        self.num_out_channels = num_out_channels
        self.conv = torch.nn.Conv3d(1, num_out_channels, 3)
        self.up = torch.nn.Upsample(scale_factor=2, mode="nearest")
        self.inputs: list[torch.Tensor] = []

    def scale(self, voxel_size: Any) -> Any:
        """The output voxel size: half of ``voxel_size`` (a tuple of ints)."""
        return tuple(int(v) // 2 for v in voxel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.up(self.conv(x))  # type: ignore[no-any-return]
