"""The optimizer step of a batch trainer: precision, the compiled forward, the memory format.

:class:`BatchTrainer` owns the loop and the state; a :class:`StepRunner` runs one step on a
batch already on the device, as the trainer's config asks (``precision``, ``compile``,
``channels_last_3d``). Nothing here imports torch before a step is set up.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .._errors import NonFiniteLossError, TrainingError
from ._precision import MixedPrecision, precision_problem

if TYPE_CHECKING:
    import torch

    from .._contract._protocols import Model, Task
    from ._batch_config import BatchTrainerConfig


class StepRunner:
    """Runs the steps of one trainer: set up per device with :meth:`set_up`, then :meth:`run`.

    :attr:`precision` (from :meth:`set_up` on) holds the fp16 loss scaler, whose state the
    trainer saves; the ``torch.compile`` wrapper is made once per model and leaves the model,
    and so its checkpointed ``state_dict``, as it is.
    """

    def __init__(self, config: BatchTrainerConfig) -> None:
        self.config = config
        self.precision: MixedPrecision | None = None
        #: ``(model, torch.compile(model))`` once a compiled step ran.
        self.compiled: tuple[Model, Any] | None = None
        #: Whether the last step's raw was finite everywhere (a device tensor, not synced).
        self._raw_finite: torch.Tensor | None = None

    def set_up(self, model: Model, device: torch.device) -> None:
        """The precision and memory format of steps on ``device`` (the scaler's state kept).

        Raises :class:`~dacapo_trainers.TrainingError` where ``device`` cannot run the
        configured ``precision``.
        """
        import torch

        config = self.config
        problem = precision_problem(config.precision, device)
        if problem is not None:
            raise TrainingError(
                f"{type(config).__name__} {config.name!r} cannot train on {device} with "
                f"precision {config.precision!r} ($.trainer_config.precision): {problem}. "
                "Choose precision '32' (or 'bf16' where the device supports it), or another "
                "device"
            )
        precision = self.precision
        if precision is None or precision.device_type != device.type:
            state = precision.state_dict() if precision is not None else {}
            self.precision = MixedPrecision(config.precision, device)
            self.precision.load_state_dict(state)
        if config.channels_last_3d:
            model.to(memory_format=torch.channels_last_3d)  # 5-D weights only; in place

    def forward(self, model: Model) -> Any:
        """What the step calls for the forward: ``model``, or its ``torch.compile`` wrapper."""
        if not self.config.compile:
            return model
        if self.compiled is None or self.compiled[0] is not model:
            import torch

            self.compiled = (model, torch.compile(model))
        return self.compiled[1]

    def run(
        self,
        model: Model,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        task: Task,
        inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        *,
        keep_gradients: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One optimizer step on ``inputs``: the loss, the prediction (not synced) and, with
        ``keep_gradients``, d loss / d prediction (unscaled; else None)."""
        import torch

        precision = self.precision
        assert precision is not None, "set_up() comes before the first step"
        raw, target, weight = inputs
        # queued with the step, read only when the loss is not finite (no extra sync)
        self._raw_finite = torch.isfinite(raw).all()
        if self.config.channels_last_3d and raw.dim() == 5:
            raw = raw.contiguous(memory_format=torch.channels_last_3d)
        forward = self.forward(model)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            prediction = forward(raw)
            if keep_gradients and prediction.requires_grad:
                prediction.retain_grad()
            loss = task.loss.compute(prediction, target, weight)
        scale = precision.gradient_scale() if keep_gradients else 1.0
        precision.backward(loss)
        precision.step(optimizer)
        scheduler.step()
        gradient = prediction.grad if keep_gradients else None
        if gradient is not None and scale != 1.0:
            gradient = gradient / scale
        return loss, prediction, gradient

    def loss_value(self, loss: torch.Tensor, iteration: int) -> float:
        """The loss of the last step as a float (the step's one sync).

        :raises NonFiniteLossError: the loss is NaN or infinite because the raw of that batch
            is: a batch is named where the data went wrong, not where the loss did.
        """
        value = float(loss.item())
        finite = self._raw_finite
        if not math.isfinite(value) and finite is not None and not bool(finite.item()):
            raise NonFiniteLossError(
                f"the loss became {value} at iteration {iteration} because the raw of that "
                "batch holds NaN or infinite values: check the datasets' raw arrays (missing "
                "data stored as NaN?), or fill or mask them in the dataset config. The run "
                "stopped; the checkpoints written so far are kept"
            )
        return value
