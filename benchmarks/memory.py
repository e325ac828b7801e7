"""Process memory for the benchmarks: current and peak resident set size, in MiB."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def _status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status (Linux), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Current resident set size (the peak so far where /proc is unavailable)."""
    current = _status_mib("VmRSS")
    return peak_rss_mib() if current is None else current


def peak_rss_mib() -> float:
    """Peak resident set size since the last ``reset_peak`` (or since the start)."""
    peak = _status_mib("VmHWM")
    if peak is None:  # not Linux: ru_maxrss, KiB on Linux but bytes on macOS
        scale = 2**20 if sys.platform == "darwin" else 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    return peak


def reset_peak() -> bool:
    """Reset the peak to the current RSS (Linux >= 4.0), so each step gets its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
