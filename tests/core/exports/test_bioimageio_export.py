"""``dacapo-trainers export RUN --bioimageio PACKAGE.zip``: a package bioimageio.core accepts.

Skipped where bioimageio.core is not installed, except when DACAPO_TRAINERS_TESTS_NEED_BIOIMAGEIO
is set (the ``tests`` nox session sets it): there a missing package fails the tests.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from run_helpers import run_cli as cli
from run_helpers import run_data, write_run

from dacapo_trainers import load_run_config, train

if os.environ.get("DACAPO_TRAINERS_TESTS_NEED_BIOIMAGEIO"):
    import bioimageio.core  # noqa: F401  (a failure here fails the module)
else:
    pytest.importorskip("bioimageio.core")

VOXEL_SIZE = (8, 8, 8)


def run_document(demo_zarr: Path, output: Path) -> dict[str, Any]:
    """Two iterations of DaCapo's DummyTrainer on the tiny U-Net with affinities, raw
    normalized to [0, 1] by the dataset."""
    document = run_data(demo_zarr, output)
    document["trainer_config"] = {
        "__type__": "DummyTrainerConfig",
        "name": "dummy",
        "batch_size": 1,
        "learning_rate": 0.001,
        "mirror_augment": False,
    }
    document["datasets"][0]["intensity_range"] = [0, 255]
    return {**document, "name": "tiny-affs", "num_iterations": 2, "checkpoint_interval": 1}


@pytest.fixture(scope="module")
def trained(demo_zarr: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained run's output folder (checkpoints of iterations 1 and 2)."""
    folder = tmp_path_factory.mktemp("run")
    run_file = write_run(folder / "run.yaml", run_document(demo_zarr, folder / "out"))
    train(load_run_config(run_file), quiet=True)
    return folder / "out"


def rdf_of(package: Path) -> dict[str, Any]:
    with zipfile.ZipFile(package) as archive:
        return dict(yaml.safe_load(archive.read("rdf.yaml")))


def npy(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    return np.load(io.BytesIO(archive.read(name)))


#: Proxies at a closed local port: any attempt of bioimageio's to reach the network fails.
OFFLINE = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}


