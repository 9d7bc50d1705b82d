"""``dacapo-trainers demo`` refuses a trainer that is not installed before it writes anything."""

from __future__ import annotations

from pathlib import Path

from run_helpers import CLI


def test_a_trainer_not_installed_is_refused_before_anything_is_written(
    good_cli: CLI, tmp_path: Path
) -> None:
    output = tmp_path / "demo"
    result = good_cli("demo", "--trainer", "GunpowderTrainerConfg", "--output", str(output))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown trainer type 'GunpowderTrainerConfg'" in result.stderr
    assert "did you mean 'GunpowderTrainerConfig'" in result.stderr
    assert not output.exists()  # no demo.zarr, no run.yaml
