"""git, read-only, in the checkout of a student repository: which files a push changed, and when a
file was last committed (grader.github.pushes). Nothing from the checkout runs; git only lists
names and times."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def read_git(checkout: Path, *args: str, stdin: str | None = None) -> str | None:
    """A read-only git command in the student's checkout; None when it fails or git is absent."""
    command = [
        "git",
        "-c",
        f"safe.directory={checkout.resolve()}",
        "-c",
        "core.quotepath=off",
        "-C",
        str(checkout),
        *args,
    ]
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**_git_env(), "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip("\n") if done.returncode == 0 else None


def _git_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
    return {key: os.environ[key] for key in keep if key in os.environ}
