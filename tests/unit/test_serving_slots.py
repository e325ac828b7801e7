"""Serving slots: a worker that dies (even by SIGKILL) frees its slot for a waiting spare, and
only the worker itself ever holds it."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from serving.slots import Slots

HOLD = """
import sys, time
from pathlib import Path
from serving.slots import Slots
slots = Slots(Path(sys.argv[1]), int(sys.argv[2]))
print(slots.try_claim(), flush=True)
time.sleep(600)
"""


def holder(folder, count: int) -> subprocess.Popen:
    """A process that claims a slot, prints which, and sleeps."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    assert process.stdout.readline().strip() == "0"
    return process


def test_workers_claim_distinct_slots_and_the_rest_wait(tmp_path):
    first, second, third = (Slots(tmp_path, 2) for _ in range(3))
    assert (first.try_claim(), second.try_claim(), third.try_claim()) == (0, 1, None)
    assert first.try_claim() == 0  # a holder keeps its slot
    assert Slots(tmp_path, 2).holders() == {0: os.getpid(), 1: os.getpid()}


def test_a_spare_takes_the_slot_of_a_worker_killed_with_sigkill(tmp_path):
    process = holder(tmp_path, 1)
    try:
        spare = Slots(tmp_path, 1)
        assert spare.try_claim() is None
        assert spare.holders() == {0: process.pid}

        async def kill_then_claim() -> int:
            claim = asyncio.ensure_future(spare.claim(poll=0.01))
            await asyncio.sleep(0.2)
            assert not claim.done()  # still held: the spare waits
            os.kill(process.pid, signal.SIGKILL)
            return await asyncio.wait_for(claim, timeout=30)

        assert asyncio.run(kill_then_claim()) == 0
        assert process.wait(timeout=30) == -signal.SIGKILL
        assert spare.holders() == {0: os.getpid()}
    finally:
        process.kill()
        process.wait()


def test_a_child_process_does_not_inherit_its_parents_slot(tmp_path):
    parent = Slots(tmp_path, 1)
    assert parent.try_claim() == 0
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        os.close(parent._fd)  # the parent exits; its child lives on
        deadline = time.time() + 10
        other = Slots(tmp_path, 1)
        while other.try_claim() is None:
            if time.time() > deadline:
                pytest.fail("the child process kept the slot its parent held")
            time.sleep(0.05)
        assert other.holders() == {0: os.getpid()}
    finally:
        child.kill()
        child.wait()


def test_no_holder_no_stale_pid(tmp_path):
    process = holder(tmp_path, 1)
    process.kill()
    process.wait()
    # The file still names the dead pid; nobody holds the lock, so it is not reported.
    assert (tmp_path / "slot-0").read_text().strip() == str(process.pid)
    assert Slots(tmp_path, 1).holders() == {}
