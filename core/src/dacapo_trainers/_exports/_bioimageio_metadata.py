"""What a bioimage.io package says about its model beyond the weights: name, description,
authors, license, citations, cover and documentation, from ``export``'s flags and the run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import attrs

from .._configs._run_config import RunConfig
from .._errors import ConfigError, ConfigIssue
from .._outputs._output_folder import PREVIEWS

#: DaCapo's license default for its bioimage.io packages.
DEFAULT_LICENSE = "MIT"
#: Cited when no ``--cite`` is given: DaCapo, whose configs and semantics the run follows.
DACAPO_CITATION = ("DaCapo", "https://arxiv.org/abs/2408.02834")
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$")


@attrs.define(frozen=True)
class Citation:
    """A citation: its text and a DOI (``10.x/y``) or a URL."""

    text: str
    doi: str | None = None
    url: str | None = None


@attrs.define(frozen=True)
class PackageMetadata:
    """The descriptive fields of a package (see :func:`package_metadata`)."""

    name: str
    description: str
    authors: tuple[str, ...]
    license: str
    cite: tuple[Citation, ...]


def parse_citation(entry: str) -> Citation:
    """``TEXT=DOI`` or ``TEXT=URL`` (``--cite``); a DOI may be given as a doi.org URL.

    :raises ConfigError: no ``=``, an empty text, or a reference that is neither.
    """
    text, sep, reference = entry.rpartition("=")
    doi = _DOI.match(reference.strip())
    if not sep or not text.strip() or not (doi or reference.startswith(("http://", "https://"))):
        raise ConfigError(
            [
                ConfigIssue(
                    "--cite",
                    f"{entry!r} is not TEXT=DOI or TEXT=URL (e.g. 'My paper=10.1234/abcd' or "
                    "'My tool=https://example.org/tool')",
                )
            ]
        )
    if doi:
        return Citation(text.strip(), doi=doi.group(1))
    return Citation(text.strip(), url=reference.strip())


def package_metadata(
    run: RunConfig,
    iteration: int,
    *,
    name: str | None,
    description: str | None,
    authors: Sequence[str],
    license: str | None,
    cite: Sequence[str],
) -> PackageMetadata:
    """The flags, defaulted from the run: the name is the run's, the description says what
    was trained on what, the license is MIT (DaCapo's default) and DaCapo is cited.

    :raises ConfigError: no author (bioimage.io requires one), or a bad ``--cite``.
    """
    if not authors:
        raise ConfigError(
            [
                ConfigIssue(
                    "--author",
                    "a bioimage.io package names at least one author: give --author NAME "
                    "(repeat it for more)",
                )
            ]
        )
    default = (
        f"{type(run.task_config).__name__} model ({type(run.architecture_config).__name__}) "
        f"trained with dacapo-trainers for {iteration} iterations (run {run.name!r})."
    )
    citations = tuple(parse_citation(entry) for entry in cite) or (
        Citation(DACAPO_CITATION[0], url=DACAPO_CITATION[1]),
    )
    return PackageMetadata(
        name=name or run.name,
        description=description or default,
        authors=tuple(authors),
        license=license or DEFAULT_LICENSE,
        cite=citations,
    )


def documentation(metadata: PackageMetadata, run: RunConfig, iteration: int) -> str:
    """The package's README: what the model is, how it was trained, how to run it."""
    return (
        f"# {metadata.name}\n\n{metadata.description}\n\n"
        f"- run: `{run.name}`, checkpoint of iteration {iteration}\n"
        f"- architecture: `{type(run.architecture_config).__name__}`\n"
        f"- task: `{type(run.task_config).__name__}`\n\n"
        "Input: raw as float32 with the values the training data gave (the dataset configs "
        "of the run say how raw was normalized). Output: the model's output in eval mode.\n\n"
        "The `pytorch_state_dict` weights are built by `dacapo_trainers_model.py`, which "
        "needs `dacapo-trainers` and the plugins of the run's configs; the `torchscript` "
        "weights need only PyTorch.\n\n"
        "## Validation\n\n"
        "The test input is the centre crop of the run's first training dataset; the test "
        "output is the model's for it. dacapo-trainers validates its packages with "
        "bioimageio.core's model test.\n"
    )


def cover_image(folder: Path, iteration: int) -> Path | None:
    """The run's newest preview (``snapshots/ITERATION.png``) up to ``iteration``, if any."""
    previews = [
        path
        for path in sorted((folder / PREVIEWS).glob("*.png"))
        if path.stem.isdigit() and int(path.stem) <= iteration
    ]
    return previews[-1] if previews else None
