"""Config checks: the config round-trips through JSON, refuses unknown keys, follows the field
rules, and builds its trainer.
"""

from __future__ import annotations

from typing import Any

import pytest

from .._configs._converter import ConfigConverter, structure_config, unstructure_config
from .._contract._config import TrainerConfig
from .._contract._trainer import Trainer
from .._errors import ConfigError
from .._plugins._config_rules import config_class_problems
from .._plugins._registry import default_registry
from ._kit_base import KitBase, _fail
from ._round_trip import config_data, round_trip_problem


class ConfigChecks(KitBase):
    """The checks of the config class and of ``build_trainer()`` (no training)."""

    # -- the config ------------------------------------------------------------------------------

    def test_config_round_trips(self, trainer_config: TrainerConfig) -> None:
        """``structure_config(unstructure_config(config))`` gives the same config, via JSON."""
        cls = type(trainer_config)
        data = unstructure_config(trainer_config)
        if not isinstance(data, dict) or data.get("__type__") != cls.type_name():
            _fail(
                f"unstructure_config({cls.__name__}(...)) gave {data!r}; expected a mapping "
                f"with '__type__': {cls.type_name()!r} first: is {cls.__name__} an attrs class "
                "deriving from dacapo_trainers.TrainerConfig?"
            )
        problem = round_trip_problem(trainer_config)
        if problem is not None:
            _fail(problem)

    def test_config_classes_follow_the_field_rules(self, trainer_config: TrainerConfig) -> None:
        """Every config class of the plugin declares its fields so that the config layer sees
        them: annotated, ``trainer_type`` a ``ClassVar``, no shared mutable defaults."""
        package = type(trainer_config).__module__.partition(".")[0]
        classes = [type(trainer_config)] + [
            cls
            for cls in default_registry().load_all().values()
            if cls.__module__.partition(".")[0] == package and cls is not type(trainer_config)
        ]
        problems = [problem for cls in classes for problem in config_class_problems(cls)]
        if problems:
            _fail(
                "\n".join(problems) + "\n(see 'Writing a config class' in the dacapo-trainers docs)"
            )

    def test_every_config_value_round_trips(self, trainer_config: TrainerConfig) -> None:
        """Every value the config type accepts survives JSON (a run using it can resume).

        A property test: hypothesis draws data for the config class (nested configs drawn
        among the registered types of their fields), keeps what structures, and checks
        :func:`round_trip_problem` on it. Skipped where hypothesis is not installed.
        """
        hypothesis = pytest.importorskip("hypothesis")
        cls = type(trainer_config)
        converter = ConfigConverter(default_registry())
        problems: list[str] = []
        try:  # the config's own data must structure, or no drawn data can
            converter.structure(unstructure_config(trainer_config), cls)
        except ConfigError as error:
            _fail(
                f"the data of {cls.__name__}(...) itself does not structure, so no drawn "
                f"config can:\n{error}"
            )

        def check(data: dict[str, Any]) -> None:
            try:
                config = converter.structure(data, cls)
            except ConfigError:
                hypothesis.reject()
            problem = round_trip_problem(config, converter)
            if problem is not None:
                problems.append(problem)
                raise AssertionError(problem)

        settings = hypothesis.settings(
            max_examples=self.round_trip_examples,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        run_checks = settings(hypothesis.given(config_data(cls, converter.registry))(check))
        try:
            run_checks()
        except AssertionError:
            _fail(problems[-1] if problems else "a drawn config did not round-trip")
        except hypothesis.errors.Unsatisfiable:
            _fail(
                f"no drawn {cls.__name__} data structured: its fields' validators refuse the "
                "values their annotations allow, or a nested config type cannot be selected "
                f"(`dacapo-trainers validate` on a run file using {cls.__name__} names why); "
                "narrow the annotations (e.g. Literal[...]) or lower round_trip_examples"
            )

    def test_config_rejects_unknown_keys(self, trainer_config: TrainerConfig) -> None:
        """An unknown key is a :class:`~dacapo_trainers.ConfigError` naming it."""
        data = unstructure_config(trainer_config)
        data["conformance_unknown_key"] = 1
        try:
            structure_config(data)
        except ConfigError as error:
            paths = [issue.path for issue in error.issues]
            if "$.conformance_unknown_key" not in paths:
                _fail(
                    f"an unknown key was refused, but the issues name {paths} instead of "
                    "$.conformance_unknown_key"
                )
            return
        _fail(
            f"structure_config accepted {type(trainer_config).__name__} data with the unknown "
            "key 'conformance_unknown_key'; typos in config files must be errors. Declare the "
            "config with @attrs.define(kw_only=True) and no **kwargs, and do not override "
            "__init__"
        )

    def test_config_builds_its_trainer(self, trainer_config: TrainerConfig) -> None:
        """``build_trainer()`` returns a fresh :class:`~dacapo_trainers.Trainer` at iteration 0."""
        cls = type(trainer_config)
        trainer_class = cls.resolve_trainer_type()
        if not (isinstance(trainer_class, type) and issubclass(trainer_class, Trainer)):
            _fail(
                f"{cls.__name__}.trainer_type resolves to {trainer_class!r}; it must be a "
                "subclass of dacapo_trainers.Trainer (or a 'module:Class' string naming one)"
            )
        trainer = trainer_config.build_trainer()
        try:
            if not isinstance(trainer, trainer_class):
                _fail(f"build_trainer() returned {trainer!r}, not a {trainer_class.__name__}")
            expected = {
                "iteration": 0,
                "batch_size": trainer_config.batch_size,
                "learning_rate": trainer_config.learning_rate,
            }
            for attribute, value in expected.items():
                if getattr(trainer, attribute, None) != value:
                    _fail(
                        f"a new {type(trainer).__name__} has {attribute} = "
                        f"{getattr(trainer, attribute, None)!r}, expected {value!r}: call "
                        "super().__init__(trainer_config) in __init__"
                    )
        finally:
            trainer.close()
