"""Registry benchmark: selecting one type with 1 vs 200 installed plugins; listing time.

Each of the 199 other plugins' modules would import a heavy module (0.1 s of work at import),
so any eager import shows. Plugins are installed as real distributions (``.dist-info`` with
``METADATA`` and ``entry_points.txt``) in a folder put on ``PYTHONPATH``. Wall times of whole
commands, alternated and repeated; medians reported, and the ratio is the figure to compare.

    python benchmarks/bench_registry.py [--repeats 7] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLUGIN = """
import attrs
from dacapo_trainers import TrainerConfig, hookimpl
import {heavy}


@attrs.define(kw_only=True)
class {name}(TrainerConfig):
    trainer_type = "x:y"


@hookimpl
def dacapo_trainers_trainer_configs():
    return [{name}]
"""

HEAVY = "import time\ntime.sleep(0.1)\nTABLE = [i * i for i in range(200_000)]\n"


def install_plugin(site: Path, index: int, heavy: bool) -> None:
    """Lay out one installed distribution the way pip leaves it: package + .dist-info."""
    name = f"Bench{index:03d}TrainerConfig"
    module = f"bench_plugin_{index:03d}"
    heavy_module = f"bench_heavy_{index:03d}"
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("")
    (site / module / "plugin.py").write_text(
        PLUGIN.format(name=name, heavy=heavy_module if heavy else "os")
    )
    (site / f"{heavy_module}.py").write_text(HEAVY)
    dist_info = site / f"bench_plugin_{index:03d}-1.0.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: bench-plugin-{index:03d}\nVersion: 1.0.0\n"
        "Requires-Dist: dacapo-trainers>=0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[dacapo_trainers]\n{name} = {module}.plugin\n")
    (dist_info / "RECORD").write_text("")


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--plugins", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        one, many = root / "one", root / "many"
        one.mkdir()
        many.mkdir()
        install_plugin(one, 0, heavy=False)
        for index in range(args.plugins):
            install_plugin(many, index, heavy=index != 0)
        config = root / "config.json"
        config.write_text(
            json.dumps(
                {
                    "__type__": "Bench000TrainerConfig",
                    "name": "b",
                    "batch_size": 1,
                    "learning_rate": 0.1,
                }
            )
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("DACAPO_")}
        env_one = {**base, "PYTHONPATH": str(one)}
        env_many = {**base, "PYTHONPATH": str(many)}
        select = [sys.executable, "-m", "dacapo_trainers", "validate", str(config)]
        listing = [sys.executable, "-m", "dacapo_trainers", "plugins"]
        bare = [sys.executable, "-c", "pass"]
        for command, env in ((select, env_one), (select, env_many), (listing, env_many)):
            timed(command, env)  # warm the file cache
        times: dict[str, list[float]] = {
            "select_1": [],
            "select_200": [],
            "plugins_200": [],
            "python_pass": [],
        }
        for _ in range(args.repeats):
            times["select_1"].append(timed(select, env_one))
            times["select_200"].append(timed(select, env_many))
            times["plugins_200"].append(timed(listing, env_many))
            times["python_pass"].append(timed(bare, base))

    medians = {key: statistics.median(values) for key, values in times.items()}
    result = {
        "plugins": args.plugins,
        "repeats": args.repeats,
        "median_seconds": medians,
        "select_ratio_200_vs_1": medians["select_200"] / medians["select_1"],
        "plugins_listing_vs_python_pass": medians["plugins_200"] / medians["python_pass"],
        "goal_select_ratio": 1.5,
    }
    print(f"select one type, 1 plugin installed:    {medians['select_1']:.3f} s")
    print(f"select one type, {args.plugins} plugins installed: {medians['select_200']:.3f} s")
    print(f"  ratio {result['select_ratio_200_vs_1']:.2f} (goal <= 1.5)")
    print(f"dacapo-trainers plugins ({args.plugins} installed): {medians['plugins_200']:.3f} s")
    print(f"python -c pass:                          {medians['python_pass']:.3f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
