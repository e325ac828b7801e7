"""Replacing a dead worker at once: BentoML's process arbiter only looks every 10 seconds.

``bentoml serve`` runs its workers under a circus arbiter that notices a dead worker (and
starts its replacement) only on its periodic check, every 10 s in BentoML 1.4 (a shorter
period makes BentoML's start-up commands collide). ``respawn_on_exit`` makes the arbiter
check as soon as one of its children exits (SIGCHLD), so after ``kill -9`` the replacement
starts within milliseconds instead of after 0-10 s. It runs in the arbiter process only,
from the service's ``on_deployment`` hook, before the arbiter exists.
"""

from __future__ import annotations

import logging
import signal

logger = logging.getLogger("bentoml.service.npsrisk")

RETRY_SECONDS = 0.2  # when the arbiter is busy with another command


def respawn_on_exit() -> bool:
    """Have BentoML's next arbiter check its workers whenever a child exits. False (and a
    warning; the 10 s check still replaces workers) when this BentoML has no such arbiter."""
    try:
        from bentoml._internal.utils import circus as bento_circus
        from circus.exc import ConflictError
    except ImportError:
        logger.warning("no circus arbiter to hook: dead workers are replaced on its 10 s check")
        return False
    base = bento_circus.Arbiter
    if getattr(base, "respawns_on_exit", False):
        return True

    class PromptArbiter(base):  # type: ignore[misc, valid-type]
        respawns_on_exit = True

        def start(self, cb=None):
            previous = signal.getsignal(signal.SIGCHLD)

            def on_child(signum, frame) -> None:
                loop = getattr(self.loop, "asyncio_loop", None)
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self._check_workers)
                if callable(previous):
                    previous(signum, frame)

            signal.signal(signal.SIGCHLD, on_child)
            return super().start(cb)

        def _check_workers(self) -> None:
            if self._stopping:
                return
            try:
                self.manage_watchers()
            except ConflictError:  # starting or stopping: look again shortly
                self.loop.call_later(RETRY_SECONDS, self._check_workers)

    bento_circus.Arbiter = PromptArbiter
    return True
