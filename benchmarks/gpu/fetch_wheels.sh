#!/usr/bin/env bash
# Wheels that the GPU machine lacks, into .whl/ (ignored by git; carried to the machine by the
# `run` tool's `carry: [".whl"]`). The GPU image has torch (CUDA), numpy, scipy, matplotlib,
# tensorboard, hypothesis, pytest, attrs, pluggy, pyyaml, tqdm, threadpoolctl and what they
# pull in; it has no network. This downloads the roots below and then, round after round,
# whatever their Requires-Dist leaves open (benchmarks/gpu/closure.py), until nothing is open;
# then builds our four packages. Run it from the repository root, on a machine with PyPI:
#
#     bash benchmarks/gpu/fetch_wheels.sh                # for the GPU image (Python 3.12)
#     PYTHON_VERSION=3.11 DEST=/tmp/whl311 bash benchmarks/gpu/fetch_wheels.sh   # a dry run
#
# Python 3.12 gets gunpowder 1.5, funlib.persistence 0.7 and zarr 3 (the GPU image's world;
# they and iohub 0.3 need 3.12); 3.11, for a dry run of run.sh on a machine without 3.12, gets
# the other world this project supports: gunpowder 1.4, funlib.persistence 0.6, zarr 2.18.
#
# It fails when the closure does not close within 8 rounds or the folder exceeds 60 MB.
set -euo pipefail

PYTHON_VERSION="${PYTHON_VERSION:-3.12}"
DEST="${DEST:-.whl}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
MAX_MB="${MAX_MB:-60}"

# What the project needs beyond the image: the core's cattrs and zarr 3 (with numcodecs,
# donfig, crc32c), the gunpowder plugin's gunpowder and funlib packages; hatchling builds the
# throwaway plugins of the core's tests (pip install --no-build-isolation).
if [ "$PYTHON_VERSION" = 3.11 ]; then
    WORLD=("zarr==2.18.7" "numcodecs==0.15.2" "gunpowder==1.4.4" "funlib.persistence==0.6.0"
        "iohub==0.2.3.post1")
else
    WORLD=("zarr>=3,<4" "numcodecs" "gunpowder>=1.5" "funlib.persistence>=0.7" "donfig" "crc32c")
fi
ROOTS=("cattrs>=23.2" "${WORLD[@]}" "funlib.geometry" "hatchling")
# The GPU image's distributions (and those they depend on), never downloaded.
IMAGE="torch,numpy,scipy,matplotlib,tensorboard,hypothesis,pytest,attrs,pluggy,pyyaml,tqdm,\
threadpoolctl,packaging,typing-extensions,networkx,sympy,mpmath,jinja2,markupsafe,filelock,\
fsspec,setuptools,pillow,contourpy,cycler,fonttools,kiwisolver,pyparsing,python-dateutil,six,\
grpcio,markdown,protobuf,werkzeug,absl-py,tensorboard-data-server,iniconfig,pygments,\
sortedcontainers,tzdata,triton"
# Declared by a dependency, but imported by nothing that this project's code, gunpowder,
# funlib.persistence, iohub or zarr import at module level (databases, HDF5, other array
# formats); left out to stay small. The test suites on the GPU machine import every module
# this project uses, so a wrong entry here fails there, loudly, with the missing name.
EXCLUDED="${EXCLUDED:-psycopg2-binary,pymongo,dnspython,h5py,blosc2,zarrs,nd2,imageio,rich}"

download() {
    "$PYTHON" -m pip download --quiet --disable-pip-version-check \
        --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --no-deps -d "$DEST" "$@" 2>&1 |
        grep -v "^WARNING: Location" || true
}

rm -rf "$DEST"
mkdir -p "$DEST"
download "${ROOTS[@]}"
for round in 1 2 3 4 5 6 7 8; do
    mapfile -t open < <("$PYTHON" benchmarks/gpu/closure.py "$DEST" --python "$PYTHON_VERSION" \
        --image "$IMAGE" --excluded "$EXCLUDED")
    if [ "${#open[@]}" -eq 0 ]; then
        break
    fi
    echo "round $round: ${open[*]}"
    download "${open[@]}"
    if [ "$round" -eq 8 ]; then
        echo "the dependency closure did not close in 8 rounds" >&2
        exit 1
    fi
done
if ! "$PYTHON" benchmarks/gpu/closure.py "$DEST" --python "$PYTHON_VERSION" --image "$IMAGE" \
    --excluded "$EXCLUDED" --strict > /dev/null; then
    echo "the wheels in $DEST conflict (above): pin the roots to versions that fit" >&2
    exit 1
fi
# Left out on purpose, though a wheel above declares them (see EXCLUDED).
for name in ${EXCLUDED//,/ }; do
    rm -f "$DEST"/"${name//-/_}"-*.whl "$DEST"/"$name"-*.whl
done
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$DEST" ./core ./plugins/simple-tensor ./plugins/gunpowder ./plugins/distributed 2>&1 |
    grep -v "^WARNING: Location" || true

ls -1 "$DEST"
size_kb=$(du -sk "$DEST" | cut -f1)
echo "$(ls "$DEST" | wc -l) wheels, $((size_kb / 1024)) MB in $DEST (Python $PYTHON_VERSION)"
if [ "$size_kb" -gt $((MAX_MB * 1024)) ]; then
    echo "$DEST holds more than $MAX_MB MB: keep what is copied to the GPU node small (64 MiB at most)" >&2
    exit 1
fi
