"""DaCapo 0.3.5's weights files against this project's: the fixture, the names, the export.

Run by ``nox -s dacapo-parity`` (one environment holding ``dacapo-ml==0.3.5`` and
``dacapo-trainers``); exits 1 when a check fails. Three parts:

1. **The fixture** ``tests/core/dacapo_compat/data/dacapo_weights/``: a DaCapo run folder
   whose weights DaCapo itself wrote. DaCapo 0.3.5 builds the model of the test suite's DaCapo
   run (a CNNectomeUNet with 2 feature maps, one downsampling, input 28³, with AffinitiesTask's
   head of 3 offsets; torch seed 0), DaCapo's DummyTrainer makes its optimizer (RAdam, lr
   1e-3), one step is taken on a fixed random batch with the task's loss, and DaCapo's
   ``LocalWeightsStore.store_weights`` writes ``dacapo_affinities/checkpoints/iterations/1``.
   Beside it, ``names.json``: DaCapo's state-dict keys and shapes for several architecture
   variants (attention, batch norm, transposed convolutions, extra upsampling, 2D).
   ``--write-fixture`` writes both; without it, both are regenerated in a temporary folder
   and must equal the committed ones (tensors exactly).
2. **The names**: for each variant, DaCapo's weights loaded into this project's model through
   the name mapping give the same output as DaCapo's model on the same input.
3. **The export**: a run trained here (DummyTrainer, 2 iterations) is exported with
   ``dacapo-trainers export --dacapo``; DaCapo's own ``LocalWeightsStore.retrieve_weights``
   reads it, DaCapo's model loads it strictly, every tensor equals the checkpoint's, and
   DaCapo's optimizer takes its optimizer state.

With ``--first-loss`` (the session passes it), also checked: DaCapo's loss on the fixture's
net over 8 batches of its GunpowderTrainer (batch size 4, the test suite's DaCapo run), and the
first loss of the same run here started from the fixture, must lie within
:data:`FIRST_LOSS_SDS` standard deviations of DaCapo's batches (both train DaCapo's objective:
binary cross-entropy on logits).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "core" / "dacapo_compat" / "data" / "dacapo_weights"
RUN_NAME = "dacapo_affinities"
NEIGHBORHOOD_3D = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
#: The architecture of the test suite's DaCapo run (tests/core/dacapo_run_files.py), with
#: fewer feature maps (a small file).
BASE = {
    "input_shape": [28, 28, 28],
    "fmaps_out": 2,
    "fmaps_in": 1,
    "num_fmaps": 2,
    "fmap_inc_factor": 2,
    "downsample_factors": [[2, 2, 2]],
}
VARIANTS: dict[str, dict[str, Any]] = {
    "base": BASE,
    "transposed_batch_norm_attention": {
        **BASE,
        "input_shape": [44, 44, 44],
        "downsample_factors": [[2, 2, 2], [2, 2, 2]],
        "constant_upsample": False,
        "batch_norm": True,
        "use_attention": True,
    },
    "upsample_factors": {**BASE, "upsample_factors": [[2, 2, 2]]},
    "2d_same": {
        **BASE,
        "input_shape": [16, 16],
        "downsample_factors": [[2, 2]],
        "padding": "same",
    },
}


#: How far (in DaCapo's batch-to-batch standard deviations) the first loss may lie.
FIRST_LOSS_SDS = 3


def neighborhood(config: dict[str, Any]) -> list[list[int]]:
    dims = len(config["input_shape"])
    return NEIGHBORHOOD_3D if dims == 3 else [[1, 0], [0, 1]]


def dacapo_model(config: dict[str, Any]) -> Any:
    """DaCapo's Model (architecture and AffinitiesTask head) for an architecture config."""
    from dacapo.experiments.architectures import CNNectomeUNetConfig
    from dacapo.experiments.tasks import AffinitiesTaskConfig
    from funlib.geometry import Coordinate

    fields = {
        key: (
            [Coordinate(v) for v in value]
            if key in ("downsample_factors", "upsample_factors")
            else Coordinate(value)
            if key == "input_shape"
            else value
        )
        for key, value in config.items()
    }
    architecture_config = CNNectomeUNetConfig(name="unet", **fields)
    task_config = AffinitiesTaskConfig(
        name="affs", neighborhood=[Coordinate(o) for o in neighborhood(config)]
    )
    task = task_config.task_type(task_config)
    return task, task.create_model(architecture_config.architecture_type(architecture_config))


def our_model(config: dict[str, Any]) -> Any:
    from dacapo_trainers.reference import AffinitiesTaskConfig, CNNectomeUNetConfig

    task = AffinitiesTaskConfig(name="affs", neighborhood=neighborhood(config)).build()
    return task.predictor.create_model(CNNectomeUNetConfig(name="unet", **config).build())


