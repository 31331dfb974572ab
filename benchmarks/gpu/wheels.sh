#!/usr/bin/env bash
# Download the wheels benchmarks/gpu/run.sh installs on the GPU machine, which has no network:
# CPython 3.12 on x86-64 Linux, the packages in wheels.txt and nothing else (--no-deps: the list
# is the whole closure). Run it here, where the package index is reachable:
#
#     benchmarks/gpu/wheels.sh [DEST]     # DEST defaults to .whl/ in the repository's root
#
# .whl/ is git-ignored; the device tool takes it along when it is named in `carry`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=${1:-$repo/.whl}
mkdir -p "$dest"
# Pip matches each manylinux tag exactly, so every tag the wheels in the list use is named.
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
"${PYTHON:-python3}" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${platforms[@]}" \
    --dest "$dest" --requirement "$repo/benchmarks/gpu/wheels.txt"
# A wheel left over from an older list would make two versions of one package.
expected=$(grep -cE '^[A-Za-z]' "$repo/benchmarks/gpu/wheels.txt")
found=$(find "$dest" -maxdepth 1 -type f -name '*.whl' | wc -l)
if [ "$found" -ne "$expected" ]; then
    echo "wheels.sh: $dest holds $found wheels, wheels.txt lists $expected: empty it and rerun" >&2
    exit 1
fi
echo "$found wheels, $(du -sh "$dest" | cut -f1), in $dest"
