"""`!pip install` and `%pip install` in a graded notebook: runs in the student's kernel, from the
prologue.

Grading has no network, so nothing can be installed. Colab notebooks and tutorials start with
`!pip install torchmetrics` all the same. A line that names only packages the grading
environment provides (the course's own and those `course.toml` lists) does nothing and
succeeds; any other stops the cell at once with an error that names the package and says what
to do, instead of a pip traceback and a ModuleNotFoundError three cells later. Other shell
commands (`!nvidia-smi`, `!ls`) run as usual.
"""

from __future__ import annotations

import re
import shlex
from importlib import metadata


class PackageNotAvailable(Exception):
    """A notebook asked to install a package the grading environment does not provide."""


_PIP = re.compile(r"^\s*(?:\S*/)?(?:pip3?(?:\.\d+)?|\S*python[\d.]*\s+-m\s+pip)\s+(?P<rest>.*)$")
# pip options that take a value (the next token is not a package)
_VALUED = {
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
    "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
    "--upgrade-strategy", "--platform", "--python-version", "--implementation", "--abi",
    "--no-binary", "--only-binary", "--progress-bar", "--log", "--proxy", "--retries",
    "--timeout", "--trusted-host", "--cert", "--client-cert", "--cache-dir", "--src",
    "--report", "-C", "--config-settings", "--global-option", "--use-feature",
    "--exists-action", "--python",
}  # fmt: skip


def intercept_pip_install(provided: list[str]) -> None:
    """Answer `!pip install` and `%pip install` in this kernel from `provided` (pip names)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    allowed = {normalise(name) for name in provided}
    run_shell = shell.system

    def system(command: str, *args, **kwargs):
        __tracebackhide__ = True  # IPython shows the student's cell, not these frames
        others = []
        for part in re.split(r"\s*(?:&&|;|\|\|)\s*", command):
            requested = pip_install_requests(part)
            if requested is None:
                others.append(part)
            else:
                answer(requested, allowed)
        if others:
            return run_shell(" && ".join(others), *args, **kwargs)
        return None

    def pip_magic(line: str) -> None:
        __tracebackhide__ = True
        requested = pip_install_requests(f"pip {line}")
        if requested is None:
            return run_shell(f"pip {line}")
        answer(requested, allowed)
        return None

    shell.system = system
    shell.register_magic_function(pip_magic, "line", "pip")


def pip_install_requests(command: str) -> list[str] | None:
    """What a shell command asks pip to install (requirements as written, `-r FILE` for a
    requirements file), or None when it is no `pip install`."""
    match = _PIP.match(command)
    if match is None:
        return None
    try:
        words = shlex.split(match["rest"])
    except ValueError:
        words = match["rest"].split()
    while words and words[0].startswith("-"):  # pip's own options: pip -q install …
        words.pop(0)
    if not words or words[0] != "install":
        return None
    requested, words = [], words[1:]
    while words:
        word = words.pop(0)
        if word in _VALUED:
            value = words.pop(0) if words else ""
            if word in ("-r", "--requirement", "-e", "--editable"):
                requested.append(f"{word} {value}")
        elif word.startswith(("--requirement=", "--editable=")):
            requested.append(word.replace("=", " ", 1))
        elif word.startswith("-"):
            continue
        else:
            requested.append(word)
    return requested


def normalise(requirement: str) -> str:
    """A requirement's project name as pip compares them (`Torch_Metrics>=1` → torch-metrics);
    a URL, a path or `-r FILE` stays as written."""
    if requirement.startswith("-") or "/" in requirement or "://" in requirement:
        return requirement
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else requirement


def answer(requested: list[str], allowed: set[str]) -> None:
    """Succeed (printing why nothing is installed) when every requested package is provided;
    else raise PackageNotAvailable naming the others."""
    __tracebackhide__ = True
    names = list(dict.fromkeys(normalise(requirement) for requirement in requested))
    refused = [name for name in names if name not in allowed]
    if refused:
        listed = ", ".join(
            f"`{name}`" if not name.startswith("-") else f"what `{name}` names" for name in refused
        )
        one = len(refused) == 1
        raise PackageNotAvailable(
            f"{listed} {'is' if one else 'are'} not installed on the grader, and nothing can be "
            "installed while grading (it has no network): ask your instructor to add "
            f"{'it' if one else 'them'} to the course's packages, or do without "
            f"{'it' if one else 'them'}"
        )
    absent = [name for name in names if not _installed(name)]
    missing = f" (but not installed on this runner: {', '.join(absent)}; tell your instructor)"
    print(
        f"[grader] {', '.join(names) or 'nothing'}: provided by the grading environment, "
        f"nothing to install{missing if absent else ''}"
    )


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return name == "sklearn"  # an alias of scikit-learn, never a real distribution
    return True
