"""What a Python the grader starts in the sandbox (the kernel, the runner, the model-evaluation
worker) is given: an allow-listed environment, the grader's own search path and nothing of the
notebook's folder, the command line that runs one of the grader's modules, and the folders
outside the scratch folder it must be able to read. An allow-list, so that no token, secret or
setting of the grader's reaches student code."""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from grader.sandbox.scratch import Scratch

# Passed through to the kernel when set; everything else (tokens, CI secrets, cloud
# credentials, the grader's own settings) is dropped. An allow-list, never a deny-list.
PASSED_THROUGH = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "CUDA_HOME",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)


def kernel_env(scratch: Scratch) -> dict[str, str]:
    """The whole environment student code sees."""
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    home = scratch.home
    env.update(
        PATH=os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        LANG=env.get("LANG", "C.UTF-8"),
        PYTHONNOUSERSITE="1",
        PYTHONUNBUFFERED="1",
        IPYTHONDIR=str(home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        MPLCONFIGDIR=str(home / ".config/matplotlib"),
        TORCH_HOME=str(scratch.work / ".torch"),
        # No index for pip, and a dead proxy for everything else: a `!pip install` or a
        # download fails at once with a clear message instead of hanging on a runner
        # that has no internet.
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="",
    )
    python_path = forwarded_python_path()
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(python_path)
    # OpenMP threads spin while they wait for work: on a shared CPU (grader batch, a busy
    # runner) thousands of small steps then take 10-20 times longer. Passive waiting costs
    # nothing measurable on big tensors.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def needed_outside_scratch() -> list[Path]:
    executable = Path(sys.executable).absolute()
    prefixes = {Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix)}
    paths = {executable.parent, executable.resolve().parent, *prefixes, *search_path()}
    paths.add(Path(__file__).resolve().parents[1])  # this package
    paths -= {Path("/")}
    # Nested paths need only the outermost; mounting both would only repeat it.
    return sorted(p for p in paths if not any(q in p.parents for q in paths))


def search_path() -> list[Path]:
    """The folders on this process's sys.path (what the grader imports from), less the current
    folder, which may be a classroom checkout the notebook must not see."""
    cwd = Path.cwd().resolve()
    found = []
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue
        path = Path(entry).resolve()
        if path != cwd and path.exists() and path not in found:
            found.append(path)
    return found


def python_module(module: str, *arguments: str) -> list[str]:
    """The command that runs `python -m module arguments` for the grader inside the sandbox,
    with neither the folder it starts in (`-P`) nor a user site (`-s`) on sys.path: nothing the
    notebook wrote, in its working folder or its home, can stand in for a module that process
    imports, however late it imports it. The search path is the grader's own, as passed on in
    PYTHONPATH by kernel_env, which the notebook cannot change."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-s", "-m", module, *arguments]
    # Python 3.10 has no -P: `-c` puts the working folder first on sys.path, the bootstrap
    # takes it off, then runs the module as -m would.
    return [sys.executable, "-s", "-c", _RUN_MODULE, module, *arguments]


_RUN_MODULE = (
    "import runpy, sys; del sys.path[0]; "
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)"
)


def forwarded_python_path() -> list[str]:
    """Folders a Python started in the sandbox would not find by itself: $PYTHONPATH's, and the
    user's site-packages (the sandbox has another $HOME and no user site). Passed on through
    PYTHONPATH, so that student code imports the packages the grader does."""
    cwd = Path.cwd().resolve()
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    if site.ENABLE_USER_SITE and site.USER_SITE and site.USER_SITE in sys.path:
        entries.append(site.USER_SITE)
    kept = []
    for entry in entries:
        path = Path(entry).resolve()
        if os.path.isabs(entry) and path.is_dir() and path != cwd and str(path) not in kept:
            kept.append(str(path))
    return kept
