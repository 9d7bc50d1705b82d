"""Training checks: datasets accepted and refused, ``iterate`` as DaCapo calls it, the loss on
the toy problem, snapshots, cleanup on exit, and a whole run through the driver with a resume.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from .._arrays._zarr_io import ZarrContainer
from .._contract._config import DatasetConfig, TrainerConfig
from .._contract._models import build_model
from .._errors import CannotTrainError
from .._plugins._registry import Registry
from . import _checks, _problem
from ._kit_base import KitBase, _calling, _fail, _has_geometry


class TrainingChecks(KitBase):
    """The checks that build a trainer on the toy problem and train it."""

    # -- datasets --------------------------------------------------------------------------------

    def test_can_train_on_datasets_with_gt(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """``can_train`` accepts the toy datasets and ``cannot_train_reason`` gives None."""
        configs = self.make_dataset_configs(conformance_data)
        name, reason, accepted = self._ask_can_train(trainer_config, configs)
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
        configs = self.make_dataset_configs_without_gt(conformance_data)
        name, reason, accepted = self._ask_can_train(trainer_config, configs)
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

    def test_refuses_data_smaller_than_the_model_before_training(
        self, trainer_config: TrainerConfig, tmp_path: Path
    ) -> None:
        """Data smaller than the model's input is refused by ``cannot_train_reason`` or
        ``cannot_train_model_reason`` (asked before anything is written), not first by
        ``build_batch_provider``; a trainer that pads such data and trains on it passes."""
        if type(self).make_dataset_configs is not KitBase.make_dataset_configs:
            pytest.skip("make_dataset_configs() is overridden: the kit cannot shrink that data")
        task = self.make_task_config().build()
        model = build_model(task, self.make_architecture_config().build())
        if int(model.num_in_channels) != 1:
            pytest.skip("the model does not take the toy data's single raw channel")
        container = _problem.write_small_toy_data(tmp_path, model.input_shape)
        datasets = [_problem.toy_dataset_config(container).build()]
        trainer = trainer_config.build_trainer()
        name = type(trainer).__name__
        try:
            with _calling(trainer, "cannot_train_reason(datasets)"):
                if trainer.cannot_train_reason(datasets) is not None:
                    return
            with _calling(trainer, "cannot_train_model_reason(datasets, model, task)"):
                if trainer.cannot_train_model_reason(datasets, model, task) is not None:
                    return
            try:
                trainer.build_batch_provider(datasets, model, task, None)
            except (ValueError, CannotTrainError) as error:
                _fail(
                    f"{name}.build_batch_provider refused data smaller than the model's input "
                    f"({' '.join(str(error).split())[:300]}), but cannot_train_model_reason "
                    "gave None: train learns of it only after it has written the run folder, "
                    "and validate --inputs passes it. Return that reason from "
                    "cannot_train_model_reason(datasets, model, task) (the driver asks it "
                    "before writing anything), and call it from build_batch_provider"
                )
        finally:
            trainer.close()

    # -- iterating -------------------------------------------------------------------------------

    def test_iterate_yields_consecutive_stats(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """``iterate(3)`` then ``iterate(2)`` yield iterations 0..4, as DaCapo calls it."""
        self._check_chunks(trainer_config, conformance_data, 0, [3, 2])

    def test_iteration_can_be_set_to_resume(
        self, trainer_config: TrainerConfig, conformance_data: Path
    ) -> None:
        """With ``trainer.iteration = 7`` set before ``iterate(2)``, it yields 7 and 8."""
        self._check_chunks(trainer_config, conformance_data, 7, [2])

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
        ``torch.load(weights_only=True)``. Unless :attr:`exact_resume` gives a reason not to,
        the resumed losses must equal an uninterrupted run's.
        """
        exact = _exact_resume(self.exact_resume, type(self).__name__)
        from .._configs._run_config import RunConfig
        from .._outputs._observers import STATS_FILE, read_stats
        from .._run._driver import train

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
        if not exact:
            return
        straight = attrs.evolve(run, num_iterations=6, output=tmp_path / "straight")
        train(straight, registry=Registry(), quiet=True)
        expected = [s.loss for s in read_stats(tmp_path / "straight" / STATS_FILE)]
        got = [s.loss for s in stats]
        if got != expected:
            _fail(
                f"exact_resume: the losses of a run resumed at iteration 4 differ from an "
                f"uninterrupted run's:\n    resumed       {got}\n    uninterrupted {expected}\n"
                f"{_missing_state_advice(trainer_config)}, draw nothing from unseeded sources, "
                'or opt out with the reason: exact_resume = "why a resumed run cannot repeat '
                'its losses"'
            )

    def _ask_can_train(
        self, config: TrainerConfig, dataset_configs: list[DatasetConfig]
    ) -> tuple[str, str | None, bool]:
        """A fresh trainer's answers for these datasets: (trainer class name, reason, can)."""
        trainer = config.build_trainer()
        datasets = [dataset_config.build() for dataset_config in dataset_configs]
        try:
            with _calling(trainer, "cannot_train_reason(datasets)"):
                reason = trainer.cannot_train_reason(datasets)
            with _calling(trainer, "can_train(datasets)"):
                accepted = trainer.can_train(datasets)
        finally:
            trainer.close()
        return type(trainer).__name__, reason, accepted

    def _check_chunks(
        self, config: TrainerConfig, data: Path, start: int, chunks: list[int]
    ) -> None:
        """Iterate in ``chunks`` from ``start``; the stats and the count must follow on."""
        setup = self._setup(config, data)
        if start:
            setup.trainer.iteration = start  # as the driver does when it resumes
        with setup.trainer:
            for n in chunks:
                self._iterate(setup, n)
        expected = start + sum(chunks)
        if setup.trainer.iteration != expected:
            before = f"trainer.iteration = {start} and " if start else ""
            calls = " and ".join(f"iterate({n})" for n in chunks)
            _fail(
                f"after {before}{calls}, trainer.iteration is {setup.trainer.iteration}, "
                f"expected {expected}"
            )

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


def _exact_resume(setting: object, kit_class: str) -> bool:
    """Whether to compare resumed losses: True, or a non-empty reason string to skip it."""
    if setting is True:
        return True
    if isinstance(setting, str) and setting.strip():
        return False
    _fail(
        f"{kit_class}.exact_resume is {setting!r}: a resumed run must repeat an uninterrupted "
        "run's losses (the default, True); to opt out, give the reason as a string, e.g. "
        'exact_resume = "draws augmentations from a sampler that cannot be seeded"'
    )


def _missing_state_advice(config: TrainerConfig) -> str:
    """Where a trainer of ``config`` keeps the state a resume needs."""
    from .._batches._batch_trainer import BatchTrainer

    trainer_class = config.resolve_trainer_type()
    if isinstance(trainer_class, type) and issubclass(trainer_class, BatchTrainer):
        return (
            f"{trainer_class.__name__} is a BatchTrainer: draw every random choice of the "
            "batches from self.generator (the base saves it), and put the rest of the data "
            "state (positions, queues, epochs) into batch_state_dict() and restore it in "
            "load_batch_state_dict()"
        )
    return (
        "Put every random generator and schedule the trainer owns into state_dict() and "
        "restore it in load_state_dict() (the driver calls it after build_batch_provider)"
    )
