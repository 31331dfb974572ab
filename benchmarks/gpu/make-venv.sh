#!/usr/bin/env bash
# make-venv.sh VENV: a venv over the machine's python3, so that torch is the one built for its
# GPU, with the wheels of .whl/ (wheels.sh) and this checkout's grader installed offline.
set -euo pipefail

venv=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# No pip of its own (python3 may lack ensurepip): python3's pip, reached through the .pth
# below, installs into the venv it runs in.
python3 -m venv --system-site-packages --without-pip "$venv"
# When python3 is itself a venv (the GPU machine's is), --system-site-packages reaches the
# interpreter that venv was made from, which has no torch: the .pth adds python3's own
# site-packages, after the new venv's, so that the wheels installed here come first.
python3 - "$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" <<'EOF'
import pathlib, site, sys
lines = [f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages()]
(pathlib.Path(sys.argv[1]) / "machine-site-packages.pth").write_text("".join(lines))
EOF
"$venv/bin/python" -m pip install --quiet --no-index --no-deps --no-compile "$repo"/.whl/*.whl
# --no-deps: the grader declares nbgrader, which only `release` and the gradebook database use.
"$venv/bin/python" -m pip install --quiet --no-index --no-deps --no-build-isolation -e "$repo"
