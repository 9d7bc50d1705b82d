"""The one rule for default axis names, used wherever an array gets names it was not given.

An array's axes are its channel axes first, then its spatial axes (funlib.persistence's and
DaCapo's order). Unnamed, they are called:

* each channel axis ``"c^"`` (DaCapo's name; a trailing ``^`` marks a non-spatial axis for
  funlib.persistence and for this package's readers);
* up to three spatial axes the last ones of ``z, y, x`` (``y, x`` for two, ``x`` for one);
* more than three spatial axes ``d0, d1, ...`` (funlib.persistence's names for spatial axes),
  so that no spatial axis is named like another.

:class:`~dacapo_trainers.InMemoryArray`, :func:`~dacapo_trainers.write_array`,
:func:`~dacapo_trainers.open_array`, :class:`~dacapo_trainers.BatchGeometry`, the snapshots
and the snapshot previews all name axes through :func:`default_axis_names`.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The name of every unnamed channel (non-spatial) axis.
CHANNEL_AXIS = "c^"
#: The names of up to three unnamed spatial axes: the last ``n`` of these.
SPATIAL_AXES = ("z", "y", "x")


def default_axis_names(ndim: int, spatial_dims: int | None = None) -> tuple[str, ...]:
    """The names of the axes of an array with ``ndim`` axes, the last ``spatial_dims`` spatial.

    ``spatial_dims`` defaults to ``ndim`` (every axis spatial). The leading
    ``ndim - spatial_dims`` axes are channels, each named ``"c^"``; the spatial axes are the
    last ``spatial_dims`` of ``z, y, x``, or ``d0 ... d{n-1}`` when there are more than three::

        >>> default_axis_names(4, 3)
        ('c^', 'z', 'y', 'x')
        >>> default_axis_names(2)
        ('y', 'x')
        >>> default_axis_names(5, 4)
        ('c^', 'd0', 'd1', 'd2', 'd3')

    :raises ValueError: ``ndim`` is negative, or ``spatial_dims`` is negative or more than
        ``ndim``.
    """
    spatial = ndim if spatial_dims is None else spatial_dims
    if ndim < 0 or not 0 <= spatial <= ndim:
        raise ValueError(
            f"cannot name the axes of an array with {ndim} axes of which {spatial} are spatial; "
            "give 0 <= spatial_dims <= ndim"
        )
    if spatial <= len(SPATIAL_AXES):
        names = SPATIAL_AXES[len(SPATIAL_AXES) - spatial :]
    else:
        names = tuple(f"d{index}" for index in range(spatial))
    return (CHANNEL_AXIS,) * (ndim - spatial) + names


def axis_name_tuple(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple of strings (the converter of ``axis_names`` fields)."""
    return tuple(str(name) for name in names)


def is_channel_axis(name: str) -> bool:
    """Whether an axis name marks a non-spatial axis (it ends in ``^``, as ``"c^"``)."""
    return name.endswith("^")