def write_fixture(folder: Path) -> None:
    """The DaCapo run folder and names.json (module docstring, part 1)."""
    from dacapo.experiments.trainers import DummyTrainerConfig
    from dacapo.store.local_weights_store import LocalWeightsStore

    torch.manual_seed(0)
    task, model = dacapo_model(BASE)
    trainer_config = DummyTrainerConfig(
        name="dummy", batch_size=1, learning_rate=1e-3, mirror_augment=False
    )
    optimizer = trainer_config.trainer_type(trainer_config).create_optimizer(model)
    generator = torch.Generator().manual_seed(0)
    raw = torch.rand((1, 1, *BASE["input_shape"]), generator=generator)
    prediction = model(raw)
    target = (torch.rand(prediction.shape, generator=generator) > 0.5).float()
    loss = task.loss.compute(prediction, target, torch.ones_like(target))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    run = SimpleNamespace(name=RUN_NAME, model=model, optimizer=optimizer)
    LocalWeightsStore(folder).store_weights(run, 1)
    names = {}
    for variant, config in VARIANTS.items():
        _, variant_model = dacapo_model(config)
        names[variant] = {
            "architecture": config,
            "neighborhood": neighborhood(config),
            "tensors": {k: list(v.shape) for k, v in variant_model.state_dict().items()},
        }
    (folder / "names.json").write_text(names_json(names))


def names_json(names: dict[str, Any]) -> str:
    """names.json with one tensor per line (readable diffs)."""
    variants = []
    for variant, entry in names.items():
        tensors = ",\n".join(
            f"   {json.dumps(key)}: {json.dumps(shape)}" for key, shape in entry["tensors"].items()
        )
        variants.append(
            f" {json.dumps(variant)}: {{\n"
            f'  "architecture": {json.dumps(entry["architecture"])},\n'
            f'  "neighborhood": {json.dumps(entry["neighborhood"])},\n'
            f'  "tensors": {{\n{tensors}\n  }}\n }}'
        )
    return "{\n" + ",\n".join(variants) + "\n}\n"


def check_fixture(fresh: Path) -> list[str]:
    from dacapo.store.local_weights_store import LocalWeightsStore

    problems = []
    if json.loads((fresh / "names.json").read_text()) != json.loads(
        (FIXTURE / "names.json").read_text()
    ):
        problems.append("names.json differs from DaCapo's names: rerun with --write-fixture")
    written = LocalWeightsStore(fresh).retrieve_weights(RUN_NAME, 1).model
    committed = LocalWeightsStore(FIXTURE).retrieve_weights(RUN_NAME, 1).model
    differing = [k for k in written if not torch.equal(written[k], committed[k])]
    if set(written) != set(committed) or differing:
        problems.append(f"the committed DaCapo weights differ from DaCapo's: {differing[:3]}")
    print(f"fixture: {len(written)} tensors, {'equal' if not problems else 'DIFFERENT'}")
    return problems


def check_names() -> list[str]:
    """Part 2: DaCapo's weights in our model give DaCapo's output."""
    from dacapo_trainers._run._dacapo_weights import from_dacapo_names

    problems = []
    for variant, config in VARIANTS.items():
        torch.manual_seed(1)
        _, theirs = dacapo_model(config)
        ours = our_model(config)
        ours.load_state_dict(from_dacapo_names(ours, theirs.state_dict()), strict=True)
        theirs.eval()
        ours.eval()
        x = torch.rand((2, 1, *config["input_shape"]))
        with torch.no_grad():
            expected = theirs.chain(x)
            got = ours.head(ours.architecture(x))
        same = expected.shape == got.shape and torch.allclose(expected, got, atol=1e-6)
        print(f"names {variant}: outputs {'equal' if same else 'DIFFERENT'} {tuple(got.shape)}")
        if not same:
            problems.append(f"variant {variant}: DaCapo's weights give another output here")
    return problems


