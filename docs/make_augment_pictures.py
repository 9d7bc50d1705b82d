"""Regenerate docs/_static/augments/*.png: raw before and after each EM augment.

Builds the demo volume (``make_demo_data``), scales its raw to [0, 1], passes it through a
gunpowder pipeline holding one augment config's node (the node a run builds), and draws one
section before and after. Section defects are drawn across the sections (a y-z cut), the others
within one. Needs the core and the gunpowder plugin installed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dacapo_trainers import InMemoryArray, open_array
from dacapo_trainers.reference import make_demo_data
from dacapo_trainers_gunpowder import (
    DefectAugmentConfig,
    DeformAugmentConfig,
    GaussianBlurAugmentConfig,
)

TARGET = Path(__file__).resolve().parent / "_static" / "augments"
SHAPE = (64, 96, 96)
VOXEL_SIZE = (8, 8, 8)
#: (file name, config, cut: "yz" across sections or "xy" within one)
PICTURES: list[tuple[str, Any, str]] = [
    (
        "defect",
        DefectAugmentConfig(prob_missing=0.1, prob_low_contrast=0.15),
        "yz",
    ),
    (
        "deform",
        DeformAugmentConfig(
            control_point_spacing=[80, 80, 80],
            jitter_sigma=[16.0, 16.0, 16.0],
            rotation_axes=[1, 2],
        ),
        "xy",
    ),
    ("blur", GaussianBlurAugmentConfig(sigma_range=(12.0, 16.0)), "xy"),
]


def augmented(config: Any, raw: np.ndarray, seed: int) -> np.ndarray:
    """The centre half of ``raw`` through ``config``'s node, as a run's pipeline gives it."""
    import gunpowder as gp

    from dacapo_trainers_gunpowder.nodes import ArraySource

    key = gp.ArrayKey("RAW")
    array = InMemoryArray(raw, voxel_size=VOXEL_SIZE, offset=(0, 0, 0))
    source = ArraySource(key, array, interpolatable=True)
    pipeline = source + config.node(key, gp.ArrayKey("GT"), gp.ArrayKey("MASK"))
    shape = np.array(SHAPE) // 2
    begin = (np.array(SHAPE) - shape) // 2
    request = gp.BatchRequest(random_seed=seed)
    request[key] = gp.ArraySpec(roi=gp.Roi(begin * VOXEL_SIZE, shape * VOXEL_SIZE))
    with gp.build(pipeline):
        return np.asarray(pipeline.request_batch(request)[key].data)


def draw(name: str, before: np.ndarray, after: np.ndarray, cut: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def section(volume: np.ndarray) -> np.ndarray:
        middle = [s // 2 for s in volume.shape]
        return volume[:, :, middle[2]] if cut == "yz" else volume[middle[0]]

    figure, axes = plt.subplots(1, 2, figsize=(5, 2.8))
    for axis, volume, title in zip(axes, (before, after), ("before", "after"), strict=True):
        axis.imshow(section(volume), cmap="gray", vmin=0, vmax=1)
        axis.set_title(f"{title} ({'z down' if cut == 'yz' else 'one z section'})", fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    path = TARGET / f"{name}.png"
    figure.savefig(path, dpi=72)
    plt.close(figure)
    return path


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        container = make_demo_data(Path(tmp) / "demo.zarr", shape=SHAPE, voxel_size=VOXEL_SIZE)
        raw = np.asarray(open_array(container, "raw").data[...], dtype=np.float32)
    raw = (raw - raw.min()) / (raw.max() - raw.min())
    shape = np.array(SHAPE) // 2
    begin = (np.array(SHAPE) - shape) // 2
    before = raw[tuple(slice(b, b + s) for b, s in zip(begin, shape, strict=True))]
    for name, config, cut in PICTURES:
        path = draw(name, before, augmented(config, raw, seed=4), cut)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
