"""A `bentoml serve` process on 127.0.0.1, for tests and benchmarks: started, awaited, stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

SERVICE = "serving.service:NpsRiskService"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_ok(
    url: str, process: subprocess.Popen, timeout: float, log: Callable[[], str] = lambda: ""
) -> None:
    """Until ``url`` answers 200. RuntimeError, with the end of ``log()``, if ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited:\n{log()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 in {timeout} s:\n{log()[-3000:]}")


class ServiceProcess:
    """The service (or another Bento ``target``) in its own session, logging to a file."""

    def __init__(
        self,
        home: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        target: str = SERVICE,
        cwd: Path | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bentoml"),
                "serve",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NPSRISK_HOME": str(home), **(env or {})},
            cwd=cwd or Path(__file__).parents[1],
            start_new_session=True,  # one signal reaches the arbiter and its workers
        )

    def wait_until_up(self, ready: bool = True, timeout: float = 180) -> None:
        """Until /readyz (or, with ``ready=False``, /healthz) answers 200."""
        path = "/readyz" if ready else "/healthz"
        wait_for_ok(self.url + path, self.process, timeout, lambda: self.log_path.read_text())

    def stop(self) -> int:
        """SIGTERM (a graceful stop: shutdown hooks run), SIGKILL after 30 s; the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode
