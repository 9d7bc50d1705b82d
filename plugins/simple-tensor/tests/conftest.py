"""Fixtures of the simple tensor trainer's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from simple_tensor_helpers import ZarrDataset, blobs, make_dataset


@pytest.fixture
def blob_dataset(tmp_path: Path) -> ZarrDataset:
    raw, gt = blobs((24, 24, 24), seed=0)
    return make_dataset(tmp_path, "blobs", raw, gt)
