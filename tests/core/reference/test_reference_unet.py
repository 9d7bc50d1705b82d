"""The reference U-Net: computed shapes match real forward passes; bad shapes are refused."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dacapo_trainers import Model
from dacapo_trainers.reference import UNetConfig


def _forward_shape(model: torch.nn.Module, channels: int, shape: tuple[int, ...]) -> torch.Size:
    with torch.no_grad():
        return model(torch.zeros(1, channels, *shape)).shape


def test_dacapo_default_setup_maps_84_to_44() -> None:
    config = UNetConfig(name="dacapo", input_shape=[84, 84, 84])
    assert config.num_fmaps == 8
    assert config.fmap_inc_factor == 2
    assert config.downsample_factors == [[2, 2, 2], [2, 2, 2]]
    model = config.build()
    assert isinstance(model, torch.nn.Module)
    assert isinstance(model, Model)
    assert tuple(model.input_shape) == (84, 84, 84)
    assert tuple(model.output_shape) == (44, 44, 44)
    assert tuple(model.eval_input_shape) == (84, 84, 84)
    assert model.num_in_channels == 1
    assert model.num_out_channels == 8


def test_dacapo_default_setup_forward_pass() -> None:
    # Same arithmetic as the default, fewer feature maps to keep the test light.
    model = UNetConfig(name="dacapo", input_shape=[84, 84, 84], num_fmaps=2).build()
    assert _forward_shape(model, 1, (84, 84, 84)) == (1, 2, 44, 44, 44)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_shape": [68, 68], "downsample_factors": [[2, 2], [2, 2]]},
        {"input_shape": [44, 52], "downsample_factors": [[2, 2]], "num_fmaps_out": 5},
        {"input_shape": [24, 44, 44], "downsample_factors": [[1, 2, 2], [1, 2, 2]]},
        {"input_shape": [28, 28, 28], "downsample_factors": [[2, 2, 2]], "constant_upsample": True},
        {"input_shape": [62, 59], "downsample_factors": [[3, 3]], "kernel_size": 5},
        {"input_shape": [30, 30], "downsample_factors": [[2, 2], [2, 2]], "num_convs_per_level": 1},
        {"input_shape": [13, 17], "downsample_factors": []},
        {"input_shape": [46, 46], "downsample_factors": [[2, 2]], "num_in_channels": 3},
        # Needs the translation-equivariance crop after upsampling (funlib's crop_to_factor).
        {"input_shape": [60, 66], "downsample_factors": [[2, 2], [3, 3]]},
        {"input_shape": [25, 28], "downsample_factors": [[3, 3]], "constant_upsample": True},
    ],
)
def test_output_shape_matches_forward_pass(kwargs: dict[str, object]) -> None:
    config = UNetConfig(name="unet", num_fmaps=2, **kwargs)  # type: ignore[arg-type]
    model = config.build()
    out = _forward_shape(model, config.num_in_channels, tuple(config.input_shape))
    assert tuple(out[2:]) == tuple(model.output_shape) == config.output_shape()
    assert out[1] == model.num_out_channels == (config.num_fmaps_out or config.num_fmaps)
    assert model.num_in_channels == config.num_in_channels
    # Translation equivariance: the output tiles the input on the coarsest grid.
    for axis, size in enumerate(model.output_shape):
        assert size % math.prod(f[axis] for f in config.downsample_factors) == 0


@settings(max_examples=15, deadline=None)
@given(
    size=st.integers(6, 40),
    factor=st.integers(1, 3),
    levels=st.integers(0, 2),
    kernel_size=st.sampled_from([1, 3]),
    constant_upsample=st.booleans(),
)
def test_output_shape_matches_forward_pass_or_is_refused(
    size: int, factor: int, levels: int, kernel_size: int, constant_upsample: bool
) -> None:
    config = UNetConfig(
        name="unet",
        input_shape=[size, size + 1],
        num_fmaps=1,
        fmap_inc_factor=1,
        downsample_factors=[[factor, factor]] * levels,
        kernel_size=kernel_size,
        constant_upsample=constant_upsample,
    )
    try:
        expected = config.output_shape()
    except ValueError:
        with pytest.raises(ValueError, match="does not fit"):
            config.build()
        return
    model = config.build()
    assert tuple(_forward_shape(model, 1, (size, size + 1))[2:]) == expected


def test_incompatible_input_shape_names_the_nearest_valid_shapes() -> None:
    config = UNetConfig(name="bad", input_shape=[85, 84, 84])
    with pytest.raises(ValueError) as info:
        config.build()
    message = str(info.value)
    assert "UNetConfig 'bad'" in message
    assert "[85, 84, 84]" in message
    assert "axis 0" in message
    assert "not divisible by the downsample factor 2" in message
    assert "Nearest valid input shapes: [84, 84, 84] (smaller) or [88, 84, 84] (larger)." in message


def test_suggested_shapes_are_the_nearest_valid_ones() -> None:
    config = UNetConfig(name="bad", input_shape=[50, 50], downsample_factors=[[2, 2], [3, 3]])
    with pytest.raises(ValueError) as info:
        config.output_shape()
    found = re.findall(r"\[(\d+), (\d+)\] \((smaller|larger)\)", str(info.value))
    assert found
    for first, second, _ in found:
        assert int(first) == int(second)
    sizes = {kind: int(first) for first, _, kind in found}

    def fits(size: int) -> bool:
        try:
            config.output_shape([size, size])
        except ValueError:
            return False
        return True

    if "smaller" in sizes:
        assert fits(sizes["smaller"])
        assert not any(fits(s) for s in range(sizes["smaller"] + 1, 50))
    assert fits(sizes["larger"])
    assert not any(fits(s) for s in range(51, sizes["larger"]))


def test_too_small_input_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        UNetConfig(name="tiny", input_shape=[8, 8, 8]).build()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": [10]}, "2 or 3 entries"),
        ({"input_shape": [4, 4, 4, 4]}, "2 or 3 entries"),
        ({"input_shape": [0, 8]}, "positive"),
        ({"input_shape": [8, 8], "downsample_factors": [[2, 2, 2]]}, "has 3 entries"),
        ({"input_shape": [8, 8], "downsample_factors": [[0, 2]]}, "positive"),
        ({"input_shape": [8, 8], "downsample_factors": [], "num_fmaps": 0}, "num_fmaps must"),
        ({"input_shape": [8, 8], "downsample_factors": [], "kernel_size": 0}, "kernel_size must"),
        ({"input_shape": [8, 8], "downsample_factors": [], "num_fmaps_out": 0}, "fmaps_out must"),
    ],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        UNetConfig(name="unet", **kwargs)  # type: ignore[arg-type]


def test_downsample_factors_default_is_not_shared() -> None:
    first = UNetConfig(name="a", input_shape=[84, 84, 84])
    second = UNetConfig(name="b", input_shape=[84, 84, 84])
    first.downsample_factors[0][0] = 1
    assert second.downsample_factors == [[2, 2, 2], [2, 2, 2]]
