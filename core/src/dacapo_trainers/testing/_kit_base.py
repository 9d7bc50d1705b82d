"""The base of the conformance kit's check classes: what the checks are tuned with, the toy
problem, the fixtures, and the helpers that set a trainer up the way the driver does.

Nothing here imports torch at module import (pytest loads this package in every session); the
checks import it when they run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import attrs
import pytest

from .._arrays._zarr_io import ZarrContainer
from .._contract._config import ArchitectureConfig, DatasetConfig, TaskConfig, TrainerConfig
from .._contract._models import build_model
from .._contract._trainer import Trainer
from .._plugins import _import_probe
from . import _checks, _problem

if TYPE_CHECKING:
    from .._contract._protocols import Dataset, Model, Task


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


class KitBase:
    """What every group of checks shares; :class:`~dacapo_trainers.testing.TrainerConformance`
    documents it (plugin authors subclass that class, not this one)."""

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
    #: A run resumed from a checkpoint must repeat an uninterrupted run's losses exactly (the
    #: promise the first-party trainers make). To opt out, give the reason as a string
    #: (``exact_resume = "draws from a sampler that cannot be seeded"``); False alone fails.
    exact_resume: ClassVar[bool | str] = True
    #: Iterations the loss check trains for (on a fresh trainer and model).
    loss_iterations: ClassVar[int] = 80
    #: How many losses the loss check averages at each end: the mean of the last
    #: ``loss_window`` losses is compared with the mean of the first ``loss_window``. Raise it
    #: for a trainer whose loss is noisy from step to step (strong augmentation, small
    #: batches); it must be at most half of :attr:`loss_iterations`.
    loss_window: ClassVar[int] = 10
    #: The mean of the last :attr:`loss_window` losses must be below this fraction of the
    #: mean of the first :attr:`loss_window`.
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
        from .._run._run_inputs import resolve_device, seed_everything

        seed_everything(self.seed)
        device = resolve_device(self.device)
        task = self.make_task_config().build()
        # As the driver builds it, so that the kit checks the model a run trains.
        model = build_model(task, self.make_architecture_config().build()).to(device)
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


def _has_geometry(attributes: dict[str, Any]) -> bool:
    """Whether zarr array attributes place the array (a voxel size under either name)."""
    return any(key in attributes for key in ("voxel_size", "resolution"))
