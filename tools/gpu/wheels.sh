#!/usr/bin/env bash
# Fetch tools/gpu/wheels.txt as CPython 3.12 x86-64 wheels into .whl/ (ignored by git), for the lent GPU
# machine, which reaches no package registry. connection_pool has no wheel on PyPI: it is built here.
#   bash tools/gpu/wheels.sh && du -sh .whl    # ~10 MB; carry it: run(carry=[".whl", ...])
set -eu
dest=${1:-.whl}
mkdir -p "$dest"
grep -q '^/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
platforms=(--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux1_x86_64)
grep -v -e '^#' -e '^connection_pool' tools/gpu/wheels.txt |
  xargs python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dest"
python3 -m pip wheel -q --no-deps "$(grep '^connection_pool' tools/gpu/wheels.txt)" -w "$dest"
ls "$dest" | wc -l
