"""The Trainer contract: DaCapo's documented ``Trainer`` API, plus a context manager and reasons."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import torch

    from ._config import TrainerConfig
    from ._protocols import Dataset, LocalContainerIdentifier, Model, Task
    from ._stats import TrainingIterationStats

SnapshotListener = Callable[[int, "LocalContainerIdentifier"], None]


@attrs.frozen
class RunLaunch:
    """The run a launcher starts its workers on: what :meth:`Trainer.launch_run` receives.

    :param run_data: the run config as ``run_config.json`` holds it (``output`` absolute).
    :param run_file: a file holding ``run_data`` that the workers can read: the output
        folder's ``run_config.json`` where this process claimed the folder, else a copy the
        driver keeps for the duration of the launch.
    :param output: the run's output folder (absolute).
    :param output_claimed: whether this process holds the output folder's lock (then the
        workers it starts write under it); False where the trainer's
        :attr:`~Trainer.is_output_process` said no (a machine of a multi-machine run, which
        learns whether it is the first one only from the rendezvous: there the worker of
        rank 0 claims the folder itself).
    :param quiet: no progress bar.
    """

    run_data: Mapping[str, Any]
    run_file: Path
    output: Path
    output_claimed: bool
    quiet: bool = False

    @property
    def arguments(self) -> list[str]:
        """The ``dacapo-trainers`` arguments that train this run: ``train RUN_FILE [--quiet]``."""
        return ["train", str(self.run_file), *(["--quiet"] if self.quiet else [])]


class Trainer(abc.ABC):
    """Base class of every trainer; DaCapo's ``Trainer`` API.

    Subclass it for full control of the training loop; a trainer that trains one batch per
    iteration subclasses :class:`~dacapo_trainers.BatchTrainer` instead and writes only how it
    makes batches.

    Life cycle, as the training driver runs it::

        trainer = config.build_trainer()          # Trainer(config)
        trainer.seed = run.seed                   # before anything draws random numbers
        reason = trainer.cannot_train_reason(datasets)   # None: fine
        reason = trainer.cannot_train_model_reason(datasets, model, task)  # model built
        optimizer = trainer.create_optimizer(model)
        trainer.build_batch_provider(datasets, model, task, snapshot_container)
        trainer.load_state_dict(state)            # resuming only: the checkpoint's state,
        trainer.iteration = saved_iteration       # after create_optimizer and the provider
        with trainer:                              # owns workers until __exit__
            for stats in trainer.iterate(n, model, optimizer, device):
                ...                                # stats.iteration == trainer.iteration - 1

    Attributes the driver sets and a trainer reads:

    * ``seed`` (``int | None``): the seed of the trainer's own randomness (crops,
      augmentations), set to the run's ``seed`` before :meth:`create_optimizer` and
      :meth:`build_batch_provider`. Exact resume depends on it: a trainer draws its random
      choices from generators seeded with it and saves their state in :meth:`state_dict`.
      None (a trainer built outside the driver) means "draw a seed from torch's global
      generator".
    * ``iteration`` (``int``): the number of iterations completed; set on resume.

    Invariants a trainer keeps:

    * ``iteration`` is the number of iterations completed; each yielded
      :class:`~dacapo_trainers.TrainingIterationStats` has ``iteration`` equal to the value of
      ``trainer.iteration`` before that step, and the values are consecutive. The driver sets
      ``iteration`` when it resumes from a checkpoint, before calling :meth:`iterate`.
    * ``iterate(n, ...)`` runs ``n`` steps (or fewer if the caller stops consuming it).
    * Anything needing cleanup (processes, threads, files) is released by :meth:`__exit__`,
      also when the body raised.

    A trainer that needs state beyond ``iteration`` to resume exactly (e.g. a learning-rate
    scheduler, its own random generators) exposes it through :meth:`state_dict` and
    :meth:`load_state_dict`; the driver stores it in every checkpoint and, on resume, calls
    :meth:`load_state_dict` after :meth:`create_optimizer` and :meth:`build_batch_provider`.
    """

    #: The number of iterations completed (set by the driver when it resumes).
    iteration: int
    #: The number of samples in one batch (from the config).
    batch_size: int
    #: The (initial) learning rate (from the config).
    learning_rate: float
    #: The seed of the trainer's own randomness, set by the driver to the run's ``seed``
    #: before :meth:`create_optimizer` and :meth:`build_batch_provider`; None: draw one from
    #: torch's global generator. Exact resume depends on it.
    seed: int | None

    def __init__(self, trainer_config: TrainerConfig) -> None:
        self.trainer_config = trainer_config
        self.iteration = 0
        self.batch_size = trainer_config.batch_size
        self.learning_rate = trainer_config.learning_rate
        self.seed = None
        self._snapshot_listeners: list[SnapshotListener] = []

    # -- DaCapo's API ------------------------------------------------------------------------

    @abc.abstractmethod
    def create_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """Create the optimizer for ``model`` (and any learning-rate schedule the trainer uses)."""

    @abc.abstractmethod
    def iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        """Run ``num_iterations`` training steps, yielding the stats of each."""

    def can_train(self, datasets: Sequence[Dataset]) -> bool:
        """Whether this trainer can train on ``datasets``.

        The default answers from :meth:`cannot_train_reason`; override that one to give a
        reason along with the refusal.
        """
        return self.cannot_train_reason(datasets) is None

    @abc.abstractmethod
    def build_batch_provider(
        self,
        datasets: Sequence[Dataset],
        model: Model,
        task: Task,
        snapshot_container: LocalContainerIdentifier | None = None,
    ) -> None:
        """Set up the data pipeline from ``datasets`` for ``model`` and ``task``.

        Snapshots (raw, gt, target, weight, prediction of a batch) go to
        ``snapshot_container`` when the trainer is configured to write them. Raise
        ``ValueError`` (or :class:`~dacapo_trainers.CannotTrainError`) for data that only now,
        with the model known, turns out unusable (e.g. smaller than the model input); the
        driver reports it like a refusal of :meth:`cannot_train_reason`.
        """

    # -- additions ---------------------------------------------------------------------------

    def cannot_train_reason(self, datasets: Sequence[Dataset]) -> str | None:
        """Why this trainer cannot train on ``datasets``, or None if it can.

        The reason is one sentence a user can act on ("dataset 'cells' has no gt").
        """
        return None

    def cannot_train_model_reason(
        self, datasets: Sequence[Dataset], model: Model, task: Task
    ) -> str | None:
        """Why this trainer cannot train ``model`` for ``task`` on ``datasets``, or None.

        The checks that need the model: a dataset smaller than the model's input, gt off the
        grid the model predicts on. The driver calls it once the model is built (after
        :meth:`cannot_train_reason` accepted the datasets) and before it writes anything, and
        ``validate --inputs`` calls it too, so a user learns of the problem before a run
        folder exists. A trainer whose :meth:`build_batch_provider` can refuse data for such
        a reason says it here as well; the default finds nothing.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint for an exact resume (beyond model, optimizer, iteration)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`.

        The driver calls it after :meth:`create_optimizer` and :meth:`build_batch_provider`
        (and before setting :attr:`iteration` and entering the context).
        """

    def add_snapshot_listener(self, listener: SnapshotListener) -> None:
        """Call ``listener(iteration, container)`` each time this trainer writes a snapshot."""
        self._snapshot_listeners.append(listener)

    def report_snapshot(self, iteration: int, container: LocalContainerIdentifier) -> None:
        """Trainers call this after writing a snapshot; it notifies the listeners."""
        for listener in self._snapshot_listeners:
            listener(iteration, container)

    # -- process topology (overridden by trainers that run several processes) ----------------

    @property
    def world_size(self) -> int:
        """How many processes train this run together (1: this one alone, the default).

        A trainer whose processes step together (data-parallel ranks) says how many there
        are once it knows (after :meth:`launch_run` joined them). Above 1 the driver treats
        the run as multi-process: a SIGINT/SIGTERM stops every rank at once (the ranks could
        not agree on a last step without a collective), and :meth:`barrier` brackets each
        checkpoint. (A trainer that leaves this alone but overrides :meth:`barrier` is treated
        as multi-process, as before this declaration existed.)
        """
        return 1

    @property
    def is_output_process(self) -> bool:
        """Whether this process writes outputs (checkpoints, stats, snapshots, progress).

        True for single-process trainers; in data-parallel training only rank 0. A launcher
        that answers False does not claim the output folder (see :class:`RunLaunch`).
        """
        return True

    def barrier(self) -> None:
        """Wait until every process of this training has reached this point (no-op here)."""

    def launch_run(self, launch: RunLaunch) -> int | None:
        """Start this training's worker processes, if this process is only a launcher.

        The driver calls it after claiming the output folder and before anything else of
        training. Return None to train in this process, or the workers' exit status after
        training ``launch`` in each of them. The default calls :meth:`launch` with
        ``launch.arguments`` (which returns None unless a trainer overrides it).
        """
        return self.launch(launch.arguments)

    def launch(self, argv: Sequence[str]) -> int | None:
        """The former launcher interface, kept for trainers that override it: run ``argv``
        (the ``dacapo-trainers`` arguments of this run) in each worker and return their
        exit status, or return None to train here. Override :meth:`launch_run` instead.
        """
        return None

    def close(self) -> None:
        """Release workers, threads and files. Safe to call more than once."""

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
