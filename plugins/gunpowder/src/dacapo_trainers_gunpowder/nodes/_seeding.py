"""Per-node random generators from a request's seed, without touching global RNG state."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


def node_rng(request: Any, salt: str) -> np.random.Generator:
    """A generator determined by ``request.random_seed`` and ``salt`` (the node's purpose).

    Two nodes receiving the same request get independent streams through their salts.
    """
    return np.random.default_rng([int(request.random_seed), zlib.crc32(salt.encode())])
