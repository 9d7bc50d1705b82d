"""A task's prediction head on top of an architecture (imports torch)."""

from __future__ import annotations

from typing import Any

import torch

from dacapo_trainers import output_voxel_size

_CONV = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}


class HeadModel(torch.nn.Module):
    """An architecture followed by a convolution to the task's channels (and an activation;
    in eval mode also ``eval_activation``, as DaCapo's ``Model``).

    As DaCapo's ``Model``: it exposes the architecture's ``input_shape``,
    ``eval_input_shape``, ``num_in_channels`` and ``scale``; ``num_out_channels`` is the
    task's, and ``output_shape`` the architecture's less what a head kernel larger than 1
    (valid convolution) removes.
    """

    def __init__(
        self,
        architecture: Any,
        num_out_channels: int,
        activation: torch.nn.Module | None = None,
        kernel_size: int = 1,
        eval_activation: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        dims = len(architecture.input_shape)
        if dims not in _CONV:
            raise ValueError(
                f"the architecture has {dims} spatial dimensions; only 2 and 3 are supported"
            )
        self.architecture = architecture
        self.head = _CONV[dims](int(architecture.num_out_channels), num_out_channels, kernel_size)
        self.activation = activation if activation is not None else torch.nn.Identity()
        #: Applied after ``activation`` in eval mode only, as DaCapo's ``Model`` does (its
        #: affinities model trains logits and predicts probabilities).
        self.eval_activation = eval_activation
        self.input_shape = tuple(architecture.input_shape)
        self.output_shape = tuple(int(s) - (kernel_size - 1) for s in architecture.output_shape)
        if min(self.output_shape) < 1:
            raise ValueError(
                f"a head kernel of size {kernel_size} does not fit the architecture's output "
                f"shape {tuple(architecture.output_shape)}; use a smaller kernel_size"
            )
        self.eval_input_shape = tuple(
            getattr(architecture, "eval_input_shape", architecture.input_shape)
        )
        self.num_in_channels = int(architecture.num_in_channels)
        self.num_out_channels = num_out_channels

    def scale(self, voxel_size: Any) -> tuple[int, ...]:
        """The output voxel size for an input of ``voxel_size`` (the architecture's ``scale``)."""
        return output_voxel_size(self.architecture, voxel_size)

    def dacapo_state_dict_names(self) -> dict[str, str]:
        """``{state-dict key: DaCapo 0.3.5's key}``: DaCapo's ``Model`` holds the
        architecture as ``architecture`` and this head as ``prediction_head``."""
        names = getattr(self.architecture, "dacapo_state_dict_names", None)
        inner: dict[str, str] = dict(names()) if names is not None else {}
        renamed = {
            f"architecture.{key}": f"architecture.{inner.get(key, key)}"
            for key in self.architecture.state_dict()
        }
        renamed.update({f"head.{key}": f"prediction_head.{key}" for key in self.head.state_dict()})
        return renamed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Architecture, head, activation; in eval mode then ``eval_activation``."""
        result = self.activation(self.head(self.architecture(x)))
        if not self.training and self.eval_activation is not None:
            result = self.eval_activation(result)
        return result  # type: ignore[no-any-return]
