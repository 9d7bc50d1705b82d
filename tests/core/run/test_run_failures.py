"""Which OSErrors are the output folder's fault: paths are compared as paths, not strings."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from dacapo_trainers._run._run_failures import failure_message, is_write_failure


@pytest.mark.parametrize(
    ("filename", "inside"),
    [
        ("/runs/out/checkpoints/iteration_00000002.pt", True),
        ("/runs/out", True),
        ("/runs/out2/stats.jsonl", False),  # a sibling whose name starts with the output's
        ("/runs/outside.txt", False),
        ("/runs", False),
        (None, False),
    ],
)
def test_a_permission_error_is_the_output_folders_only_inside_it(
    filename: str | None, inside: bool
) -> None:
    output = Path("/runs/out")
    for code in (errno.EACCES, errno.EPERM):
        error = OSError(code, os.strerror(code), filename)
        assert is_write_failure(error, output) is inside


def test_a_sibling_folder_sharing_the_outputs_prefix_is_not_the_output(tmp_path: Path) -> None:
    output, sibling = tmp_path / "out", tmp_path / "out2"
    denied = OSError(errno.EACCES, "Permission denied", str(sibling / "data.zarr"))
    assert not is_write_failure(denied, output)
    message = failure_message(denied, 3, "building the batch provider", output, None, "t")
    assert "cannot write to the output folder" not in message
    assert "PermissionError" in message or "OSError" in message
    inside = OSError(errno.EACCES, "Permission denied", str(output / "stats.jsonl"))
    assert is_write_failure(inside, output)
    assert "cannot write to the output folder" in failure_message(
        inside, 3, "writing", output, None, "t"
    )


def test_a_full_disk_is_a_write_failure_wherever_it_happens() -> None:
    for code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS):
        assert is_write_failure(OSError(code, os.strerror(code), "/elsewhere"), Path("/out"))
    assert not is_write_failure(ValueError("no"), Path("/out"))
