"""A task's prediction head on top of an architecture (imports torch)."""

from __future__ import annotations

from typing import Any

import torch

_CONV = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}


class HeadModel(torch.nn.Module):
    """An architecture followed by a 1x1 convolution to the task's channels (and an activation).

    As DaCapo's ``Model``: it exposes the architecture's ``input_shape``, ``output_shape``,
    ``eval_input_shape`` and ``num_in_channels``; ``num_out_channels`` is the task's.
    """

    def __init__(
        self,
        architecture: Any,
        num_out_channels: int,
        activation: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        dims = len(architecture.input_shape)
        if dims not in _CONV:
            raise ValueError(
                f"the architecture has {dims} spatial dimensions; only 2 and 3 are supported"
            )
        self.architecture = architecture
        self.head = _CONV[dims](int(architecture.num_out_channels), num_out_channels, 1)
        self.activation = activation if activation is not None else torch.nn.Identity()
        self.input_shape = tuple(architecture.input_shape)
        self.output_shape = tuple(architecture.output_shape)
        self.eval_input_shape = tuple(
            getattr(architecture, "eval_input_shape", architecture.input_shape)
        )
        self.num_in_channels = int(architecture.num_in_channels)
        self.num_out_channels = num_out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Architecture, head, activation."""
        return self.activation(self.head(self.architecture(x)))  # type: ignore[no-any-return]
