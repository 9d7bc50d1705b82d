"""``TrainerConformance``: the whole Trainer contract as pytest tests, for any trainer config.

Nothing here imports torch at module import (pytest loads this package in every session); the
tests import it when they run.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import attrs
import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .. import _import_probe
from .._config import ArchitectureConfig, DatasetConfig, TaskConfig, TrainerConfig
from .._config_rules import config_class_problems
from .._converter import ConfigConverter, structure_config, unstructure_config
from .._discovery import CORE_DISTRIBUTION, ENTRY_POINT_GROUP, PluginState, core_version
from .._errors import ConfigError
from .._registry import Registry, default_registry
from .._trainer import Trainer
from .._zarr_io import ZarrContainer
from . import _checks, _problem
from ._round_trip import config_data, round_trip_problem

if TYPE_CHECKING:
    from .._protocols import Dataset, Model, Task


def _fail(message: str) -> NoReturn:
    """Fail the current test with ``message`` alone: it is the advice, no traceback needed."""
    pytest.fail(message, pytrace=False)
    raise AssertionError(message)  # not reached: pytest.fail raises


@contextlib.contextmanager
def _calling(trainer: object, what: str) -> Iterator[None]:
    """Note on any exception that it came from the trainer's ``what``, then let it through."""
    try:
        yield
    except Exception as error:
        error.add_note(f"(raised by {type(trainer).__name__}.{what} in a conformance check)")
        raise


@attrs.define
class _Setup:
    """A trainer ready to iterate on the toy problem."""

    trainer: Trainer
    model: Model
    task: Task
    optimizer: Any
    device: Any


