"""Where commands write what they produce: one fresh folder per run under the project home."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from npsrisk.settings import Settings

MAX_SAME_STAMP = 10_000


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def claim_dir(parent: Path, stamp: str) -> Path:
    """A new folder ``parent/<stamp>``, or ``<stamp>-2``, ``-3``... if a run that started in
    the same second took it. ``mkdir`` without ``exist_ok`` is atomic, so two processes can
    never get the same folder and one run's reports never overwrite another's."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_SAME_STAMP + 1):
        path = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"{MAX_SAME_STAMP} runs started in {stamp} under {parent}")


def new_report_dir(settings: Settings, kind: str, stamp: str | None = None) -> Path:
    """A fresh ``<home>/reports/<kind>/<stamp>[-n]`` folder of its own for this run (created:
    this is the explicit write)."""
    return claim_dir(settings.reports_path / kind, stamp or utc_stamp())