@pytest.mark.slow
def test_the_package_passes_bioimageio_cores_model_test(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exported and tested with no network: bioimageio.core loads both weight formats, runs the
    test input and compares with the test output."""
    from bioimageio.core import test_model

    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
        monkeypatch.setenv(name.lower(), value)

    package = tmp_path / "model.zip"
    result = cli(
        "export", str(trained), "--bioimageio", str(package), "--author", "Ada Lovelace",
        "--author", "Alan Turing", "--cite", "A paper=10.1234/abcd", "--license", "CC-BY-4.0",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {package}"
    summary = test_model(package)
    assert summary.status == "passed", summary.format()
    passed = {d.name for d in summary.details if d.status == "passed"}
    for weights in ("pytorch_state_dict", "torchscript"):
        assert f"Reproduce test outputs from test inputs ({weights})" in passed


def test_the_package_holds_what_the_run_trained(trained: Path, tmp_path: Path) -> None:
    package = tmp_path / "model.zip"
    result = cli(
        "export", str(trained), "--iteration", "1", "--bioimageio", str(package),
        "--author", "Ada Lovelace", "--name", "Tiny affinities",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rdf = rdf_of(package)
    assert rdf["format_version"].startswith("0.5")
    assert rdf["name"] == "Tiny affinities"
    assert [a["name"] for a in rdf["authors"]] == ["Ada Lovelace"]
    assert rdf["license"] == "MIT"
    assert rdf["cite"][0]["text"] == "DaCapo"
    weights = rdf["weights"]
    assert set(weights) == {"pytorch_state_dict", "torchscript"}
    with zipfile.ZipFile(package) as archive:
        for entry in (*weights.values(), weights["pytorch_state_dict"]["architecture"]):
            digest = hashlib.sha256(archive.read(entry["source"])).hexdigest()
            assert digest == entry["sha256"]
        state = torch.load(
            io.BytesIO(archive.read(weights["pytorch_state_dict"]["source"])), weights_only=True
        )
        test_input = npy(archive, rdf["inputs"][0]["test_tensor"]["source"])
        test_output = npy(archive, rdf["outputs"][0]["test_tensor"]["source"])
        assert rdf["covers"] and rdf["covers"][0]["source"] in archive.namelist()
    # the checkpoint of iteration 1, not the latest
    saved = torch.load(trained / "checkpoints" / "iteration_00000001.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in saved["model"].items())
    # axes: batch, channel, z y x in nm with the voxel size as scale
    for tensor, shape in ((rdf["inputs"][0], (20, 20, 20)), (rdf["outputs"][0], (4, 4, 4))):
        spatial = [axis for axis in tensor["axes"] if axis["type"] == "space"]
        assert [a["id"] for a in spatial] == ["z", "y", "x"]
        assert [a["scale"] for a in spatial] == list(VOXEL_SIZE)
        assert {a["unit"] for a in spatial} == {"nanometer"}
        assert tuple(a["size"] for a in spatial) == shape
    assert test_input.shape == (1, 1, 20, 20, 20) and test_input.dtype == np.float32
    assert test_output.shape == (1, 3, 4, 4, 4)
    assert test_input.min() >= 0.0 and test_input.max() <= 1.0  # the dataset's intensity_range


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--iteration", "9"], "holds no checkpoint of iteration 9 (iterations held: 1, 2)"),
        ([], "at least one author: give --author NAME"),
        (["--author", "A", "--cite", "no reference"], "is not TEXT=DOI or TEXT=URL"),
    ],
)
def test_refusals_are_one_line(
    trained: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    package = tmp_path / "model.zip"
    result = cli("export", str(trained), "--bioimageio", str(package), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not package.exists()


def test_a_missing_run_or_checkpoint_is_refused(demo_zarr: Path, tmp_path: Path) -> None:
    missing = cli("export", str(tmp_path / "nowhere"), "--bioimageio", "m.zip", cwd=tmp_path)
    assert missing.returncode == 2 and "neither a run folder nor a run file" in missing.stderr
    run_file = write_run(tmp_path / "run.yaml", run_document(demo_zarr, tmp_path / "untrained"))
    untrained = cli("export", str(run_file), "--bioimageio", "m.zip", "--author", "A", cwd=tmp_path)
    assert untrained.returncode == 2 and "holds no checkpoint" in untrained.stderr
    assert "Traceback" not in missing.stderr + untrained.stderr


def test_without_the_extra_one_line_names_it(trained: Path, tmp_path: Path) -> None:
    """With bioimageio.core not importable, the export names the extra and writes nothing."""
    code = (
        "import sys; sys.modules['bioimageio.core'] = None\n"
        "from dacapo_trainers._cli import main\n"
        f"sys.exit(main(['export', {str(trained)!r}, '--bioimageio', 'm.zip', '--author', 'A']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.strip().endswith(
        "--bioimageio: needs bioimageio.core, which is not installed: pip install "
        "'dacapo-trainers[bioimageio]'"
    )
    assert not (tmp_path / "m.zip").exists()


def test_an_existing_package_is_not_overwritten(trained: Path, tmp_path: Path) -> None:
    package = tmp_path / "model.zip"
    package.write_bytes(b"not ours")
    result = cli(
        "export", str(trained), "--bioimageio", str(package), "--author", "A", cwd=tmp_path
    )
    assert result.returncode == 2 and "exists already and is not overwritten" in result.stderr
    assert package.read_bytes() == b"not ours"


def test_the_cover_is_the_runs_preview_of_that_iteration(trained: Path, tmp_path: Path) -> None:
    """The newest preview up to the exported iteration (later ones show later weights)."""
    run = shutil.copytree(trained, tmp_path / "run")
    previews = run / "snapshots"
    previews.mkdir()
    shutil.copyfile(run / "loss.png", previews / "00000001.png")  # a real PNG of this run
    (previews / "00000002.png").write_bytes(b"a later preview")
    package = tmp_path / "model.zip"
    result = cli(
        "export", str(run), "--iteration", "1", "--bioimageio", str(package),
        "--author", "A", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(package) as archive:
        cover = archive.read(rdf_of(package)["covers"][0]["source"])
    assert cover == (previews / "00000001.png").read_bytes()
