"""DaCapo 0.3.5's weights: a run starts from them, and a run's weights go back to DaCapo.

The fixture ``data/dacapo_weights/`` was written by DaCapo 0.3.5 itself: ``python
benchmarks/dacapo_weights.py --write-fixture`` in the ``dacapo-parity`` environment (that
script's docstring says how; the session checks that DaCapo still writes the same). It holds
the run folder ``dacapo_affinities`` (DaCapo's CNNectomeUNet of the DaCapo run in
``dacapo_run_files.py``, with 2 feature maps, and AffinitiesTask's head, after one RAdam step
of the optimizer of DaCapo's DummyTrainer) and ``names.json``
(DaCapo's tensor names and shapes for several architecture variants).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from dacapo_run_files import dacapo_run, write_dacapo_data
from dacapo_written import dummy_trainer, write_mongo_json
from run_helpers import run_cli as cli

from dacapo_trainers import ConfigError, StartConfig, load_run_config, train
from dacapo_trainers._run._dacapo_weights import (
    dacapo_names,
    from_dacapo_names,
    read_dacapo_weights,
    to_dacapo_names,
)
from dacapo_trainers._run._start_weights import load_start_weights
from dacapo_trainers.reference import AffinitiesTaskConfig, CNNectomeUNetConfig

FIXTURE = Path(__file__).parent / "data" / "dacapo_weights"
RUN = "dacapo_affinities"
NAMES = json.loads((FIXTURE / "names.json").read_text())
DACAPO_FILE = FIXTURE / RUN / "checkpoints" / "iterations" / "1"


def model(architecture: dict[str, Any], neighborhood: list[list[int]]) -> Any:
    task = AffinitiesTaskConfig(name="affs", neighborhood=neighborhood).build()
    return task.predictor.create_model(CNNectomeUNetConfig(name="unet", **architecture).build())


def fixture_model(**changes: Any) -> Any:
    base = NAMES["base"]
    return model({**base["architecture"], **changes}, base["neighborhood"])


def dacapo_state(into: Any) -> dict[str, torch.Tensor]:
    """The fixture's DaCapo weights under ``into``'s names."""
    return from_dacapo_names(into, read_dacapo_weights(DACAPO_FILE).model)


@pytest.fixture(autouse=True)
def no_user_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No DaCapo options file of the machine's user: HOME and the cwd are empty folders."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DACAPO_OPTIONS_FILE", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dacapo_data(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("variant", sorted(NAMES))
def test_names_are_dacapos(variant: str) -> None:
    """Every variant's tensors get DaCapo's names and shapes (chain repeats included)."""
    entry = NAMES[variant]
    ours = model(entry["architecture"], entry["neighborhood"])
    exported = to_dacapo_names(ours, ours.state_dict())
    assert {k: list(v.shape) for k, v in exported.items()} == entry["tensors"]
    back = from_dacapo_names(ours, exported)
    assert set(back) == set(ours.state_dict())


def test_start_from_a_dacapo_run_folder_loads_dacapos_weights() -> None:
    ours = fixture_model()
    message = load_start_weights(StartConfig(run=str(FIXTURE / RUN), criterion="latest"), ours)
    assert message == f"started from the weights of {DACAPO_FILE}"
    expected = dacapo_state(ours)
    assert set(expected) == set(ours.state_dict())
    assert all(torch.equal(v, expected[k]) for k, v in ours.state_dict().items())


def runs_base(tmp_path: Path) -> Path:
    base = tmp_path / "dacapo_runs"
    shutil.copytree(FIXTURE / RUN, base / RUN)
    return base


def test_a_run_name_resolves_through_dacapos_options_files(
    tmp_path: Path, no_user_options: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = StartConfig(run=RUN, criterion="1")
    with pytest.raises(ConfigError, match=r"DaCapo's default ~/dacapo \(no DaCapo options file"):
        load_start_weights(start, fixture_model())
    # ./dacapo.yaml
    (no_user_options / "dacapo.yaml").write_text(f"runs_base_dir: {runs_base(tmp_path)}\n")
    assert "iterations/1" in load_start_weights(start, fixture_model())
    # DACAPO_OPTIONS_FILE comes first: here it points to a store without that run
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(f"runs_base_dir: {tmp_path / 'empty'}\ntype: files\n")
    monkeypatch.setenv("DACAPO_OPTIONS_FILE", str(elsewhere))
    with pytest.raises(ConfigError, match=r"runs_base_dir of .*elsewhere.yaml"):
        load_start_weights(start, fixture_model())
    # ... and a DACAPO_OPTIONS_FILE that does not exist is passed over, as DaCapo does
    monkeypatch.setenv("DACAPO_OPTIONS_FILE", str(tmp_path / "missing.yaml"))
    assert "iterations/1" in load_start_weights(start, fixture_model())


def test_home_options_file_and_latest(tmp_path: Path) -> None:
    base = runs_base(tmp_path)
    iterations = base / RUN / "checkpoints" / "iterations"
    shutil.copy(iterations / "1", iterations / "10")
    shutil.copy(iterations / "1", iterations / "2")
    config = Path(os.environ["HOME"]) / ".config" / "dacapo" / "dacapo.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"runs_base_dir: {base}\n")
    message = load_start_weights(StartConfig(run=RUN, criterion="latest"), fixture_model())
    assert message.endswith("iterations/10")  # the largest number, as DaCapo's latest_iteration


@pytest.mark.parametrize(
    ("criterion", "expected"),
    [
        (
            "voi",
            r"criterion 'voi' selects no weights .* Use 'latest' or an iteration number "
            r"\(iterations held: 1\)",
        ),
        ("7", r"holds no weights of iteration 7 .*iterations held: 1\); pick one"),
    ],
)
def test_criteria_dacapo_cannot_serve_are_refused(criterion: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_start_weights(
            StartConfig(run=str(FIXTURE / RUN), criterion=criterion), fixture_model()
        )
    assert info.value.issues[0].path == "$.start_config.criterion"


def test_best_weights_dacapo_stored_can_start_a_run(tmp_path: Path) -> None:
    base = runs_base(tmp_path)
    best = base / RUN / "checkpoints" / "validate" / "voi"
    best.parent.mkdir()
    best.symlink_to(base / RUN / "checkpoints" / "iterations" / "1")  # as store_best does
    start = StartConfig(run=str(base / RUN), criterion="validate/voi")
    assert "validate/voi" in load_start_weights(start, fixture_model())
    with pytest.raises(ConfigError, match=r"as '<dataset>/<criterion>' \(held: validate/voi\)"):
        load_start_weights(StartConfig(run=str(base / RUN), criterion="voi"), fixture_model())


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_names_anything_else_is_refused_unrun(tmp_path: Path) -> None:
    run = tmp_path / "evil"
    target = run / "checkpoints" / "iterations" / "1"
    target.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    torch.save({"model": {}, "optimizer": {}, "x": _Exploit(marker)}, target)
    with pytest.raises(ConfigError) as info:
        load_start_weights(StartConfig(run=str(run), criterion="latest"), fixture_model())
    message = str(info.value)
    assert f"DaCapo weights file {target} names {os.system.__module__}.system" in message
    assert "restricted loader refuses" in message and "nothing in it was imported or run" in message
    assert not marker.exists()


def test_a_real_mismatch_names_the_first_differing_tensor() -> None:
    other_head = model(NAMES["base"]["architecture"], [[1, 0, 0], [0, 1, 0]])
    message = load_start_weights(StartConfig(run=str(FIXTURE / RUN), criterion="1"), other_head)
    assert "first difference: head.weight is (3, 2, 1, 1, 1) in the checkpoint and " in message
    assert "(2, 2, 1, 1, 1) in the model" in message and "DaCapo's rule" in message
    architecture = {**NAMES["base"]["architecture"], "num_fmaps": 8, "fmaps_out": 8}
    wider = model(architecture, [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(ConfigError) as info:
        load_start_weights(StartConfig(run=str(FIXTURE / RUN), criterion="1"), wider)
    assert (
        "first difference: architecture.down.0.0.weight is (2, 1, 3, 3, 3) in the checkpoint "
        "and (8, 1, 3, 3, 3) in the model" in str(info.value)
    )


def small_run(container: Path, trainer: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The DaCapo run of ``dacapo_run_files`` with the fixture's architecture."""
    architecture = {"__type__": "CNNectomeUNetConfig", "name": "unet"}
    architecture.update(NAMES["base"]["architecture"])
    return dacapo_run(container, trainer, architecture_config=architecture, **changes)


