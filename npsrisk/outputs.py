"""Where commands write what they produce: timestamped folders under the project home."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from npsrisk.settings import Settings


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def new_report_dir(settings: Settings, kind: str, stamp: str | None = None) -> Path:
    """A fresh ``<home>/reports/<kind>/<stamp>`` folder (created: this is the explicit write)."""
    path = settings.reports_path / kind / (stamp or utc_stamp())
    path.mkdir(parents=True, exist_ok=True)
    return path
