"""Serving slots: ``serving.workers`` workers serve while ``serving.spare_workers`` wait, loaded.

BentoML's arbiter replaces a dead worker by starting a new process, and that process spends
seconds importing BentoML and LightGBM before it can answer. So the service starts
``workers + spare_workers`` processes, and each one claims one of ``workers`` slots before it
accepts a connection: an exclusive ``flock`` on ``run/slots/<instance>/slot-<i>``, which
holds the claimant's pid. A worker that finds every slot taken is a spare. It loads the
champion and the store like any worker, follows reloads, and accepts nothing: uvicorn starts
listening only once the service's start-up hook returns, and the hook waits for a slot.

When a worker dies, even by ``kill -9``, the kernel releases its lock, a spare claims the slot
within ``POLL_SECONDS`` and starts accepting, and the arbiter's replacement process becomes the
next spare once it has loaded. The lock file descriptor is not inherited by child processes
(Python opens files close-on-exec), so only the worker itself holds its slot.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

POLL_SECONDS = 0.05  # how often a spare tries the slots: ~20 non-blocking flocks a second


class Slots:
    """The ``count`` serving slots of one instance, in ``folder``."""

    def __init__(self, folder: Path, count: int):
        self.folder = folder
        self.count = count
        self.held: int | None = None
        self._fd: int | None = None

    def path(self, slot: int) -> Path:
        return self.folder / f"slot-{slot}"

    def try_claim(self) -> int | None:
        """The slot this process holds, claiming a free one if it holds none; None when every
        slot is held by another live process."""
        if self.held is not None:
            return self.held
        self.folder.mkdir(parents=True, exist_ok=True)
        for slot in range(self.count):
            fd = os.open(self.path(slot), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd, self.held = fd, slot
            return slot
        return None

    async def claim(self, poll: float = POLL_SECONDS) -> int:
        """Wait (without blocking the event loop) until a slot is free, and claim it."""
        while (slot := self.try_claim()) is None:
            await asyncio.sleep(poll)
        return slot

    def holders(self) -> dict[int, int]:
        """Slot -> pid of the process holding it now (a slot no live process holds is left
        out): what an operator or a test reads to tell serving workers from spares."""
        held: dict[int, int] = {}
        for slot in range(self.count):
            path = self.path(slot)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: the file names its holder
                text = path.read_text().strip()
                if text.isdigit():
                    held[slot] = int(text)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return held


def serving_workers(slots_root: Path, arbiter_pid: int) -> dict[int, int]:
    """Slot -> pid of each serving worker of the instance whose arbiter is ``arbiter_pid``
    (``slots_root`` is the home's ``run/slots``); its other workers are spares."""
    held: dict[int, int] = {}
    for folder in slots_root.glob(f"*-{arbiter_pid}-*"):
        held.update(Slots(folder, len(list(folder.glob("slot-*")))).holders())
    return held
