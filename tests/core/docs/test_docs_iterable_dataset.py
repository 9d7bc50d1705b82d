"""The plain-torch loop of docs/iterable_dataset.rst runs as shown, on a DaCapo main run file.

Needs a batch trainer plugin (skipped without one); nox runs it in the plugin sessions.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
from dacapo_main_written import main_gunpowder_trainer, main_run
from dacapo_run_files import write_dacapo_data
from dacapo_written import write_file_store_yaml
from docs_pages import code_blocks, page_files


@pytest.mark.skipif(
    importlib.util.find_spec("dacapo_trainers_gunpowder") is None,
    reason="needs dacapo_trainers_gunpowder",
)
def test_the_pages_training_loop_trains(tmp_path: Path) -> None:
    files = page_files("iterable_dataset.rst")
    assert list(files) == ["train_loop.py"]
    assert len(files["train_loop.py"].splitlines()) <= 25  # a short loop, as the page says
    [script] = code_blocks.write_files(files, tmp_path)
    container = write_dacapo_data(tmp_path / "data")
    document = main_run(container, main_gunpowder_trainer(), num_iterations=3, batch_size=2)
    run_file = write_file_store_yaml(tmp_path / "run.yaml", document)
    result = subprocess.run(
        [sys.executable, str(script), str(run_file)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [int(iteration) for iteration, _ in lines] == [0, 1, 2]
    assert all(math.isfinite(float(loss)) for _, loss in lines)
