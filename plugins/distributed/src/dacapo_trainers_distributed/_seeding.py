"""Per-rank seeds: every rank draws different batches, reproducibly."""

from __future__ import annotations

import hashlib


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s data randomness in a run seeded with ``seed``.

    Rank 0 keeps ``seed`` itself, so that a one-rank run draws the batches of the
    single-process run with the same seed; every other rank gets a 62-bit hash of
    ``(seed, rank)``, so ranks draw different crops and augmentations.
    """
    if rank < 0:
        raise ValueError(f"rank must be at least 0, got {rank}")
    if rank == 0:
        return seed
    digest = hashlib.sha256(f"dacapo-trainers-distributed:{seed}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 2
