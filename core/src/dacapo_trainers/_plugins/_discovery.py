"""Discovery: plain records of installed config types, read from package metadata alone.

Nothing here imports a plugin. Each entry point of the group ``dacapo_trainers`` is one config
type: its name is the type name, its value the module whose hooks provide the class.
"""

from __future__ import annotations

import enum
import importlib.metadata as metadata
import importlib.util
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping

import attrs
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ENTRY_POINT_GROUP = "dacapo_trainers"
CORE_DISTRIBUTION = "dacapo-trainers"
#: Comma-separated distribution or type names that are not loaded.
DISABLE_ENV = "DACAPO_TRAINERS_DISABLE"
#: Set to 1/true/yes to load no third-party plugin automatically.
DISABLE_AUTOLOAD_ENV = "DACAPO_TRAINERS_DISABLE_AUTOLOAD"


class PluginState(enum.Enum):
    """Whether a discovered config type can be selected."""

    OK = "ok"
    BROKEN = "broken"
    DISABLED = "disabled"
    INCOMPATIBLE = "incompatible"
    DUPLICATE = "duplicate"


@attrs.define(frozen=True)
class PluginRecord:
    """One config type as installed: which distribution provides it, and whether it is usable.

    ``distribution`` and ``version`` are None for types registered at run time.
    ``error`` is a one-line reason for any state but ``ok``.
    """

    type_name: str
    distribution: str | None
    version: str | None
    target: str
    state: PluginState = PluginState.OK
    error: str | None = None
    entry_point: metadata.EntryPoint | None = attrs.field(default=None, eq=False, repr=False)
    #: The distribution's Requires-Dist lines (for the compatibility check).
    requires: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)
    #: Whether the metadata-only checks (compatibility, module present) have run.
    checked: bool = attrs.field(default=False, eq=False, repr=False)

    @property
    def label(self) -> str:
        """``"distribution version"``, or ``"registered at run time"``."""
        if self.distribution is None:
            return "registered at run time"
        return f"{self.distribution} {self.version}"

    @property
    def is_builtin(self) -> bool:
        """Whether the core distribution itself provides this type (cannot be disabled)."""
        return self.distribution is not None and (
            canonicalize_name(self.distribution) == CORE_DISTRIBUTION
        )

    def as_dict(self) -> dict[str, str | None]:
        """A JSON-ready view (for ``dacapo-trainers plugins --json``)."""
        return {
            "type": self.type_name,
            "distribution": self.distribution,
            "version": self.version,
            "target": self.target,
            "state": self.state.value,
            "error": self.error,
        }


