"""Append-only log of every prediction, written off the request path; monitoring reads it.

Layout: ``<home>/inference_log/date=YYYY-MM-DD/part-<host>-<pid>-<start>.jsonl``, one JSON
object per prediction. Each process writes its own files (no locking between workers); a
background thread serialises and appends batches. ``close()`` drains the queue, so a
service that stops (SIGTERM, shutdown hook, interpreter exit) loses no record.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

Batch = Callable[[], list[dict]]  # builds the records; runs on the writer thread


class InferenceLog:
    """``log(build)`` queues a callable that returns the batch's records (cheap to call)."""

    def __init__(self, folder: Path, flush_seconds: float = 0.5, fsync: bool = False):
        self.folder = Path(folder)
        self.flush_seconds = flush_seconds
        self.fsync = fsync
        self._queue: queue.Queue[Batch | None] = queue.Queue()
        self._stem = f"part-{socket.gethostname()}-{os.getpid()}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        self._handle = None
        self._day = None
        self.written = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log(self, build: Batch) -> None:
        if not self._closed:
            self._queue.put(build)

    def _file(self, day: str):
        if day != self._day:
            if self._handle is not None:
                self._handle.close()
            folder = self.folder / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            self._handle = (folder / f"{self._stem}.jsonl").open("a", encoding="utf-8")
            self._day = day
        return self._handle

    def _write(self, batches: list[Batch]) -> None:
        lines_by_day: dict[str, list[str]] = {}
        for build in batches:
            try:
                for record in build():
                    lines_by_day.setdefault(record["logged_at"][:10], []).append(
                        json.dumps(record, separators=(",", ":"), default=_json_default)
                    )
            except Exception:  # a bad record must not stop the log
                logger.exception("could not serialise an inference log batch")
        for day, lines in lines_by_day.items():
            handle = self._file(day)
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
            self.written += len(lines)

    def _run(self) -> None:
        stop = False
        while not stop:
            batches: list[Batch] = []
            try:
                item = self._queue.get(timeout=self.flush_seconds)
                batches.append(item) if item is not None else None
                stop = item is None
                while not stop:
                    item = self._queue.get_nowait()
                    if item is None:
                        stop = True
                    else:
                        batches.append(item)
            except queue.Empty:
                pass
            if batches:
                self._write(batches)

    def close(self) -> None:
        """Write everything queued, then close the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return str(value)


def read_inference_log(folder: Path) -> pd.DataFrame:
    """All logged predictions as one frame (features and outputs as dict columns)."""
    records = []
    for path in sorted(Path(folder).glob("date=*/*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    frame = pd.DataFrame.from_records(records)
    if len(frame):
        frame = frame.sort_values("logged_at", kind="stable", ignore_index=True)
    return frame
