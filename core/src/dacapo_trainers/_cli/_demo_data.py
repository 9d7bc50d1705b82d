"""``dacapo-trainers demo-data OUT.zarr``: write the synthetic demo volume."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo-data",
        help="write a synthetic 3D volume (raw, gt, mask) to a zarr container",
        description="Write blobs with instance labels (gt), a blurred noisy raw and a mask, so "
        "everything runs with no download.",
    )
    parser.add_argument("out", help="the zarr container to write, e.g. demo.zarr")
    parser.add_argument("--shape", type=int, nargs="+", default=None, help="voxels per axis")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..reference import make_demo_data

    path = make_demo_data(args.out, shape=args.shape, seed=args.seed)
    print(f"wrote raw, gt and mask to {path}")
    return 0