class TrainerConformance:
    """Subclass it in your tests, set :attr:`config`, and pytest runs the Trainer contract.

    Example (``tests/test_conformance.py`` of a plugin)::

        from dacapo_trainers.testing import TrainerConformance
        from my_trainer import MyTrainerConfig


        class TestMyTrainer(TrainerConformance):
            config = MyTrainerConfig(name="conformance", batch_size=2, learning_rate=3e-3)
            snapshot_config = MyTrainerConfig(
                name="conformance", batch_size=2, learning_rate=3e-3, snapshot_interval=1
            )

    The checks train on a toy problem the kit writes itself (a 40³ synthetic volume of cells
    from :func:`dacapo_trainers.reference.make_demo_data`, a tiny reference
    :class:`~dacapo_trainers.reference.UNetConfig` and the
    :class:`~dacapo_trainers.reference.AffinitiesTaskConfig`), on the CPU, seeded. Pick a
    :attr:`config` that learns fast: a learning rate of about 1e-3 to 3e-3, no long warmup.

    The class attributes below tune the checks; the ``make_*`` methods can be overridden to
    train on another problem (e.g. a task or dataset type your trainer needs).
    """

    #: The trainer config under test (an instance of your TrainerConfig subclass). Required.
    config: ClassVar[TrainerConfig | None] = None
    #: A config of the same type that writes a snapshot within :attr:`snapshot_iterations`
    #: iterations (e.g. ``snapshot_interval=1``; a :class:`~dacapo_trainers.BatchTrainer`
    #: writes one at iteration 0 whatever the interval); None skips the snapshot check.
    snapshot_config: ClassVar[TrainerConfig | None] = None
    #: Iterations run before the snapshot container must hold a snapshot.
    snapshot_iterations: ClassVar[int] = 3
    #: Whether the trainer refuses datasets without ground truth (False: the check is skipped).
    requires_gt: ClassVar[bool] = True
    #: Whether a run resumed from a checkpoint repeats an uninterrupted run's losses exactly.
    exact_resume: ClassVar[bool] = False
    #: Iterations of the loss check, and the number of first and last losses it compares.
    loss_iterations: ClassVar[int] = 80
    loss_window: ClassVar[int] = 10
    #: The mean of the last losses must be below this fraction of the mean of the first ones.
    loss_ratio: ClassVar[float] = 0.9
    #: Seed of the model initialisation, the global generators and ``trainer.seed``.
    seed: ClassVar[int] = 0
    #: The torch device the checks train on.
    device: ClassVar[str] = "cpu"
    #: Modules that selecting the type and validating a config must not import.
    heavy_modules: ClassVar[tuple[str, ...]] = _import_probe.HEAVY_MODULES
    #: torch's intra-op threads during each check (restored after it); None leaves them. One
    #: thread is fastest for the tiny toy model and keeps parallel CI jobs from oversubscribing.
    torch_threads: ClassVar[int | None] = 1
    #: Seconds to wait for threads and processes to end after ``__exit__`` before failing.
    cleanup_timeout: ClassVar[float] = 10.0
    #: Config values hypothesis draws for the JSON round-trip property test.
    round_trip_examples: ClassVar[int] = 60

    # -- the toy problem (override to train on something else) ----------------------------------

    def make_architecture_config(self) -> ArchitectureConfig:
        """The architecture of the toy problem (a tiny reference U-Net)."""
        return _problem.toy_architecture_config()

    def make_task_config(self) -> TaskConfig:
        """The task of the toy problem (affinities)."""
        return _problem.toy_task_config()

    def write_data(self, folder: Path) -> Path:
        """Write the toy data into ``folder`` (once per test class); returns its location."""
        return _problem.write_toy_data(folder)

    def make_dataset_configs(self, data: Path) -> list[DatasetConfig]:
        """Training datasets with ground truth, on the data :meth:`write_data` wrote."""
        return [_problem.toy_dataset_config(data)]

    def make_dataset_configs_without_gt(self, data: Path) -> list[DatasetConfig]:
        """Datasets without ground truth, which a trainer that :attr:`requires_gt` refuses."""
        return [_problem.toy_dataset_config(data, with_gt=False)]

    # -- fixtures (``conformance_data`` comes from the pytest plugin) ----------------------------

    @pytest.fixture(autouse=True)  # type: ignore[misc]
    def _torch_threads(self) -> Iterator[None]:
        """Run each check with :attr:`torch_threads` torch threads."""
        if self.torch_threads is None:
            yield
            return
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.torch_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    @pytest.fixture  # type: ignore[misc]
    def trainer_config(self) -> TrainerConfig:
        """:attr:`config`, checked to be a TrainerConfig."""
        return self._checked_config(self.config, "config")

    # -- discovery and lazy imports --------------------------------------------------------------

    def test_entry_point_is_declared(self, trainer_config: TrainerConfig) -> None:
        """The type name is an entry point of the group ``dacapo_trainers``, installed once."""
        name = type(trainer_config).type_name()
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        module = type(trainer_config).__module__.split(".")[0]
        if not found:
            _fail(
                f"no installed entry point is named {name!r} in the group "
                f"{ENTRY_POINT_GROUP!r}: add\n\n    [project.entry-points.{ENTRY_POINT_GROUP}]\n"
                f'    {name} = "{module}.plugin"\n\nto pyproject.toml (the value is the module '
                "implementing the hook dacapo_trainers_trainer_configs) and install the package "
                "(pip install -e .) so that its metadata is current"
            )
        distributions = sorted({ep.dist.metadata["Name"] for ep in found if ep.dist is not None})
        if len(distributions) > 1:
            _fail(
                f"the entry point {name!r} is installed by {len(distributions)} distributions "
                f"({', '.join(distributions)}); uninstall all but one, or rename the class"
            )

    def test_registry_loads_the_config_class(self, trainer_config: TrainerConfig) -> None:
        """A fresh :class:`~dacapo_trainers.Registry` selects the type and returns this class."""
        cls = type(trainer_config)
        name = cls.type_name()
        registry = Registry()
        loaded = registry.get(name, kind="trainer")
        record = next(r for r in registry.records() if r.type_name == name)
        if record.state is not PluginState.OK:
            _fail(f"the registry lists {name!r} as {record.state.value}: {record.error}")
        if loaded is not cls:
            _fail(
                f"the registry loaded {name!r} as {loaded.__module__}.{loaded.__qualname__}, "
                f"but the config under test is {cls.__module__}.{cls.__qualname__}: is the "
                "package importable twice (an installed copy and a source folder on sys.path)? "
                "Install it once, editable (pip install -e .), and import it by its package name"
            )

    def test_selecting_the_type_imports_nothing_heavy(self, trainer_config: TrainerConfig) -> None:
        """Selecting the type and validating the config imports no torch (in a new interpreter).

        ``dacapo-trainers plugins``, ``validate`` and ``show`` must stay fast and work where
        torch is broken; only building and running the trainer may import it.
        """
        name = type(trainer_config).type_name()
        data = unstructure_config(trainer_config)
        try:
            found = _import_probe.heavy_imports(name, data, self.heavy_modules)
        except _import_probe.ProbeError as error:
            _fail(
                f"selecting {name!r} and structuring the config in a fresh interpreter "
                f"failed:\n{error}"
            )
        if found:
            module, frames = next(iter(sorted(found.items())))
            chain = "\n".join(f"    {frame}" for frame in frames) or "    (no frames recorded)"
            _fail(
                f"selecting {name!r} and validating its config imported {module} (also: "
                f"{', '.join(sorted(found)) or 'nothing else'}), through:\n{chain}\n"
                f"The entry-point module and the config module must not import {module} at "
                "top level: set trainer_type to a 'package.module:TrainerClass' string, import "
                f"{module} only in the trainer's module, and import it there (or inside "
                "functions) only"
            )

    def test_requires_a_compatible_core(self, trainer_config: TrainerConfig) -> None:
        """The distribution declares a ``dacapo-trainers`` requirement the installed core meets."""
        name = type(trainer_config).type_name()
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        dists = [ep.dist for ep in found if ep.dist is not None]
        if not dists:
            pytest.skip(f"no installed distribution declares {name!r} (see the entry-point check)")
        dist = dists[0]
        installed = core_version()
        if canonicalize_name(dist.metadata["Name"]) == CORE_DISTRIBUTION:
            return
        requirements = []
        for line in dist.requires or []:
            with contextlib.suppress(InvalidRequirement):
                requirement = Requirement(line)
                if canonicalize_name(requirement.name) == CORE_DISTRIBUTION:
                    requirements.append(requirement)
        core = Version(installed)
        suggestion = f"dacapo-trainers>={core.major}.{core.minor},<{_next_breaking(core)}"
        if not requirements:
            _fail(
                f"{dist.metadata['Name']} does not declare a dependency on {CORE_DISTRIBUTION}; "
                f'add "{suggestion}" to [project] dependencies so that pip refuses a core whose '
                "Trainer contract it was not written for"
            )
        for requirement in requirements:
            if not requirement.specifier.contains(core, prereleases=True):
                _fail(
                    f"{dist.metadata['Name']} requires {requirement} but {CORE_DISTRIBUTION} "
                    f"{installed} is installed (the registry marks it incompatible); test "
                    f"against a matching core, or widen the range to e.g. {suggestion}"
                )

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

    # -- datasets --------------------------------------------------------------------------------

    def test_can_train_on_datasets_with_gt(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """``can_train`` accepts the toy datasets and ``cannot_train_reason`` gives None."""
        trainer = trainer_config.build_trainer()
        datasets = self._datasets(conformance_data)
        try:
            with _calling(trainer, "cannot_train_reason(datasets)"):
                reason = trainer.cannot_train_reason(datasets)
            with _calling(trainer, "can_train(datasets)"):
                accepted = trainer.can_train(datasets)
        finally:
            trainer.close()
        name = type(trainer).__name__
        if reason is not None or not accepted:
            _fail(
                f"{name} refused the toy datasets (raw, gt and mask of one 40³ volume): "
                f"can_train gave {accepted!r}, cannot_train_reason gave {reason!r}. If it needs "
                "other data, override make_dataset_configs() in the test class"
            )

    def test_cannot_train_without_gt(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """Datasets without gt are refused, with a reason from ``cannot_train_reason``."""
        if not self.requires_gt:
            pytest.skip("requires_gt = False: this trainer trains without ground truth")
        trainer = trainer_config.build_trainer()
        configs = self.make_dataset_configs_without_gt(conformance_data)
        datasets = [config.build() for config in configs]
        try:
            with _calling(trainer, "cannot_train_reason(datasets)"):
                reason = trainer.cannot_train_reason(datasets)
            with _calling(trainer, "can_train(datasets)"):
                accepted = trainer.can_train(datasets)
        finally:
            trainer.close()
        name = type(trainer).__name__
        if accepted:
            _fail(
                f"{name}.can_train accepted datasets without gt; a trainer that needs ground "
                "truth must refuse them (or set requires_gt = False in the test class)"
            )
        if not isinstance(reason, str) or not reason.strip():
            _fail(
                f"{name}.can_train refused datasets without gt, but cannot_train_reason gave "
                f"{reason!r}; override cannot_train_reason to return one sentence a user can act "
                "on (e.g. \"dataset 'cells' has no gt\"); can_train then follows from it"
            )

    # -- iterating -------------------------------------------------------------------------------

    def test_iterate_yields_consecutive_stats(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """``iterate(3)`` then ``iterate(2)`` yield iterations 0..4, as DaCapo calls it."""
        setup = self._setup(trainer_config, conformance_data)
        with setup.trainer:
            self._iterate(setup, 3)
            self._iterate(setup, 2)
        if setup.trainer.iteration != 5:
            _fail(
                f"after iterate(3) and iterate(2) trainer.iteration is "
                f"{setup.trainer.iteration}, expected 5"
            )

    def test_iteration_can_be_set_to_resume(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """With ``trainer.iteration = 7`` set before ``iterate(2)``, it yields 7 and 8."""
        setup = self._setup(trainer_config, conformance_data)
        setup.trainer.iteration = 7  # as the driver does when it resumes from a checkpoint
        with setup.trainer:
            self._iterate(setup, 2)
        if setup.trainer.iteration != 9:
            _fail(
                f"after trainer.iteration = 7 and iterate(2), trainer.iteration is "
                f"{setup.trainer.iteration}, expected 9"
            )

    def test_loss_falls_on_the_toy_problem(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """The mean of the last losses is below :attr:`loss_ratio` x the mean of the first."""
        setup = self._setup(trainer_config, conformance_data)
        with setup.trainer:
            losses = self._iterate(setup, self.loss_iterations)
        problem = _checks.loss_fall_problem(losses, self.loss_window, self.loss_ratio)
        if problem is not None:
            _fail(f"{type(setup.trainer).__name__}: {problem}")

    def test_writes_snapshots(self, conformance_data: Path, tmp_path: Path) -> None:
        """With :attr:`snapshot_config`, snapshots land in the container and are reported."""
        if self.snapshot_config is None:
            pytest.skip(
                "snapshot_config is None: set it to a config that writes snapshots (e.g. "
                "snapshot_interval=1) to check them, or leave it None if the trainer writes none"
            )
        config = self._checked_config(self.snapshot_config, "snapshot_config")
        container = ZarrContainer(tmp_path / "snapshots.zarr")
        setup = self._setup(config, conformance_data, container)
        reported: list[tuple[int, Any]] = []
        setup.trainer.add_snapshot_listener(lambda i, where: reported.append((i, where)))
        with setup.trainer:
            self._iterate(setup, self.snapshot_iterations)
        name = type(setup.trainer).__name__
        arrays = _checks.zarr_arrays(container.container)
        if not arrays:
            _fail(
                f"{name} with snapshot_config wrote no array to the snapshot container "
                f"{container.container} in {self.snapshot_iterations} iterations; write the "
                "snapshot arrays into the snapshot_container given to build_batch_provider, "
                "as DaCapo does from iteration 0 on (e.g. with dacapo_trainers.write_array("
                "snapshot_container, f'{iteration}/volumes/raw', ...); a BatchTrainer does "
                "it for you), or raise snapshot_iterations"
            )
        if not reported:
            _fail(
                f"{name} wrote snapshots ({arrays[0][0]}, ...) but did not report them; call "
                "self.report_snapshot(iteration, snapshot_container) after writing each one, so "
                "that observers hear of it (hook dacapo_trainers_train_snapshot_written)"
            )
        placeless = [path for path, attrs_ in arrays if not _has_geometry(attrs_)]
        if placeless:
            _fail(
                f"{name} wrote snapshot arrays without a voxel size ({', '.join(placeless[:3])}"
                "); write them with dacapo_trainers.write_array(..., voxel_size=...) so that "
                "viewers place raw, target and prediction on the same grid"
            )

    # -- cleanup ---------------------------------------------------------------------------------

    def test_exit_releases_threads_and_processes(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """After ``with trainer:`` ends normally, no thread or child process it started lives."""
        self._check_cleanup(trainer_config, conformance_data, raise_inside=False)

    def test_exit_releases_threads_and_processes_after_an_error(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """After the body of ``with trainer:`` raises mid-``iterate()``, nothing is left."""
        self._check_cleanup(trainer_config, conformance_data, raise_inside=True)

    # -- the whole run ---------------------------------------------------------------------------

    def test_trains_and_resumes_through_the_driver(
        self, trainer_config: TrainerConfig, conformance_data: Path, tmp_path: Path
    ) -> None:
        """:func:`dacapo_trainers.train` runs 4 iterations, then resumes from the checkpoint to 6.

        This stores ``trainer.state_dict()`` in real checkpoints, loaded with
        ``torch.load(weights_only=True)``. With :attr:`exact_resume`, the resumed losses must
        equal an uninterrupted run's.
        """
        from .._driver import train
        from .._observers import STATS_FILE, read_stats
        from .._run_config import RunConfig

        run = RunConfig(
            name="conformance",
            trainer_config=trainer_config,
            architecture_config=self.make_architecture_config(),
            task_config=self.make_task_config(),
            datasets=self.make_dataset_configs(conformance_data),
            num_iterations=4,
            checkpoint_interval=2,
            output=tmp_path / "run",
            seed=self.seed,
            device=self.device,
        )
        name = type(trainer_config).__name__
        result = train(run, registry=Registry(), quiet=True)
        if result.worker_status is not None:
            pytest.skip(
                f"{name} launched worker processes (exit status {result.worker_status}); "
                "not checked"
            )
        if result.iteration != 4:
            _fail(f"train() with num_iterations=4 stopped at iteration {result.iteration}")
        try:
            resumed = train(attrs.evolve(run, num_iterations=6), registry=Registry(), quiet=True)
        except Exception as error:
            if "weights_only" in str(error) or "Unpickl" in type(error).__name__:
                error.add_note(
                    f"{name}.state_dict() must hold only tensors, numbers, strings, lists, "
                    "tuples and dicts: checkpoints are loaded with torch.load(weights_only=True)"
                )
            error.add_note(f"(raised while resuming {name} from its checkpoint of iteration 4)")
            raise
        if resumed.resumed_from != 4 or resumed.iteration != 6:
            _fail(
                f"resuming to num_iterations=6 went from {resumed.resumed_from} to "
                f"{resumed.iteration}; expected from 4 to 6"
            )
        stats = read_stats(Path(run.output or "") / STATS_FILE)
        if [s.iteration for s in stats] != list(range(6)):
            _fail(
                f"stats.jsonl of the resumed run lists iterations {[s.iteration for s in stats]}"
                ", expected 0..5"
            )
        if not self.exact_resume:
            return
        straight = attrs.evolve(run, num_iterations=6, output=tmp_path / "straight")
        train(straight, registry=Registry(), quiet=True)
        expected = [s.loss for s in read_stats(tmp_path / "straight" / STATS_FILE)]
        got = [s.loss for s in stats]
        if got != expected:
            _fail(
                f"exact_resume: the losses of a run resumed at iteration 4 differ from an "
                f"uninterrupted run's:\n    resumed       {got}\n    uninterrupted {expected}\n"
                "Put every random generator and schedule the trainer owns into state_dict() "
                "and restore it in load_state_dict() (the driver calls it after "
                "build_batch_provider), draw nothing from unseeded sources, or set "
                "exact_resume = False"
            )

    # -- helpers ---------------------------------------------------------------------------------

    def _checked_config(self, config: object, attribute: str) -> TrainerConfig:
        if config is None:
            _fail(
                f"set {attribute} on {type(self).__name__}: a config of your trainer, e.g. "
                f'{attribute} = MyTrainerConfig(name="conformance", batch_size=2, '
                "learning_rate=3e-3)"
            )
        if not isinstance(config, TrainerConfig):
            _fail(
                f"{type(self).__name__}.{attribute} is {config!r}; it must be an instance of a "
                "dacapo_trainers.TrainerConfig subclass"
            )
        assert isinstance(config, TrainerConfig)
        return config

    def _datasets(self, data: Path) -> list[Dataset]:
        return [config.build() for config in self.make_dataset_configs(data)]

    def _setup(
        self,
        config: TrainerConfig,
        data: Path,
        snapshot_container: ZarrContainer | None = None,
    ) -> _Setup:
        from .._driver import resolve_device, seed_everything

        seed_everything(self.seed)
        device = resolve_device(self.device)
        task = self.make_task_config().build()
        architecture = self.make_architecture_config().build()
        create_model = getattr(task.predictor, "create_model", None)
        model = create_model(architecture) if create_model is not None else architecture
        model = model.to(device)
        trainer = config.build_trainer()
        trainer.seed = self.seed
        try:
            with _calling(trainer, "create_optimizer(model)"):
                optimizer = trainer.create_optimizer(model)
            with _calling(trainer, "build_batch_provider(datasets, model, task, container)"):
                trainer.build_batch_provider(self._datasets(data), model, task, snapshot_container)
        except BaseException:
            trainer.close()
            raise
        return _Setup(trainer, model, task, optimizer, device)

    def _iterate(self, setup: _Setup, n: int) -> list[float]:
        trainer = setup.trainer
        start = trainer.iteration
        checker = _checks.IterationChecker(trainer, start)
        with _calling(trainer, f"iterate({n}, model, optimizer, device)"):
            for stats in trainer.iterate(n, setup.model, setup.optimizer, setup.device):
                problem = checker.check(stats)
                if problem is not None:
                    _fail(problem)
        problem = checker.count_problem(n, start)
        if problem is not None:
            _fail(problem)
        return checker.losses

    def _check_cleanup(self, config: TrainerConfig, data: Path, *, raise_inside: bool) -> None:
        threads = _checks.thread_idents()
        processes = set(_checks.child_processes())
        setup = self._setup(config, data)
        trainer = setup.trainer
        iterator: Iterator[Any] | None = None

        class _Stop(Exception):
            pass

        with contextlib.suppress(_Stop), trainer:
            iterator = iter(trainer.iterate(3, setup.model, setup.optimizer, setup.device))
            next(iterator)
            if raise_inside:
                raise _Stop  # leaves the generator suspended, as an error in a hook would
            for _ in iterator:
                pass
        # Keep `iterator` alive: __exit__ must clean up without the generator's finalizer.
        deadline = time.monotonic() + self.cleanup_timeout
        while True:
            left_threads = _checks.leftover_threads(threads)
            left_processes = {
                pid: text for pid, text in _checks.child_processes().items() if pid not in processes
            }
            if (not left_threads and not left_processes) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        how = "raised while iterate() was suspended" if raise_inside else "ended normally"
        problem = _checks.leftovers_problem(
            type(trainer).__name__, left_threads, left_processes, how
        )
        del iterator
        with _calling(trainer, "close() called a second time"):
            trainer.close()
        if problem is not None:
            _fail(problem)


def _has_geometry(attributes: dict[str, Any]) -> bool:
    return any(key in attributes for key in ("voxel_size", "resolution"))


def _next_breaking(version: Version) -> str:
    """The first version with a possibly different contract: the next minor for 0.x."""
    if version.major == 0:
        return f"0.{version.minor + 1}"
    return f"{version.major + 1}"


def conformance_tests(config: TrainerConfig, **attributes: Any) -> type[TrainerConformance]:
    """A :class:`TrainerConformance` subclass for ``config``: the suite in one line.

    ``attributes`` set the class attributes (``snapshot_config=...``, ``exact_resume=True``,
    ...). Assign the result to a name pytest collects::

        TestMyTrainer = conformance_tests(MyTrainerConfig(name="t", batch_size=2,
                                                          learning_rate=3e-3))
    """
    unknown = sorted(set(attributes) - set(_TUNABLE))
    if unknown:
        raise TypeError(
            f"conformance_tests() got unknown attribute(s) {', '.join(unknown)}; known: "
            f"{', '.join(_TUNABLE)}"
        )
    name = f"Test{type(config).__name__}Conformance"
    return type(name, (TrainerConformance,), {"config": config, **attributes})


_TUNABLE: Sequence[str] = (
    "snapshot_config",
    "snapshot_iterations",
    "requires_gt",
    "exact_resume",
    "loss_iterations",
    "loss_window",
    "loss_ratio",
    "seed",
    "device",
    "heavy_modules",
    "torch_threads",
    "cleanup_timeout",
    "round_trip_examples",
)
