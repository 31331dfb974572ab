"""An organisation of student repositories for the poll tests: real git repositories on disk
(bare, as GitHub keeps them) behind the local GitHub server, and pushes made with git's own
plumbing (fast enough for a class of 50), each recorded in GitHub's activity log with who
pushed it."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from github_server import GitHubServer

ORG = "course-org"
LINK = object()  # a file's content: a symbolic link instead of a file
PAST = 1_764_000_000  # 2025-11-24: when the simulated pushes reach GitHub, unless `now`


def _git(git_dir: Path, *args: str, data: bytes | None = None, env: dict | None = None) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        input=data,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "Student",
            "GIT_AUTHOR_EMAIL": "s@example.org",
            "GIT_COMMITTER_NAME": "Student",
            "GIT_COMMITTER_EMAIL": "s@example.org",
            **(env or {}),
        },
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


class Org:
    """Repositories `ORG/NAME` on disk under `root`, served by `server`."""

    def __init__(self, root: Path, server: GitHubServer) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.server = server
        self.heads: dict[str, str | None] = {}
        self.clock = PAST  # each push a second after the last, long before any poll

    def repo(self, name: str) -> str:
        full = f"{ORG}/{name}"
        git_dir = self.root / f"{name}.git"
        _git(git_dir, "init", "--quiet", "--bare", "--initial-branch=main")
        self.server.add_repo(full, git_dir=str(git_dir))
        self.heads[full] = None
        return full

    def push(
        self,
        full: str,
        files: dict[str, bytes | object | None],
        *,
        actor: str,
        force: bool = False,
        now: bool = False,
        at: float | None = None,
        dated: float | None = None,
    ) -> str:
        """A commit on top of the branch (with `force`, on top of its parent: history
        rewritten) changing `files` (None deletes), pushed by `actor` (`now`: at this moment,
        else at `at`, else on the organisation's own clock, a second after its last push; the
        commit itself `dated` as its author likes, e.g. backdated); returns the commit."""
        git_dir = self.root / f"{full.split('/')[1]}.git"
        before = self.heads[full]
        parent = before
        if force and before:
            parents = _git(git_dir, "rev-list", "--parents", "-n", "1", before).split()[1:]
            parent = parents[0] if parents else None
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if parent:
                _git(git_dir, "read-tree", parent, env=env)
            for path, content in files.items():
                if content is None:
                    _git(git_dir, "update-index", "--force-remove", path, env=env)
                    continue
                mode = "100644"
                if content is LINK:
                    content, mode = b"/etc/hostname", "120000"
                blob = _git(git_dir, "hash-object", "-w", "--stdin", data=content)
                _git(
                    git_dir,
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    f"{mode},{blob},{path}",
                    env=env,
                )
            tree = _git(git_dir, "write-tree", env=env)
        stamp = {} if dated is None else {"GIT_AUTHOR_DATE": f"@{int(dated)} +0000",
                                           "GIT_COMMITTER_DATE": f"@{int(dated)} +0000"}  # fmt: skip
        commit = _git(
            git_dir,
            "commit-tree",
            tree,
            *(["-p", parent] if parent else []),
            "-m",
            f"push by {actor}",
            data=b"",
            env=stamp,
        )
        _git(git_dir, "update-ref", "refs/heads/main", commit)
        self.heads[full] = commit
        self.server.add_push(
            full,
            commit,
            before=before or "0" * 40,
            actor=actor,
            activity_type="force_push" if force else "push",
            at=None if now else at if at is not None else self.clock,
        )
        self.clock += 1
        return commit
