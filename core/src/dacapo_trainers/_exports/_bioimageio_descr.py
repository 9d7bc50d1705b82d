"""The model description (``rdf.yaml``) of a bioimage.io package, through bioimageio.spec 0.5.

Axes: batch, channel, then the spatial axes (``z``, ``y``, ``x``; ``y``, ``x`` in 2D) of fixed
size, the model's input and output shapes, in nanometres with the voxel sizes as scale (the
output's may differ from the input's for a model that scales). The output is the centre of the
input's field of view (valid convolutions shrink it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._bioimageio_metadata import PackageMetadata
from ._bioimageio_tensors import SampleTensors, save_tensor

#: Names of the spatial axes, by number of spatial dimensions.
SPATIAL_AXES = {2: ("y", "x"), 3: ("z", "y", "x")}
#: The unit of voxel sizes (world units of the runs' data).
UNIT = "nanometer"


def model_description(
    metadata: PackageMetadata,
    tensors: SampleTensors,
    folder: Path,
    files: Mapping[str, str],
    sha256: Mapping[str, str],
    kwargs: dict[str, Any],
) -> Any:
    """A ``ModelDescr`` of the files written in ``folder`` (``files``: role to file name)."""
    import torch
    from bioimageio.spec.model import v0_5 as spec

    input_file = save_tensor(tensors.input, folder / "test_input.npy")
    output_file = save_tensor(tensors.output, folder / "test_output.npy")
    pytorch_version = spec.Version(torch.__version__.split("+")[0])
    architecture = spec.ArchitectureFromFileDescr(
        source=folder / files["architecture"],
        sha256=spec.Sha256(sha256["architecture"]),
        callable=spec.Identifier("build_model"),
        kwargs=kwargs,
    )
    weights = spec.WeightsDescr(
        pytorch_state_dict=spec.PytorchStateDictWeightsDescr(
            source=folder / files["state_dict"],
            sha256=spec.Sha256(sha256["state_dict"]),
            architecture=architecture,
            pytorch_version=pytorch_version,
        ),
        torchscript=spec.TorchscriptWeightsDescr(
            source=folder / files["torchscript"],
            sha256=spec.Sha256(sha256["torchscript"]),
            pytorch_version=pytorch_version,
            parent="pytorch_state_dict",
        ),
    )
    cover = [spec.FileDescr(source=folder / files["cover"])] if "cover" in files else []
    return spec.ModelDescr(
        name=metadata.name,
        description=metadata.description,
        authors=[spec.Author(name=name) for name in metadata.authors],
        cite=[_citation(spec, entry) for entry in metadata.cite],
        license=spec.LicenseId(metadata.license),
        documentation=spec.FileDescr(source=folder / "README.md"),
        covers=cover,
        tags=["dacapo-trainers", "3d" if tensors.input.ndim == 5 else "2d", "pytorch"],
        inputs=[_input(spec, tensors, input_file)],
        outputs=[_output(spec, tensors, output_file)],
        weights=weights,
    )


def _citation(spec: Any, entry: Any) -> Any:
    if entry.doi is not None:
        return spec.CiteEntry(text=entry.text, doi=spec.Doi(entry.doi))
    return spec.CiteEntry(text=entry.text, url=spec.HttpUrl(entry.url))


def _space_axes(
    spec: Any, axis_type: Any, shape: tuple[int, ...], voxel_size: tuple[int, ...]
) -> list[Any]:
    names = SPATIAL_AXES[len(voxel_size)]
    return [
        axis_type(id=spec.AxisId(name), size=int(size), scale=float(scale), unit=UNIT)
        for name, size, scale in zip(names, shape, voxel_size, strict=True)
    ]


def _input(spec: Any, tensors: SampleTensors, test_file: Path) -> Any:
    channels = tensors.input.shape[1]
    axes = [
        spec.BatchAxis(),
        spec.ChannelAxis(channel_names=[spec.Identifier(f"raw{i}") for i in range(channels)]),
        *_space_axes(spec, spec.SpaceInputAxis, tensors.input.shape[2:], tensors.input_voxel_size),
    ]
    return spec.InputTensorDescr(
        id=spec.TensorId("raw"),
        description="raw, float32 as the training data gave it",
        axes=axes,
        test_tensor=spec.FileDescr(source=test_file),
        data=spec.IntervalOrRatioDataDescr(type="float32"),
    )


def _output(spec: Any, tensors: SampleTensors, test_file: Path) -> Any:
    channels = tensors.output.shape[1]
    axes = [
        spec.BatchAxis(),
        spec.ChannelAxis(channel_names=[spec.Identifier(f"c{i}") for i in range(channels)]),
        *_space_axes(
            spec, spec.SpaceOutputAxis, tensors.output.shape[2:], tensors.output_voxel_size
        ),
    ]
    return spec.OutputTensorDescr(
        id=spec.TensorId("prediction"),
        description="the model's output in eval mode, centred in the input's field of view",
        axes=axes,
        test_tensor=spec.FileDescr(source=test_file),
        data=spec.IntervalOrRatioDataDescr(type="float32"),
    )