def own_run(container: Path, folder: Path, **changes: Any) -> dict[str, Any]:
    document = small_run(container, dummy_trainer(), name="ours", **changes)
    document["output"] = str(folder)
    return document


def test_a_run_holds_dacapos_weights_after_its_first_step(container: Path, tmp_path: Path) -> None:
    learning_rate = 1e-5
    trainer = {**dummy_trainer(), "learning_rate": learning_rate}
    document = small_run(
        container,
        trainer,
        name="finetune",
        num_iterations=1,
        start_config={"__type__": "StartConfig", "run": str(FIXTURE / RUN), "criterion": "1"},
    )
    document["output"] = str(tmp_path / "finetune")
    train(load_run_config(write_mongo_json(tmp_path / "finetune.json", document)), quiet=True)
    after = torch.load(
        tmp_path / "finetune" / "checkpoints" / "iteration_00000001.pt", weights_only=True
    )["model"]
    expected = dacapo_state(fixture_model())
    # DummyTrainer's RAdam moves each weight by lr * gradient in its first step (no adaptive
    # scaling yet); this net's gradients stay below 10 (measured: at most 0.21), so DaCapo's
    # weights are within lr * 10 of the result.
    tolerance = learning_rate * 10
    change = max(float((after[k] - v).abs().max()) for k, v in expected.items())
    assert 0 < change <= tolerance
    fresh = fixture_model().state_dict()  # a start without DaCapo's weights is far off
    assert max(float((after[k] - v).abs().max()) for k, v in fresh.items()) > 100 * tolerance


