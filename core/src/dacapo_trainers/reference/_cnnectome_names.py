"""The names DaCapo 0.3.5 gives the CNNectome U-Net's tensors (for its weights files).

DaCapo's ``CNNectomeUNet`` holds a ``CNNectomeUNetModule`` as ``unet`` (or, with
``upsample_factors``, as ``unet.0`` of a sequence followed by each extra upsampling and its
convolutions). Its lists are ``l_conv`` (down convolutions), ``r_up`` (upsamplings),
``attention`` and ``r_conv`` (up convolutions), the last three per head (DaCapo builds one),
and each convolution pass keeps its layers in ``conv_pass``. The layers within a pass are in
the same order here, so only the containers are renamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LEVEL_RULES = (
    (re.compile(r"down\.(\d+)\.(.+)"), "l_conv.{0}.conv_pass.{1}"),
    (re.compile(r"ups\.(\d+)\.(.+)"), "r_up.0.{0}.{1}"),
    (re.compile(r"gates\.(\d+)\.gate\.(.+)"), "attention.0.{0}.W_g.conv_pass.{1}"),
    (re.compile(r"gates\.(\d+)\.skip\.0\.(.+)"), "attention.0.{0}.W_x.0.conv_pass.{1}"),
    (re.compile(r"gates\.(\d+)\.psi\.(.+)"), "attention.0.{0}.psi.conv_pass.{1}"),
    (re.compile(r"up_convs\.(\d+)\.(.+)"), "r_conv.0.{0}.conv_pass.{1}"),
)
_EXTRA = re.compile(r"extra_ups\.(\d+)\.([01])\.(.+)")


def dacapo_key(key: str, *, extra_upsampling: bool) -> str:
    """DaCapo's state-dict key for one key of :class:`CNNectomeUNet`."""
    extra = _EXTRA.fullmatch(key)
    if extra is not None:
        index, part, rest = int(extra.group(1)), extra.group(2), extra.group(3)
        if part == "0":  # the upsampling: DaCapo's Upsample keeps its layers in ``up`` too
            return f"unet.{1 + 2 * index}.{rest}"
        return f"unet.{2 + 2 * index}.conv_pass.{rest}"
    prefix = "unet.0." if extra_upsampling else "unet."
    for pattern, template in _LEVEL_RULES:
        match = pattern.fullmatch(key)
        if match is not None:
            return prefix + template.format(*match.groups())
    return key  # not a tensor DaCapo's module has: left as it is, so a mismatch names it


def dacapo_keys(keys: Iterable[str], *, extra_upsampling: bool) -> dict[str, str]:
    """``{key: DaCapo's key}`` for the state-dict keys of a :class:`CNNectomeUNet`."""
    return {key: dacapo_key(key, extra_upsampling=extra_upsampling) for key in keys}
