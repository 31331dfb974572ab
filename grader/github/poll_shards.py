"""The poll's plan written out for the grading matrix: each pending notebook fetched alone, by its
blob hash (checked against its content), into its shard with the push times, and plan.json,
which `poll-post` reads back."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.github.client import GitHubClient
from grader.github.poll_state import STATE_VERSION, Pending, Plan


def fetch_notebook(github: GitHubClient, item: Pending) -> bytes:
    """The notebook's bytes, by its blob hash, checked against that hash: no clone, and no
    other file of the repository."""
    blob = github.get_json(
        f"repos/{item.repository}/git/blobs/{item.blob}", f"read {item.path} of {item.repository}"
    )
    if not isinstance(blob, dict) or blob.get("encoding") != "base64":
        raise GraderError(f"{item.repository}: GitHub sent {item.path} in an unknown encoding")
    data = base64.b64decode(str(blob.get("content", "")))
    digest = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    if digest != item.blob:
        raise GraderError(f"{item.repository}: {item.path} does not match its hash {item.blob[:7]}")
    return data


def write_plan(github: GitHubClient, plan: Plan, out: Path, shards: int) -> dict[str, Any]:
    """Fetch each pending notebook into OUT/shard-N/WEEK/LOGIN/WEEK.ipynb (with the push times
    in OUT/shard-N/WEEK/pushed.csv), spread over at most `shards` shards, each week's students
    round-robin so that every shard gets a share of every week; write OUT/plan.json and return
    what it holds (`shards`: those with something to grade; `api_calls`: the poll's and the
    fetches')."""
    out.mkdir(parents=True, exist_ok=True)
    start = github.api_calls
    count = max(1, min(shards, len(plan.pending)))
    assigned: dict[int, list[Pending]] = {}
    by_week: dict[str, list[Pending]] = {}
    for item in sorted(plan.pending, key=lambda item: (item.week, item.login)):
        by_week.setdefault(item.week, []).append(item)
    turn = 0
    for items in by_week.values():
        for item in items:
            assigned.setdefault(turn % count, []).append(item)
            turn += 1
    fetched: list[dict[str, Any]] = []
    for shard, items in sorted(assigned.items()):
        for item in items:
            folder = out / f"shard-{shard}" / item.week
            target = folder / item.login / f"{item.week}.ipynb"
            try:
                data = fetch_notebook(github, item)
            except GraderError as error:
                plan.notices.append(f"{error}; not graded")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            with (folder / "pushed.csv").open("a", encoding="utf-8", newline="") as file:
                writer = csv.writer(file)
                if file.tell() == 0:
                    writer.writerow(["login", "submitted_at"])
                writer.writerow([item.login, item.pushed_at])
            fetched.append({**asdict(item), "shard": shard})
    used = sorted({entry["shard"] for entry in fetched})
    plan.api_calls += github.api_calls - start
    record = {
        "version": STATE_VERSION,
        "polled_at": plan.state.get("polled_at"),
        "idle": plan.idle,
        "api_calls": plan.api_calls,
        "shards": used,
        "pending": fetched,
        "deferred": [{**asdict(item), "reason": why} for item, why in plan.deferred],
        "notices": plan.notices,
    }
    (out / "plan.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def read_plan(out: Path) -> dict[str, Any]:
    try:
        plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GraderError(f"{out} holds no plan written by `grader poll` ({error})") from None
    if not isinstance(plan, dict) or plan.get("version") != STATE_VERSION:
        raise GraderError(f"{out}/plan.json is not a plan written by `grader poll`")
    return plan