def core_version() -> str:
    """The installed version of the core distribution."""
    try:
        return metadata.version(CORE_DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from an uninstalled source tree
        from .. import __version__

        return __version__


def disabled_names(environ: Mapping[str, str]) -> set[str]:
    """Canonical distribution names and exact type names listed in ``DACAPO_TRAINERS_DISABLE``."""
    raw = environ.get(DISABLE_ENV, "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    return names | {canonicalize_name(name) for name in names}


def autoload_enabled(environ: Mapping[str, str]) -> bool:
    """False when ``DACAPO_TRAINERS_DISABLE_AUTOLOAD`` is set to a true value."""
    value = environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower()
    return value not in {"1", "true", "yes", "on"}


def core_requirements(requires: Iterable[str]) -> list[Requirement]:
    """The requirements on the core among a distribution's ``Requires-Dist`` lines.

    Lines that do not parse, and requirements that apply only with an extra (a marker false
    without one), are left out.
    """
    found = []
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != CORE_DISTRIBUTION:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        found.append(requirement)
    return found


def incompatibility(requires: Iterable[str], installed_core: str) -> str | None:
    """Why a distribution's requirements on the core exclude ``installed_core``, or None.

    The registry marks such a plugin ``incompatible``; the conformance kit fails with the same
    reason.
    """
    try:
        core = Version(installed_core)
    except InvalidVersion:
        return None
    for requirement in core_requirements(requires):
        if not requirement.specifier.contains(core, prereleases=True):
            return (
                f"requires {CORE_DISTRIBUTION}{requirement.specifier} but {installed_core} "
                "is installed; upgrade the plugin or install a matching dacapo-trainers"
            )
    return None


def core_requirement(version: str | None = None) -> str:
    """The requirement a plugin written for core ``version`` (default: the installed one)
    declares: its minor series while the core is 0.x (``dacapo-trainers>=0.1,<0.2``), its
    major from 1.0 on. The scaffold writes it; the conformance kit suggests it."""
    return compatible_requirement(CORE_DISTRIBUTION, core_version() if version is None else version)


def compatible_requirement(distribution: str, version: str) -> str:
    """``distribution``'s versions compatible with ``version``: its minor series while it is
    0.x (``name>=0.3,<0.4``), its major from 1.0 on (``name>=1.2,<2``)."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return distribution
    upper = f"0.{parsed.minor + 1}" if parsed.major == 0 else f"{parsed.major + 1}"
    return f"{distribution}>={parsed.major}.{parsed.minor},<{upper}"


def _missing_module(target: str) -> str | None:
    """A reason when the entry point's top-level package is not importable (no import done)."""
    top_level = target.split(":")[0].split(".")[0].strip()
    try:
        found = importlib.util.find_spec(top_level) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"ModuleNotFoundError: no module named {top_level!r}"


def discover(
    entry_points: Iterable[metadata.EntryPoint] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    deep: bool = True,
) -> list[PluginRecord]:
    """Records of every config type declared in the ``dacapo_trainers`` entry-point group.

    Reads metadata only: imports no plugin. States set here: ``disabled`` (environment),
    ``duplicate`` (two distributions declare the same type name; resolved when all but one
    are disabled or incompatible) and, with ``deep`` (see :func:`check_record`),
    ``incompatible`` and ``broken``. Without ``deep`` those two checks are left for the
    records that are listed or selected, which keeps selecting one type cheap when many
    plugins are installed.
    """
    environ = os.environ if environ is None else environ
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    disabled = disabled_names(environ)
    autoload = autoload_enabled(environ)
    parsed: dict[int, tuple[str, str, tuple[str, ...]]] = {}
    records: list[PluginRecord] = []
    for entry_point in entry_points:
        dist = entry_point.dist
        requires: tuple[str, ...]
        if dist is None:
            name, version, requires = "unknown", "unknown", ()
        else:
            if id(dist) not in parsed:  # parse each METADATA file once
                meta = dist.metadata
                parsed[id(dist)] = (
                    meta["Name"],
                    meta["Version"],
                    tuple(meta.get_all("Requires-Dist") or ()),
                )
            name, version, requires = parsed[id(dist)]
        record = PluginRecord(
            type_name=entry_point.name,
            distribution=name,
            version=version,
            target=entry_point.value,
            entry_point=entry_point,
            requires=requires,
        )
        records.append(_initial_state(record, disabled, autoload))
    if deep:
        installed_core = core_version()
        records = [check_record(record, installed_core) for record in records]
    return mark_duplicates(records)


def _initial_state(record: PluginRecord, disabled: set[str], autoload: bool) -> PluginRecord:
    if record.is_builtin:  # the core's own reference types are always available
        return attrs.evolve(record, checked=True)
    if not autoload:
        return attrs.evolve(
            record,
            state=PluginState.DISABLED,
            checked=True,
            error=f"autoload is off ({DISABLE_AUTOLOAD_ENV} is set); register it explicitly",
        )
    assert record.distribution is not None
    if record.type_name in disabled or canonicalize_name(record.distribution) in disabled:
        return attrs.evolve(
            record, state=PluginState.DISABLED, checked=True, error=f"disabled by {DISABLE_ENV}"
        )
    return record


def check_record(record: PluginRecord, installed_core: str) -> PluginRecord:
    """Run the metadata-only checks: core compatibility and the plugin's module present."""
    if record.checked:
        return record
    record = attrs.evolve(record, checked=True)
    reason = incompatibility(record.requires, installed_core)
    if reason is not None:
        return attrs.evolve(record, state=PluginState.INCOMPATIBLE, error=reason)
    missing = _missing_module(record.target)
    if missing is not None:
        return attrs.evolve(record, state=PluginState.BROKEN, error=missing)
    return record


def mark_duplicates(records: list[PluginRecord]) -> list[PluginRecord]:
    """Mark records whose type name two usable distributions declare (clears stale marks)."""
    records = [
        attrs.evolve(r, state=PluginState.OK, error=None) if r.state is PluginState.DUPLICATE else r
        for r in records
    ]
    by_type: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        if record.state not in (PluginState.DISABLED, PluginState.INCOMPATIBLE):
            by_type[record.type_name].append(index)
    for type_name, indices in by_type.items():
        distributions = {records[i].distribution for i in indices}
        if len(distributions) < 2:
            continue
        labels = " and ".join(sorted(records[i].label for i in indices))
        names = ",".join(sorted(str(records[i].distribution) for i in indices))
        message = (
            f"type {type_name!r} is provided by both {labels}; uninstall one of them, or "
            f"disable one with {DISABLE_ENV} (e.g. {DISABLE_ENV}={names.split(',')[0]})"
        )
        for i in indices:
            records[i] = attrs.evolve(records[i], state=PluginState.DUPLICATE, error=message)
    return records
