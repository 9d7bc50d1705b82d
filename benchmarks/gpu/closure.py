"""The requirements that a folder of wheels leaves open, for one Python version.

Reads ``Requires-Dist`` of every wheel in ``FOLDER`` (markers evaluated for Linux x86-64 and
``--python``, extras left out) and prints, one per line, each requirement (a name with the
specifiers of all who ask for it) that neither a wheel there nor the image (``--image``: names
of what the GPU image already has) provides; version conflicts with a wheel there go to
stderr. ``--excluded`` names packages left out on purpose (declared, but not imported by
anything this project runs); their own requirements are not followed. Exits 0, or 1 with
``--strict`` when something is open or conflicts.

    python benchmarks/gpu/closure.py .whl --python 3.12 --image "$IMAGE" --excluded "$EXCLUDED"
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name


def metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode("utf-8").replace("\r\n", "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--image", default="", help="comma-separated names the image has")
    parser.add_argument("--excluded", default="", help="comma-separated names left out")
    parser.add_argument("--strict", action="store_true", help="exit 1 on open or conflicts")
    args = parser.parse_args(argv)
    environment = {
        "python_version": args.python,
        "python_full_version": f"{args.python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    provided = {canonicalize_name(n) for n in args.image.split(",") if n}
    excluded = {canonicalize_name(n) for n in args.excluded.split(",") if n}
    versions: dict[str, str] = {}
    requirements: list[tuple[str, Requirement]] = []
    for wheel in sorted(args.folder.glob("*.whl")):
        text = metadata(wheel)
        name = canonicalize_name(re.search(r"^Name: *(.+)$", text, re.M).group(1).strip())  # type: ignore[union-attr]
        versions[name] = re.search(r"^Version: *(.+)$", text, re.M).group(1).strip()  # type: ignore[union-attr]
        if name in excluded:
            continue
        for line in re.findall(r"^Requires-Dist: *(.+)$", text, re.M):
            try:
                requirement = Requirement(line.strip())
            except InvalidRequirement as error:
                print(f"{wheel.name}: cannot read {line!r}: {error}", file=sys.stderr)
                continue
            if requirement.marker is None or requirement.marker.evaluate(environment):
                requirements.append((name, requirement))
    missing: dict[str, SpecifierSet] = {}
    conflicts = 0
    for who, requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name in provided or name in excluded:
            continue
        if name not in versions:
            missing[name] = missing.get(name, SpecifierSet()) & requirement.specifier
        elif requirement.specifier and not requirement.specifier.contains(
            versions[name], prereleases=True
        ):
            print(f"{who} needs {requirement}, the wheel is {versions[name]}", file=sys.stderr)
            conflicts += 1
    for name, specifier in sorted(missing.items()):
        print(f"{name}{specifier}")
    return 1 if args.strict and (missing or conflicts) else 0


if __name__ == "__main__":
    sys.exit(main())
