"""Stopping on a signal, and a child that notices its parent's death: real processes, real
signals, in a second or two."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from process_tree import read_proc, wait_until_gone

from grader.stopping import Stopped

STOPPABLE = """
import os, signal, sys, time
from grader import stopping

with stopping.stop_on_signals():
    try:
        if sys.argv[1] == "deferred":
            with stopping.deferred():
                print("ready", flush=True)
                while stopping.requested() is None:
                    time.sleep(0.01)
                print("asked to stop by", signal.Signals(stopping.requested()).name, flush=True)
            stopping.check()
        else:
            print("ready", flush=True)
            time.sleep(60)
    except stopping.Stopped as stop:
        print(stop, flush=True)
        sys.exit(stop.exit_code)
"""


@pytest.fixture
def start():
    """start(CODE, ARGS…): `python -c CODE ARGS…`, once it printed "ready"; killed at the end."""
    started = []

    def start(code: str, *args: str, **popen) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdout=subprocess.PIPE,
            text=True,
            **popen,
        )
        started.append(process)
        assert process.stdout.readline().split()[0] == "ready"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_stop_exits_with_128_plus_the_signal_number():
    assert Stopped(signal.SIGTERM).exit_code == 143
    assert Stopped(signal.SIGINT).exit_code == 130
    assert str(Stopped(signal.SIGTERM)) == "stopped by SIGTERM"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_raises_stopped_in_the_main_thread(start, signum):
    process = start(STOPPABLE, "at once")
    process.send_signal(signum)
    assert process.wait(30) == 128 + signum
    assert process.stdout.read().strip() == f"stopped by {signal.Signals(signum).name}"


def test_a_main_thread_that_waits_for_workers_is_told_not_interrupted(start):
    process = start(STOPPABLE, "deferred")
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 143
    assert process.stdout.read().splitlines() == ["asked to stop by SIGTERM", "stopped by SIGTERM"]


def test_a_signal_ignored_from_the_start_stays_ignored(start):
    # `nohup grader batch …`: SIGHUP is ignored when the command starts, and must stay so.
    process = start(
        STOPPABLE, "at once", preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)
    )
    process.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 143


PARENT = """
import os, subprocess, sys, time
from grader import stopping

child = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1]],
    pass_fds=(stopping.lifeline_fd(),),
    env={**os.environ, stopping.LIFELINE: str(stopping.lifeline_fd())},
)
print("ready", child.pid, flush=True)
time.sleep(60)
"""

CHILD = """
import sys, time
from grader import stopping

with stopping.stop_on_signals():
    stopping.stop_when_parent_dies()
    try:
        time.sleep(60)
    except stopping.Stopped as stop:
        open(sys.argv[1], "w").write(str(stop))
        sys.exit(stop.exit_code)
"""


def test_a_child_stops_itself_when_its_parent_is_killed(tmp_path):
    said = tmp_path / "child-said"
    child_code = CHILD.replace("sys.argv[1]", repr(str(said)))
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PARENT), textwrap.dedent(child_code)],
        stdout=subprocess.PIPE,
        text=True,
    )
    word, pid = parent.stdout.readline().split()
    assert word == "ready"
    child = read_proc(int(pid))
    time.sleep(0.5)  # the child is asleep, its lifeline watched
    parent.kill()
    parent.wait()
    seconds, left = wait_until_gone([child], 10)
    for proc in left:
        os.kill(proc.pid, signal.SIGKILL)
    assert not left, "the child outlived its parent by 10 s"
    assert said.read_text() == "stopped by SIGTERM"
