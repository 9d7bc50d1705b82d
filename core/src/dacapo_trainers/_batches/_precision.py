"""The step's precision: ``torch.autocast`` and, for float16, loss scaling.

``"32"`` runs the step exactly as before (no autocast context, ``backward`` and
``optimizer.step()``); ``"bf16"`` and ``"fp16"`` run forward and loss under
``torch.autocast(device.type, dtype)``; ``"fp16"`` also scales the loss with a
``torch.amp.GradScaler`` (float16's range is too small for small gradients), whose state is
part of the trainer's state. Parameters, gradients and optimizer state stay float32 in every
mode. Imports torch only when a step runs.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: The values of :attr:`BatchTrainerConfig.precision <dacapo_trainers.BatchTrainerConfig>`.
PRECISIONS = ("32", "bf16", "fp16")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None for ``"32"``: no autocast)."""
    import torch

    return {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def precision_problem(precision: str, device: torch.device) -> str | None:
    """Why the step cannot run in ``precision`` on ``device``, or None when it can.

    Tried, not looked up: a small matrix product under ``torch.autocast`` must come out in the
    precision's dtype (torch warns and computes in float32 where a device does not support
    it, and raises for a CUDA device without bfloat16).
    """
    import torch

    dtype = autocast_dtype(precision)
    if dtype is None:
        return None
    if not torch.amp.is_autocast_available(device.type):
        return f"torch {torch.__version__} has no autocast for {device.type} devices"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autocast(device.type, dtype=dtype):
                ones = torch.ones((2, 2), device=device)
                result_dtype = (ones @ ones).dtype
        except RuntimeError as error:
            return f"autocast to {dtype} on {device} failed: {error}"
    if result_dtype != dtype:
        said = "; ".join(str(w.message) for w in caught)
        return f"torch {torch.__version__} does not autocast to {dtype} on {device}" + (
            f" ({said})" if said else ""
        )
    return None


class MixedPrecision:
    """Autocast and loss scaling of the step, for one precision on one device type."""

    def __init__(self, precision: str, device: torch.device) -> None:
        import torch

        self.precision = precision
        self.device_type = device.type
        self.dtype = autocast_dtype(precision)
        #: The loss scaler of ``"fp16"`` (None otherwise).
        self.scaler: torch.amp.GradScaler | None = (
            torch.amp.GradScaler(device.type) if precision == "fp16" else None
        )

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context of forward and loss: autocast, or nothing for ``"32"``."""
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss``, multiplied by :meth:`gradient_scale` for ``"fp16"``."""
        import torch

        torch.autograd.backward(loss if self.scaler is None else self.scaler.scale(loss))

    def gradient_scale(self) -> float:
        """The factor the gradients of the coming :meth:`backward` are multiplied by (1.0
        without a scaler). Reading it syncs with the device: ask only where it is needed."""
        return 1.0 if self.scaler is None else float(self.scaler.get_scale())

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; for ``"fp16"`` through the scaler (skipped on inf/NaN
        gradients), then the scaler's update."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state (empty without a scaler)."""
        return {} if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state (nothing to do without a scaler)."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