def test_export_writes_what_dacapo_reads_and_starts_a_run(
    container: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "ours"
    document = own_run(container, output, num_iterations=2, checkpoint_interval=1)
    run_file = write_mongo_json(tmp_path / "ours.json", document)
    train(load_run_config(run_file), quiet=True)
    base = tmp_path / "dacapo_runs"
    result = cli("export", str(output), "--dacapo", str(base), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = base / "ours" / "checkpoints" / "iterations" / "2"
    assert result.stdout.strip() == f"wrote {written}"
    with zipfile.ZipFile(written) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"cdacapo.store.weights_store\nWeights\n" in pickled  # DaCapo's class, by name
    assert b"dacapo_trainers" not in pickled
    saved = torch.load(output / "checkpoints" / "iteration_00000002.pt", weights_only=True)
    exported = read_dacapo_weights(written)
    ours = fixture_model()
    names = dacapo_names(ours)
    assert set(exported.model) == set(NAMES["base"]["tensors"])
    assert all(torch.equal(exported.model[names[k]], v) for k, v in saved["model"].items())
    twin = exported.model["chain.1.weight"]  # stored once, as in DaCapo's files
    assert twin.data_ptr() == exported.model["prediction_head.weight"].data_ptr()
    # a new run started from the exported DaCapo folder (by name, DaCapo's way) gets them
    (tmp_path / "dacapo.yaml").write_text(f"runs_base_dir: {base}\n")
    monkeypatch.chdir(tmp_path)
    ours_again = fixture_model()
    load_start_weights(StartConfig(run="ours", criterion="latest"), ours_again)
    assert all(torch.equal(v, saved["model"][k]) for k, v in ours_again.state_dict().items())
    # by the run file, another iteration and name; nothing is overwritten
    again = cli("export", str(run_file), "--iteration", "1", "--dacapo", str(base), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (base / "ours" / "checkpoints" / "iterations" / "1").is_file()
    refused = cli("export", str(output), "--dacapo", str(base), cwd=tmp_path)
    assert refused.returncode == 2
    assert "exists already and is not overwritten" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "status", "expected"),
    [
        ([], 2, "one of the arguments --dacapo --bioimageio is required"),
        (["--iteration", "9"], 2, "holds no checkpoint of iteration 9 (iterations held: 1)"),
    ],
)
def test_export_errors(
    container: Path, tmp_path: Path, args: list[str], status: int, expected: str
) -> None:
    output = tmp_path / "ours"
    train(
        load_run_config(
            write_mongo_json(tmp_path / "r.json", own_run(container, output, num_iterations=1))
        ),
        quiet=True,
    )
    extra = ["--dacapo", str(tmp_path / "base")] if args else []
    result = cli("export", str(output), *args, *extra, cwd=tmp_path)
    assert result.returncode == status
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "base").exists()


def test_a_refused_start_fails_the_cli_in_one_paragraph(container: Path, tmp_path: Path) -> None:
    start = {"__type__": "StartConfig", "run": str(FIXTURE / RUN), "criterion": "voi"}
    document = own_run(container, tmp_path / "never", num_iterations=1, start_config=start)
    result = cli("train", str(write_mongo_json(tmp_path / "r.json", document)), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: invalid config") and "Use 'latest'" in lines[-1]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "never" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("runs_base_dir: s3://bucket/runs\n", r"'s3://bucket/runs' in DaCapo's options file .* "),
        ("- a list\n", r"holds a list, not a mapping of options"),
        ("runs_base_dir: [unclosed\n", r"cannot be read \(\w+\); fix it, or point"),
    ],
)
def test_an_unusable_options_file_is_named(
    no_user_options: Path, options: str, expected: str
) -> None:
    (no_user_options / "dacapo.yaml").write_text(options)
    with pytest.raises(ConfigError, match=expected) as info:
        load_start_weights(StartConfig(run=RUN, criterion="latest"), fixture_model())
    assert info.value.issues[0].path == "$.start_config.run"
    assert "options file dacapo.yaml" in str(info.value)  # the file is named
