"""Numbers a run cannot train with are refused by validation, not by the NaN guard later."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dacapo_trainers import TrainerConfig


@attrs.define(kw_only=True)
class _Config(TrainerConfig):
    trainer_type = "a_module:NeverBuilt"


@pytest.mark.parametrize("rate", [math.inf, -math.inf, math.nan, 1e30, 11.0, 0.0, -1e-3])
def test_learning_rates_that_cannot_train_are_refused(rate: float) -> None:
    with pytest.raises(ValueError) as refused:
        _Config(name="t", batch_size=1, learning_rate=rate)
    assert str(refused.value) == (
        "learning_rate must be a number above 0 and at most 10 (typical values are 1e-5 to "
        f"1e-2), got {rate}"
    )


@given(rate=st.floats(min_value=1e-300, max_value=10.0))
def test_every_learning_rate_up_to_10_is_accepted(rate: float) -> None:
    assert _Config(name="t", batch_size=1, learning_rate=rate).learning_rate == rate
