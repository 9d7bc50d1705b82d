"""The registry: selects config classes by type name, loading only the plugin that provides it.

Every load is isolated: a plugin that fails to import, whose hook raises, or that does not
provide what it promised is marked broken and reported; the others keep working.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from .. import hookspecs
from .._contract._config import TaggedConfig
from .._errors import (
    DuplicateTypeError,
    PluginContractError,
    PluginError,
    PluginLoadError,
    UnknownTypeError,
)
from . import _advice
from ._config_rules import trainer_type_problem
from ._discovery import (
    DISABLE_AUTOLOAD_ENV,
    DISABLE_ENV,
    PluginRecord,
    PluginState,
    check_record,
    core_version,
    discover,
    mark_duplicates,
)

_PROVIDER_HOOKS = ("dacapo_trainers_trainer_configs", "dacapo_trainers_component_configs")
#: A record's key: its type name and distribution (unique; duplicates differ in distribution).
_Key = tuple[str, str | None]
#: The plugin an entry point loads: its distribution and target module.
_Target = tuple[str | None, str]


def _plugin_name(plugin: Any) -> str:
    """A readable pluggy name for a plugin registered at run time (a module or an object)."""
    if isinstance(plugin, type) or hasattr(plugin, "__file__"):
        return str(getattr(plugin, "__name__", repr(plugin)))
    return f"{type(plugin).__module__}.{type(plugin).__qualname__} object"


class Registry:
    """Config types by name: discovered from entry points, or registered at run time.

    ``Registry()`` discovers installed plugins (metadata only) and loads one the first time a
    type it declares is selected with :meth:`get`. ``Registry.isolated()`` loads no
    third-party plugin: only the core's own reference types and what you :meth:`register`
    (for plugin authors' tests and notebooks).

    The registry's :attr:`plugin_manager` is a :class:`pluggy.PluginManager` with every hook
    of :mod:`dacapo_trainers.hookspecs`; loaded plugins and lifecycle observers live in it.
    """

    def __init__(
        self,
        *,
        autoload: bool = True,
        entry_points: Iterable[metadata.EntryPoint] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = dict(os.environ if environ is None else environ)
        if not autoload:
            environ[DISABLE_AUTOLOAD_ENV] = "1"
        self._records: dict[_Key, PluginRecord] = {}
        # Indexes of the keys (fixed at discovery; the records behind them are replaced).
        self._keys_by_type: dict[str, list[_Key]] = defaultdict(list)
        self._keys_by_target: dict[_Target, list[_Key]] = defaultdict(list)
        for record in discover(entry_points, environ=environ, deep=False):
            key = _key(record)
            self._records[key] = record
            self._keys_by_type[record.type_name].append(key)
            self._keys_by_target[_target(record)].append(key)
        self._types: dict[str, type[TaggedConfig]] = {}
        self._load_errors: dict[str, BaseException] = {}
        #: The type names each loaded entry point's plugin returned (for misnaming advice).
        self._provided: dict[_Key, frozenset[str]] = {}
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)

    @classmethod
    def isolated(cls, *registrations: Any) -> Registry:
        """A registry that autoloads no third-party plugin, with ``registrations`` registered."""
        registry = cls(autoload=False)
        for item in registrations:
            registry.register(item)
        return registry

    # -- listing (metadata only) ---------------------------------------------------------------

    def records(self) -> list[PluginRecord]:
        """Every known type: discovered ones (with their state) and run-time registrations."""
        self._check(list(self._records))
        runtime = [
            PluginRecord(type_name=name, distribution=None, version=None, target=_qualname(cls))
            for name, cls in self._types.items()
            if name not in self._keys_by_type
        ]
        return sorted([*self._records.values(), *runtime], key=lambda r: r.type_name)

    def available_names(self) -> list[str]:
        """Type names that can be selected (state ok)."""
        return sorted({r.type_name for r in self.records() if r.state is PluginState.OK})

    # -- selection -------------------------------------------------------------------------------

    def get(
        self, type_name: str, *, kind: str = "config", base: type[TaggedConfig] | None = None
    ) -> type[TaggedConfig]:
        """The config class named ``type_name``, loading the one plugin that declares it.

        ``kind`` and ``base`` only word the error: "unknown trainer type ...", listing the
        installed types that derive from ``base`` (every type when None).

        :raises UnknownTypeError: nothing provides it (the message suggests close names and
            the first-party package to install).
        :raises PluginError: its plugin is broken, disabled, incompatible or duplicated.
        """
        if type_name in self._types:
            return self._types[type_name]
        keys = self._keys_by_type.get(type_name, [])
        self._check(keys)
        candidates = [self._records[key] for key in keys]
        if not candidates:
            raise self._unknown(type_name, kind, base)
        usable = [r for r in candidates if r.state is PluginState.OK]
        if len(usable) != 1:
            raise _advice.unusable(type_name, candidates, self._load_errors)
        self._load(usable[0])
        return self._types[type_name]

    def load_all(self) -> dict[str, type[TaggedConfig]]:
        """Load every usable type (broken ones are marked, not raised) and return them by name."""
        self._check(list(self._records))
        for record in list(self._records.values()):
            if record.state is PluginState.OK and record.type_name not in self._types:
                with contextlib.suppress(PluginError):  # marked broken; listed, not raised
                    self._load(record)
        return dict(sorted(self._types.items()))

    def subclasses_of(self, base: type[TaggedConfig]) -> list[type[TaggedConfig]]:
        """Loaded types that derive from ``base`` (``base`` itself included), by name."""
        return [cls for _, cls in sorted(self._types.items()) if issubclass(cls, base)]

    # -- registration ----------------------------------------------------------------------------

    def register(self, item: Any) -> list[type[TaggedConfig]]:
        """Register a config class, or a plugin object implementing the provider hooks.

        Returns the classes registered. A name that another class already has is refused with
        :class:`DuplicateTypeError`; registering the same class twice is a no-op.
        """
        if isinstance(item, type) and issubclass(item, TaggedConfig):
            provided = [item]
        else:
            provided = self._call_provider_hooks(item, record=None)
        for cls in provided:
            self._check_free(cls)
        for cls in provided:
            self._types[cls.type_name()] = cls
        return provided

    # -- internals -------------------------------------------------------------------------------

    def _check(self, keys: list[_Key]) -> None:
        """Run the deferred metadata checks on these records, then re-mark duplicates."""
        unchecked = [key for key in keys if not self._records[key].checked]
        if not unchecked:
            return
        installed_core = core_version()
        for key in unchecked:
            self._records[key] = check_record(self._records[key], installed_core)
        related = [
            key for name in {key[0] for key in unchecked} for key in self._keys_by_type[name]
        ]
        remarked = mark_duplicates([self._records[key] for key in related])
        self._records.update(zip(related, remarked, strict=True))

    def _check_free(self, cls: type[TaggedConfig]) -> None:
        name = cls.type_name()
        existing = self._types.get(name)
        if existing is not None and existing is not cls:
            raise DuplicateTypeError(
                f"type {name!r} is already registered as {_qualname(existing)}; cannot register "
                f"{_qualname(cls)} under the same name (rename the class or use another registry)"
            )
        installed = [
            record
            for record in (self._records[key] for key in self._keys_by_type.get(name, []))
            if record.state is PluginState.OK
        ]
        if existing is None and installed:
            raise DuplicateTypeError(
                f"type {name!r} is already provided by {installed[0].label}; cannot register "
                f"{_qualname(cls)} under the same name (disable that plugin with "
                f"{DISABLE_ENV}={installed[0].distribution}, or use Registry.isolated())",
                installed[0],
            )

    def _same_plugin(self, record: PluginRecord) -> list[PluginRecord]:
        """The records of every entry point that names ``record``'s plugin module."""
        return [self._records[key] for key in self._keys_by_target[_target(record)]]

    def _load(self, record: PluginRecord) -> None:
        assert record.entry_point is not None
        try:
            plugin = record.entry_point.load()
        except Exception as error:  # isolate: any failure of the plugin's own code
            raise self._mark_broken(record, error, "importing entry point") from error
        provided = self._call_provider_hooks(plugin, record)
        by_name = {cls.type_name(): cls for cls in provided}
        self._provided[_key(record)] = frozenset(by_name)
        declared = self._same_plugin(record)
        if record.type_name not in by_name:
            undeclared = sorted(set(by_name) - {r.type_name for r in declared})
            message = _advice.missing_class(record, by_name, undeclared)
            self._set_state(record, PluginState.BROKEN, message)
            raise PluginContractError(message, record, plugin)
        for declared_record in declared:
            cls = by_name.get(declared_record.type_name)
            if cls is not None and declared_record.state is PluginState.OK:
                self._types[declared_record.type_name] = cls

    def _call_provider_hooks(self, plugin: Any, record: PluginRecord | None) -> list[type[Any]]:
        manager = self.plugin_manager
        newly_registered = not manager.is_registered(plugin)
        try:
            if newly_registered:
                name = f"{record.distribution}:{record.target}" if record else _plugin_name(plugin)
                # a name already taken: pluggy names the plugin by its id instead
                manager.register(plugin, name=None if manager.has_plugin(name) else name)
            others = [p for p in manager.get_plugins() if p is not plugin]
            provided: list[type[Any]] = []
            for hook_name in _PROVIDER_HOOKS:
                caller = manager.subset_hook_caller(hook_name, remove_plugins=others)
                for result in caller():
                    provided.extend(result or [])
        except Exception as error:  # isolate: a hook that raises, or a bad hook signature
            if newly_registered and manager.is_registered(plugin):
                manager.unregister(plugin)  # never leave a half-registered plugin behind
            if record is None:
                raise PluginLoadError(
                    f"plugin {plugin!r} could not be registered: {_advice.failure(error)}",
                    plugin=plugin,
                ) from error
            raise self._mark_broken(record, error, "calling its hooks", plugin) from error
        wrong = [
            obj for obj in provided if not (isinstance(obj, type) and issubclass(obj, TaggedConfig))
        ]
        where = record.label if record else repr(plugin)
        message = None
        if wrong:
            message = (
                f"plugin {where} returned {wrong[0]!r} from a provider hook; provider hooks "
                "must return subclasses of dacapo_trainers.TaggedConfig (e.g. TrainerConfig)"
            )
        for cls in provided:
            if message is None and "trainer_type" in attrs.fields_dict(cls):
                message = f"plugin {where}: {trainer_type_problem(cls)}"
        if message is not None:
            if record is not None:
                self._set_state(record, PluginState.BROKEN, message)
            raise PluginContractError(message, record, plugin)
        return provided

    def _mark_broken(
        self, record: PluginRecord, error: BaseException, phase: str, plugin: object = None
    ) -> PluginLoadError:
        for other in self._same_plugin(record):
            self._set_state(other, PluginState.BROKEN, _advice.failure(error))
            self._load_errors[other.type_name] = error
        message = _advice.broken(record, phase, error)
        return PluginLoadError(message, self._records[_key(record)], plugin)

    def _set_state(self, record: PluginRecord, state: PluginState, error: str) -> None:
        key = _key(record)
        self._records[key] = attrs.evolve(self._records[key], state=state, error=error)

    def _unknown(
        self, type_name: str, kind: str, base: type[TaggedConfig] | None
    ) -> UnknownTypeError:
        undeclared = self._undeclared_provider(type_name)
        if undeclared is not None:
            misnamed = undeclared.type_name not in self._provided[_key(undeclared)]
            detail = _advice.undeclared(type_name, undeclared, misnamed)
            return UnknownTypeError(f"unknown {kind} type {type_name!r}; {detail}", type_name)
        if base is None or base is TaggedConfig:
            installed = self.available_names()
        else:  # the types of this kind: only loaded classes say what they derive from
            self.load_all()
            installed = [cls.type_name() for cls in self.subclasses_of(base)]
        return UnknownTypeError(_advice.unknown(type_name, kind, installed), type_name)

    def _undeclared_provider(self, type_name: str) -> PluginRecord | None:
        """The record of an entry point whose plugin returns a class named ``type_name`` that
        no entry point declares: a misnamed entry point, or one missing.

        Only plugins whose entry-point names are close to ``type_name`` are loaded (this runs
        on an error path).
        """
        names = sorted(self._keys_by_type)
        wanted_stem = _advice.stem(type_name)
        by_stem = [n for n in names if difflib.get_close_matches(wanted_stem, [_advice.stem(n)])]
        close = difflib.get_close_matches(type_name, names, n=6, cutoff=0.6)
        for name in dict.fromkeys([*by_stem, *close]):  # same stem first ("Cutmix...")
            for key in self._keys_by_type[name]:
                if self._records[key].state is PluginState.OK and name not in self._types:
                    with contextlib.suppress(PluginError):
                        self._load(self._records[key])
                if type_name in self._provided.get(key, ()):
                    return self._records[key]
        return None


def _key(record: PluginRecord) -> _Key:
    return (record.type_name, record.distribution)


def _target(record: PluginRecord) -> _Target:
    return (record.distribution, record.target)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def default_registry() -> Registry:
    """The process-wide registry used when none is given (created on first use)."""
    return Registry()
