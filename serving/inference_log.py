"""Append-only log of every prediction, written off the request path; monitoring reads it.

Layout: ``<home>/inference_log/date=YYYY-MM-DD/part-<host>-<pid>-<start>.jsonl``, one JSON
object per prediction. Each process writes its own files (no locking between workers); a
background thread serialises and appends batches. ``close()`` drains the queue, so a
service that stops (SIGTERM, shutdown hook, interpreter exit) loses no record.

``tidy_inference_log`` (run hourly by the service) compacts each finished day into one
``compacted.parquet`` (features and outputs as JSON text) and deletes days past the
retention; ``read_inference_log`` reads JSONL and Parquet alike. Records are encoded by
``serving.http.encode_json``, so the log never holds NaN or Infinity.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import queue
import shutil
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from serving.http import encode_json

if TYPE_CHECKING:  # monitoring reads the log as a frame; the service only appends to it
    import pandas as pd

logger = logging.getLogger(__name__)

Batch = Callable[[], list[dict]]  # builds the records; runs on the writer thread


class InferenceLog:
    """``log(build)`` queues a callable that returns the batch's records (cheap to call)."""

    def __init__(self, folder: Path, flush_seconds: float = 0.1, fsync: bool = False):
        self.folder = Path(folder)
        self.flush_seconds = flush_seconds
        self.fsync = fsync
        self._queue: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self._stem = f"part-{socket.gethostname()}-{os.getpid()}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        self._handle = None
        self._day = None
        self.written = 0
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log(self, build: Batch) -> None:
        if not self._closed:
            self._queue.put(build)

    def _file(self, day: str):
        # A day's file compacted (or removed) under an open handle would swallow every later
        # write into an unlinked inode: such a handle is reopened (one fstat per batch).
        gone = self._handle is not None and os.fstat(self._handle.fileno()).st_nlink == 0
        if day != self._day or gone:
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
                        encode_json(record).decode()
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
        # Wake on a clock, not on each put: a getter blocked on the queue is notified by every
        # put, and the writer then took the GIL from the request thread (~1 ms a request). A
        # short period keeps each batch short: the writer holds the GIL while it serialises a
        # batch, and a request arriving meanwhile waits (0.5 s batches at ~200 requests/s held
        # it ~20 ms at a time, which set the service's p99).
        stop = False
        while not stop:
            stop = self._wake.wait(self.flush_seconds)
            batches: list[Batch] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batches.append(item)
            if batches:
                self._write(batches)

    def close(self) -> None:
        """Write everything queued, then close the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        late = []  # put by a request that passed the closed check just before close()
        while True:
            try:
                late.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if late:
            self._write(late)
        if self._handle is not None:
            self._handle.close()
            self._handle = None


COMPACTED = "compacted.parquet"
JSON_COLUMNS = ("features", "outputs")
SETTLE_SECONDS = 600  # a day's JSONL untouched this long is finished (late writes included)


def _day_folders(folder: Path) -> dict[date, Path]:
    days = {}
    for path in Path(folder).glob("date=*"):
        try:
            days[date.fromisoformat(path.name[5:])] = path
        except ValueError:
            continue
    return days


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def compact_day(day_folder: Path) -> int:
    """Fold a finished day's JSONL files (and any earlier compaction) into one Parquet file.

    Idempotent: re-running merges whatever JSONL arrived since. The new file replaces the old
    one atomically before the JSONL files it holds are deleted, so a reader sees every record
    (at worst twice for a moment, never lost). Returns the records compacted (0: nothing to do).
    """
    parts = sorted(day_folder.glob("*.jsonl"))
    if not parts:
        return 0
    import pyarrow as pa  # compaction and readers only: not on a worker's start-up path
    import pyarrow.parquet as pq

    target = day_folder / COMPACTED
    records = []
    if target.is_file():
        records.extend(_decode_json_columns(pq.read_table(target).to_pylist()))
    for part in parts:
        records.extend(_read_jsonl(part))
    rows = [
        {k: (encode_json(v).decode() if k in JSON_COLUMNS else v) for k, v in r.items()}
        for r in records
    ]
    table = pa.Table.from_pylist(rows)
    tmp = day_folder / f".{COMPACTED}.{os.getpid()}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, target)
    for part in parts:
        part.unlink(missing_ok=True)
    return len(rows)


def tidy_inference_log(
    folder: Path,
    retention_days: int,
    compact: bool = True,
    today: date | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> dict[str, int]:
    """Delete days older than ``retention_days`` (0: keep all) and compact finished days.

    Today's files are never touched (the service is writing them). One process at a time
    (a lock file); another worker calling it meanwhile just returns.
    """
    folder = Path(folder)
    done = {"deleted_days": 0, "compacted_days": 0, "compacted_records": 0}
    if not folder.is_dir():
        return done
    today = today or datetime.now(UTC).date()
    with (folder / ".tidy.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return done
        for day, path in sorted(_day_folders(folder).items()):
            if retention_days and day < today - timedelta(days=retention_days):
                shutil.rmtree(path, ignore_errors=True)
                done["deleted_days"] += 1
                continue
            if not compact or day >= today:
                continue
            parts = list(path.glob("*.jsonl"))
            if not parts or time.time() - max(p.stat().st_mtime for p in parts) < settle_seconds:
                continue
            done["compacted_records"] += compact_day(path)
            done["compacted_days"] += 1
    if done["deleted_days"] or done["compacted_days"]:
        logger.info("inference log tidied: %s", done)
    return done


def _decode_json_columns(rows: list[dict]) -> list[dict]:
    for row in rows:
        for key in JSON_COLUMNS:
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return rows


def read_inference_log(
    folder: Path, since: date | None = None, until: date | None = None
) -> pd.DataFrame:
    """Logged predictions (features and outputs as dict columns), compacted days and JSONL
    alike; ``since`` / ``until`` (inclusive) skip whole day folders unread."""
    import pandas as pd
    import pyarrow.parquet as pq

    records = []
    for day, path in sorted(_day_folders(Path(folder)).items()):
        if (since and day < since) or (until and day > until):
            continue
        compacted = path / COMPACTED
        if compacted.is_file():
            records.extend(_decode_json_columns(pq.read_table(compacted).to_pylist()))
        for part in sorted(path.glob("*.jsonl")):
            records.extend(_read_jsonl(part))
    frame = pd.DataFrame.from_records(records)
    if len(frame):
        frame = frame.sort_values("logged_at", kind="stable", ignore_index=True)
    return frame
