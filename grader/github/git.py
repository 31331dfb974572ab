"""git, read-only, in the checkout of a student repository: which files a push changed, and when a
file was last committed. Nothing from the checkout runs; git only lists names and times."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path


def read_git(checkout: Path, *args: str) -> str | None:
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


def last_commit_time(checkout: Path, path: str) -> datetime | None:
    """When the last commit that touched `path` was made: the committer's clock (which a
    student can set; the push time, when known, is used instead), else the file's mtime."""
    stamp = read_git(checkout, "log", "-1", "--format=%ct", "--", path)
    if stamp:
        return datetime.fromtimestamp(int(stamp), timezone.utc)
    try:
        return datetime.fromtimestamp((checkout / path).stat().st_mtime, timezone.utc)
    except OSError:
        return None
