"""`grader collect`: every student repository of a GitHub Classroom assignment
(OWNER/PREFIX-LOGIN), cloned into DEST/LOGIN for `grader batch`: the instructor's regrade in
student-repository mode, which grades the latest push of each student whatever the GPU budget.

Clones are partial (`--filter=blob:none`): every commit, for the submission time, but only the
files the default branch has now. The token reaches git through the environment of the one
`git clone` (GIT_CONFIG_*), never a repository's .git/config, so nothing left on disk holds it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from grader.course.config import LOGIN, CourseConfig
from grader.errors import GraderError
from grader.github.client import DEFAULT_API_URL, GitHubClient


def collect_class(
    config: CourseConfig,
    dest: Path,
    *,
    token: str,
    api_url: str,
    students: tuple[str, ...] = (),
    say: Callable[[str], None] = print,
) -> list[str]:
    """Clone each student repository into `dest/LOGIN`, afresh; returns the logins cloned."""
    owner, prefix = config.owner(), config.repository_prefix
    if not prefix:
        raise GraderError(
            'set submissions.repository_prefix (e.g. "dl-2025-"): it tells the student '
            "repositories (PREFIX-LOGIN) from the organisation's others"
        )
    if not owner or not token.strip():
        raise GraderError(
            "collect needs the organisation (course.repository's owner) and GITHUB_TOKEN, a "
            "token that can read every student repository (ci.regrade_token_secret)"
        )
    with GitHubClient(api_url or DEFAULT_API_URL, token.strip()) as github:
        repositories = {
            repo["name"][len(prefix) :]: repo
            for repo in github.repositories(owner)
            if repo.get("name", "").startswith(prefix)
            and re.fullmatch(LOGIN, repo["name"][len(prefix) :])
        }
    unknown = sorted(set(students) - set(repositories))
    if unknown:
        raise GraderError(f"no repository {owner}/{prefix}LOGIN for {', '.join(unknown)}")
    dest.mkdir(parents=True, exist_ok=True)
    header = base64.b64encode(f"x-access-token:{token.strip()}".encode()).decode()
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {header}",
    }
    cloned, failed = [], []
    for login, repo in sorted(repositories.items()):
        if students and login not in students:
            continue
        target = dest / login
        shutil.rmtree(target, ignore_errors=True)
        done = subprocess.run(
            ["git", "clone", "--quiet", "--filter=blob:none", "--single-branch", "--no-tags",
             repo["clone_url"], str(target)],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode == 0:
            cloned.append(login)
        else:
            why = (done.stderr.strip().splitlines() or ["git clone failed"])[-1]
            failed.append(f"{repo.get('full_name', login)}: {why.replace(token, '***')}")
    for line in failed:
        say(f"grader: warning: could not clone {line}")
    if failed and not cloned:
        raise GraderError(f"no student repository could be cloned ({failed[0]})")
    return cloned
