"""Export a run's checkpoint as a bioimage.io model package (spec 0.5, a ``.zip``).

The package holds the weights twice: ``pytorch_state_dict`` (the model's state dict, built by
``dacapo_trainers_model.py`` shipped in the package: see
:mod:`dacapo_trainers._exports._bioimageio_model`) and ``torchscript`` (the model traced in
eval mode, loadable with PyTorch alone); test tensors cut from the run's data with the
model's output for them; axes in nanometres with the voxel sizes as scale; the run's preview
as cover. ``bioimageio.spec`` and ``bioimageio.core`` come with the ``bioimageio`` extra.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._configs._converter import unstructure_config
from .._errors import ConfigError, ConfigIssue
from .._outputs._checkpoints import iteration_of, load_checkpoint
from ._bioimageio_descr import model_description
from ._bioimageio_metadata import cover_image, documentation, package_metadata
from ._bioimageio_tensors import draw_cover, sample_tensors
from ._dacapo_export import _model_with, chosen_checkpoint, export_source

#: What a user installs for this export.
EXTRA = "dacapo-trainers[bioimageio]"
#: The architecture file's name inside a package.
ARCHITECTURE_FILE = "dacapo_trainers_model.py"


def require_bioimageio() -> None:
    """:raises ConfigError: ``bioimageio.spec`` or ``bioimageio.core`` is not installed."""
    for module in ("bioimageio.spec", "bioimageio.core"):
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(
                [
                    ConfigIssue(
                        "--bioimageio",
                        f"needs {module}, which is not installed: pip install '{EXTRA}'",
                    )
                ]
            ) from None


def export_bioimageio(
    source: Path,
    package: Path,
    *,
    iteration: int | None = None,
    name: str | None = None,
    description: str | None = None,
    authors: Sequence[str] = (),
    license: str | None = None,
    cite: Sequence[str] = (),
) -> Path:
    """Write a run's checkpoint (default: the latest) as the bioimage.io package ``package``.

    :raises ConfigError: the extra is missing, no such run or checkpoint, a package that
        exists (never overwritten), no ``authors``, or data too small for a test input.
    :raises CheckpointError: the checkpoint is damaged.
    """
    require_bioimageio()
    if package.exists():
        raise ConfigError(
            [ConfigIssue("--bioimageio", f"{package} exists already and is not overwritten")]
        )
    found = export_source(source)
    path = chosen_checkpoint(found.folder, iteration)
    chosen = iteration_of(path)
    metadata = package_metadata(
        found.run,
        chosen,
        name=name,
        description=description,
        authors=authors,
        license=license,
        cite=cite,
    )
    model = _model_with(found.run, load_checkpoint(path)["model"], path)
    tensors = sample_tensors(found.run, model)
    with tempfile.TemporaryDirectory(prefix="bioimageio-") as tmp:
        folder = Path(tmp)
        files = _write_files(folder, model, tensors.input, found.folder, chosen)
        if "cover" not in files:
            files["cover"] = draw_cover(tensors, folder / "cover.png").name
        (folder / "README.md").write_text(documentation(metadata, found.run, chosen))
        kwargs = {
            "architecture": unstructure_config(found.run.architecture_config),
            "task": unstructure_config(found.run.task_config),
        }
        description_ = model_description(
            metadata,
            tensors,
            folder,
            files,
            {name: _sha256(folder / file) for name, file in files.items()},
            kwargs,
        )
        return _save_package(description_, package)


def _write_files(
    folder: Path, model: Any, test_input: Any, run_folder: Path, iteration: int
) -> dict[str, str]:
    """The package's files in ``folder``: ``{role: file name}``."""
    import torch

    model.eval()
    torch.save(model.state_dict(), folder / "weights.pt")
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.from_numpy(test_input))  # type: ignore[no-untyped-call]
    traced.save(str(folder / "weights_torchscript.pt"))
    shutil.copyfile(Path(__file__).with_name("_bioimageio_model.py"), folder / ARCHITECTURE_FILE)
    files = {
        "state_dict": "weights.pt",
        "torchscript": "weights_torchscript.pt",
        "architecture": ARCHITECTURE_FILE,
    }
    cover = cover_image(run_folder, iteration)
    if cover is not None:
        shutil.copyfile(cover, folder / "cover.png")
        files["cover"] = "cover.png"
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_package(description: Any, package: Path) -> Path:
    """Save the package as a zip, through a temporary name so no partial zip is left."""
    from bioimageio.spec import save_bioimageio_package

    package.parent.mkdir(parents=True, exist_ok=True)
    partial = package.with_name(f".{package.name}.partial.zip")
    try:
        save_bioimageio_package(description, output_path=partial)
        partial.replace(package)
    finally:
        partial.unlink(missing_ok=True)
    return package
