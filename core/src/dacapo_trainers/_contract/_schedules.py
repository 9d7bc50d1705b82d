"""Learning-rate schedules shared by trainers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def linear_warmup(
    optimizer: torch.optim.Optimizer, iterations: int, start_factor: float = 0.01
) -> torch.optim.lr_scheduler.LinearLR:
    """DaCapo's warmup: the learning rate grows linearly to its value over ``iterations`` steps.

    It starts at ``start_factor`` times the learning rate (DaCapo: 0.01 over 1000 iterations);
    ``iterations=0`` means no warmup (a constant factor of 1). Step it once per iteration and
    save its ``state_dict`` with the trainer's, so that a resumed run does not restart it.
    """
    from torch.optim.lr_scheduler import LinearLR

    return LinearLR(
        optimizer,
        start_factor=start_factor if iterations > 0 else 1.0,
        end_factor=1.0,
        total_iters=max(iterations, 1),
    )
