"""A repository's new pushes, read from GitHub's activity and attributed: which submission each
push changed, and whether whoever pushed it may submit there (the student, or course staff).
Only the trees are read here, never a file's content; a push by someone else into a student's
place, a symbolic link, a submodule, a file too large or two candidates for one notebook is a
notice for the instructor, never the student's grade."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from grader.course.config import CourseConfig
from grader.github.client import GitHubClient
from grader.github.poll_state import Plan
from grader.github.pushes import COMMIT_SHA, MOVES

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024  # as the grader's own limit on an executed notebook
ACTIVITY_PAGE = 100  # pushes read per repository and poll: one page
SYMLINK = "120000"  # a tree entry's mode for a symbolic link


def read_pushes(
    github: GitHubClient,
    config: CourseConfig,
    full: str,
    branch: str,
    weeks: tuple[str, ...],
    owner_of,
    record: dict[str, Any],
    plan: Plan,
    activity: list[Any] | None = None,
    login: str | None = None,
) -> bool:
    """Walk the pushes to `full`'s `branch` since `record["seen"]`, oldest first: which
    submission each changed and who pushed it. False: the repository vanished meanwhile."""
    if activity is None:
        url = activity_url(full, branch)
        activity = github.get_json(url, f"read the pushes to {full}", missing_ok=True)
        if activity is None:
            plan.notices.append(
                f"{full}: gone while polling (deleted or emptied); looked at next time"
            )
            return False
    moves = sorted(
        (
            item
            for item in activity
            if isinstance(item, dict)
            and item.get("activity_type") in MOVES
            and COMMIT_SHA.fullmatch(str(item.get("after", "")))
            and isinstance(item.get("id"), int)
            and item["id"] > record.get("seen", 0)
        ),
        key=lambda item: item["id"],
    )
    if not moves and login is not None and not record.get("head"):
        # A student repository seen for the first time whose pushes GitHub's activity no
        # longer lists (a course moving to the poll mid-term): its branch as it is now is the
        # student's own repository's, with no push time (no lateness).
        head = github.get_json(
            f"repos/{full}/commits/{quote(branch, safe='')}",
            f"read the newest commit of {full}",
            missing_ok=True,
        )
        if isinstance(head, dict) and COMMIT_SHA.fullmatch(str(head.get("sha", ""))):
            moves = [{"id": 0, "after": head["sha"], "actor": {"login": login}, "timestamp": ""}]
            plan.notices.append(
                f"{full}: no push in GitHub's activity; graded as {branch} is now "
                f"({head['sha'][:7]}), with no push time, so no lateness"
            )
    if not moves:
        return True  # a push to another branch, or a branch deleted
    staff = set(config.staff)
    actors = {str((item.get("actor") or {}).get("login", "")).lower() for item in moves}
    known: dict[str, str] = record.get("blobs", {})
    # Only the newest tree is needed when every push was by whoever may submit there: one
    # student's own repository pushed by that student (or staff). Else each push's own tree.
    walk = moves[-1:] if login is not None and actors <= staff | {login.lower()} else moves
    for move in moves:
        if move.get("activity_type") == "force_push":
            plan.notices.append(
                f"{full}: force-push by {_actor(move)} at {move.get('timestamp')} "
                f"(now {move['after'][:7]}): graded as the branch is now"
            )
    for move in walk:
        tree = github.get_json(
            f"repos/{full}/git/trees/{move['after']}?recursive=1",
            f"read the files of {full} at {move['after'][:7]}",
            missing_ok=True,
        )
        if tree is None:
            plan.notices.append(f"{full}: commit {move['after'][:7]} is gone; skipped")
            continue
        if tree.get("truncated"):
            plan.notices.append(f"{full}: GitHub truncated the file list of {move['after'][:7]}")
        known = _attribute(config, full, weeks, owner_of, move, tree, known, plan)
    record["blobs"] = known
    record["seen"] = moves[-1]["id"]
    record["head"] = moves[-1]["after"]
    return True


def _attribute(
    config: CourseConfig,
    full: str,
    weeks: tuple[str, ...],
    owner_of,
    move: dict[str, Any],
    tree: dict[str, Any],
    known: dict[str, str],
    plan: Plan,
) -> dict[str, str]:
    """Submissions the push `move` changed (relative to `known`: path → blob), as their
    student's own when the student or staff pushed it; returns the new path → blob map."""
    actor = _actor(move).lower()
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in tree.get("tree") or []:
        path = str(entry.get("path", ""))
        for week in weeks:
            login = owner_of(path, week)
            if login:
                found.setdefault((week, login), []).append(entry)
    now = {
        str(e["path"]): f"{e.get('mode')}:{e.get('sha')}"
        for entries in found.values()
        for e in entries
    }
    submissions = plan.state["submissions"]
    for (week, login), entries in sorted(found.items()):
        changed = [e for e in entries if known.get(str(e["path"])) != now[str(e["path"])]]
        if not changed:
            continue
        who = f"{login}'s {week}"
        if actor != login.lower() and actor not in config.staff:
            if actor.endswith("[bot]"):
                continue  # GitHub Classroom creating the repository from the template, say
            plan.notices.append(
                f"{full}: {_actor(move)} pushed {changed[0]['path']} at {move.get('timestamp')}, "
                f"in {login}'s place: not {who} submission, not graded as theirs (only {login} "
                "or course staff may)"
            )
            continue
        if len(entries) > 1:
            paths = ", ".join(sorted(str(e["path"]) for e in entries))
            plan.notices.append(
                f"{full}: {who} is ambiguous ({paths}); nothing graded until one is left"
            )
            continue
        entry = entries[0]
        if entry.get("mode") == SYMLINK or entry.get("type") != "blob":
            plan.notices.append(
                f"{full}: {entry['path']} is a symbolic link or a submodule, not a notebook: "
                "refused"
            )
            continue
        if int(entry.get("size") or 0) > MAX_NOTEBOOK_BYTES:
            plan.notices.append(
                f"{full}: {entry['path']} is over {MAX_NOTEBOOK_BYTES >> 20} MB: refused"
            )
            continue
        key = f"{week}/{login}"
        old = submissions.get(key)
        if old and old["blob"] == entry["sha"]:
            continue  # the same notebook again (a revert, a re-push)
        submissions[key] = {
            "repository": full,
            "path": str(entry["path"]),
            "commit": move["after"],
            "blob": str(entry["sha"]),
            "pushed_at": str(move.get("timestamp")),
            "actor": _actor(move),
        }
    for path in sorted(set(known) - set(now)):
        plan.notices.append(
            f"{full}: {path} was deleted by {_actor(move)}; the last graded submission stands"
        )
    return now


def activity_url(full: str, branch: str) -> str:
    ref = quote(f"refs/heads/{branch}", safe="")
    return f"repos/{full}/activity?per_page={ACTIVITY_PAGE}&ref={ref}"


def _actor(move: dict[str, Any]) -> str:
    return str((move.get("actor") or {}).get("login") or "someone")
