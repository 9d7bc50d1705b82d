"""The model the inner trainer sees: DistributedDataParallel, with the model's attributes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.nn.parallel import DistributedDataParallel


class DistributedModel(DistributedDataParallel):
    """``DistributedDataParallel`` that forwards attribute access to the wrapped model.

    Inner trainers read model attributes (``input_shape``, ``output_shape``,
    ``num_in_channels``...) from the model they are given; here they find them on
    ``.module``. ``on_forward`` is called after every forward pass (the progress mark).
    """

    def __init__(self, module: Any, *, on_forward: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(module, **kwargs)
        self._on_forward = on_forward

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        output = super().forward(*inputs, **kwargs)  # type: ignore[no-untyped-call]
        self._on_forward()
        return output

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            # Not while DistributedDataParallel.__init__ runs: "module" is not there yet.
            if name == "module" or "module" not in self.__dict__.get("_modules", {}):
                raise
            return getattr(self._modules["module"], name)
