"""Stopping on a signal, and a child that notices its parent's death: real processes, real
signals, in a second or two on an idle machine. Every wait is for an event (a line printed, a
process gone, a file written); DEADLINE only bounds a hang, however busy the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from process_tree import read_proc, wait_until_gone

from grader.stopping import Stopped

DEADLINE = 600  # s: only a process that hangs meets it, never a slow one
pytestmark = pytest.mark.usefixtures("signals_not_ignored")  # `pytest &` ignores SIGINT

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
            time.sleep(3600)  # until a signal ends it (or the fixture kills it)
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
    assert process.wait(DEADLINE) == 128 + signum
    assert process.stdout.read().strip() == f"stopped by {signal.Signals(signum).name}"


def test_a_main_thread_that_waits_for_workers_is_told_not_interrupted(start):
    process = start(STOPPABLE, "deferred")
    process.send_signal(signal.SIGTERM)
    assert process.wait(DEADLINE) == 143
    assert process.stdout.read().splitlines() == ["asked to stop by SIGTERM", "stopped by SIGTERM"]


def test_a_signal_ignored_from_the_start_stays_ignored(start):
    # `nohup grader batch …`: SIGHUP is ignored when the command starts, and must stay so.
    process = start(
        STOPPABLE, "at once", preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)
    )
    # No waiting to see that nothing happens: SIGTERM follows at once. Both are pending when the
    # process next runs, and a handled SIGHUP would be handled first (the lower number, and the
    # first one stops it), so a SIGHUP that was not ignored ends it with 129, "by SIGHUP".
    process.send_signal(signal.SIGHUP)
    process.send_signal(signal.SIGTERM)
    assert process.wait(DEADLINE) == 143
    assert process.stdout.read().strip() == "stopped by SIGTERM"


PARENT = """
import os, subprocess, sys, time
from grader import stopping

child = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1]],
    pass_fds=(stopping.lifeline_fd(),),
    env={**os.environ, stopping.LIFELINE: str(stopping.lifeline_fd())},
)
print("ready", child.pid, flush=True)
time.sleep(3600)  # until the test kills it
"""

CHILD = """
import sys, time
from grader import stopping

with stopping.stop_on_signals():
    stopping.stop_when_parent_dies()
    try:
        print("watching", flush=True)  # its lifeline watched, a stop handled from here on
        time.sleep(3600)  # until its parent's death stops it
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
    # The child shares its parent's stdout: "ready PID" and "watching", in either order.
    lines = sorted([parent.stdout.readline().split(), parent.stdout.readline().split()])
    assert lines[0][0] == "ready" and lines[1] == ["watching"], lines
    child = read_proc(int(lines[0][1]))
    parent.kill()
    parent.wait()
    seconds, left = wait_until_gone([child], DEADLINE)
    for proc in left:
        os.kill(proc.pid, signal.SIGKILL)
    assert not left, f"the child outlived its parent by {DEADLINE} s"
    assert said.read_text() == "stopped by SIGTERM"