def check_export(folder: Path) -> list[str]:
    """Part 3: our export in DaCapo's own store and model."""
    from dacapo.experiments.trainers import DummyTrainerConfig
    from dacapo.store.local_weights_store import LocalWeightsStore

    from dacapo_trainers import load_run_config, train
    from dacapo_trainers._run._dacapo_weights import dacapo_names

    sys.path.insert(0, str(ROOT / "tests" / "core"))
    from dacapo_run_files import dacapo_run, write_dacapo_data
    from dacapo_written import dummy_trainer, write_mongo_json

    container = write_dacapo_data(folder / "data")
    document = dacapo_run(container, dummy_trainer(), name="ours", num_iterations=2)
    document["architecture_config"] = {"__type__": "CNNectomeUNetConfig", "name": "u", **BASE}
    document["output"] = str(folder / "ours")
    train(load_run_config(write_mongo_json(folder / "ours.json", document)), quiet=True)
    base = folder / "dacapo_runs"
    export = ["export", str(folder / "ours"), "--dacapo", str(base), "--run-name", "exported"]
    subprocess.run([sys.executable, "-m", "dacapo_trainers", *export], check=True)
    weights = LocalWeightsStore(base).retrieve_weights("exported", 2)
    _, model = dacapo_model(BASE)
    model.load_state_dict(weights.model, strict=True)
    ours = torch.load(folder / "ours" / "checkpoints" / "iteration_00000002.pt")["model"]
    ours_model = our_model(BASE)
    ours_model.load_state_dict(ours)
    names = dacapo_names(ours_model)
    state = model.state_dict()
    differing = [k for k, v in ours.items() if not torch.equal(v, state[names[k]])]
    trainer_config = DummyTrainerConfig(
        name="d", batch_size=1, learning_rate=1e-3, mirror_augment=False
    )
    optimizer = trainer_config.trainer_type(trainer_config).create_optimizer(model)
    optimizer.load_state_dict(weights.optimizer)
    print(
        f"export: DaCapo loaded {len(state)} tensors strictly; "
        f"{len(ours) - len(differing)} of {len(ours)} equal ours exactly; optimizer state taken"
    )
    return [f"exported tensors differ in DaCapo: {differing[:3]}"] if differing else []


def first_losses(folder: Path, batches: int = 8) -> tuple[list[float], float]:
    """Part 4 (reported): DaCapo's loss on the fixture's net over ``batches`` batches of its
    GunpowderTrainer, and the first loss of a run here started from the fixture, on the test
    suite's DaCapo run (batch size 4, no augments)."""
    from dacapo.experiments import Run
    from dacapo.experiments import RunConfig as DacapoRunConfig
    from dacapo.store.converter import converter
    from dacapo.store.local_weights_store import LocalWeightsStore

    from dacapo_trainers import load_run_config, train
    from dacapo_trainers._outputs._observers import read_stats

    sys.path.insert(0, str(ROOT / "tests" / "core"))
    from dacapo_run_files import dacapo_run, write_dacapo_data
    from dacapo_written import gunpowder_trainer, write_mongo_json

    container = write_dacapo_data(folder / "loss-data")
    trainer = {**gunpowder_trainer(), "batch_size": 4}
    document = dacapo_run(container, trainer, name="first_loss", num_iterations=1)
    document["architecture_config"] = {"__type__": "CNNectomeUNetConfig", "name": "u", **BASE}
    run = Run(converter.structure(document, DacapoRunConfig), load_starter_model=False)
    run.model.load_state_dict(LocalWeightsStore(FIXTURE).retrieve_weights(RUN_NAME, 1).model)
    run.trainer.build_batch_provider(run.datasplit.train, run.model, run.task, None)
    theirs = []
    with run.trainer, torch.no_grad():
        for _ in range(batches):
            raw, _, target, weight, _ = run.trainer.next()
            prediction = run.model(torch.as_tensor(raw[raw.roi]).float())
            loss = run.trainer._loss.compute(
                prediction,
                torch.as_tensor(target[target.roi]).float(),
                torch.as_tensor(weight[weight.roi]).float(),
            )
            theirs.append(float(loss))
    start = {"__type__": "StartConfig", "run": str(FIXTURE / RUN_NAME), "criterion": "1"}
    ours = {**document, "output": str(folder / "first_loss"), "start_config": start}
    train(load_run_config(write_mongo_json(folder / "first_loss.json", ours)), quiet=True)
    return theirs, read_stats(folder / "first_loss" / "stats.jsonl")[0].loss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-fixture", action="store_true", help="rewrite the fixture")
    parser.add_argument(
        "--first-loss",
        action="store_true",
        help="also report DaCapo's loss on the fixture's net and the first loss of a run "
        "started from it here (needs the gunpowder plugin)",
    )
    args = parser.parse_args()
    problems = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if args.write_fixture:
            FIXTURE.mkdir(parents=True, exist_ok=True)
            write_fixture(FIXTURE)
            print(f"wrote {FIXTURE}")
        else:
            write_fixture(folder / "fresh")
            problems += check_fixture(folder / "fresh")
        problems += check_names()
        problems += check_export(folder)
        if args.first_loss:
            theirs, ours = first_losses(folder)
            mean = sum(theirs) / len(theirs)
            spread = (sum((v - mean) ** 2 for v in theirs) / (len(theirs) - 1)) ** 0.5
            print(
                f"first loss on the fixture's net: DaCapo {mean:.4f} +- {spread:.4f} (mean and "
                f"sd over {len(theirs)} batches of 4), here {ours:.4f} (one batch of 4): "
                f"{abs(ours - mean) / spread:.1f} sd apart"
            )
            # one batch of ours against DaCapo's spread over batches: 3 sd is batch noise
            if abs(ours - mean) > FIRST_LOSS_SDS * spread:
                problems.append(f"the first loss is more than {FIRST_LOSS_SDS} sd from DaCapo's")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
