"""Time and peak memory of `npsrisk monitor drift`'s work against a plain Evidently run on
the same frames.

    uv run python benchmarks/monitor_drift.py --home HOME --data DATA --as-of 2025-05-31 \
        --rows 100000

HOME holds a trained champion (with its reference sample), DATA the export it scores. The
current window is built once from DATA at --as-of with the champion's plan, then resampled
with replacement to --rows rows (the reference keeps its own size), so both runs see exactly
the same two frames. Each run happens in its own process, so peak memory is its own:

- ``monitor drift``: Evidently's DataDriftPreset with include_tests (our methods and
  thresholds), the parsing, the column x segment tests with Benjamini-Hochberg, the HTML and
  JSON, the index page (sampling above monitoring.sample_rows, as the command does);
- ``plain Evidently``: ``Report([DataDriftPreset()], include_tests=True)`` on the same
  columns with Evidently's defaults, and ``save_html``.

Import time of Evidently is reported apart (both pay it once per process).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from memory import peak_rss_mib, reset_peak, rss_mib


def _child(kind: str, folder: Path, home: Path) -> dict:
    import pandas as pd

    from monitoring.reference import load_reference
    from monitoring.windows import Window
    from npsrisk.settings import load_settings

    settings = load_settings(home=home)
    reference = load_reference(settings)
    current = pd.read_parquet(folder / "current.parquet")
    columns = json.loads((folder / "columns.json").read_text())
    started = time.perf_counter()
    import evidently  # noqa: F401

    imported = time.perf_counter() - started
    reset_peak()
    base = rss_mib()
    started = time.perf_counter()
    if kind == "ours":
        from monitoring.drift_report import run_drift

        window = Window(current, "benchmark frame", None, None, True)
        result = run_drift(settings, reference, window, folder / "ours")
        extra = {"verdict": result.summary["verdict"], "segment_tests": len(result.segments)}
    else:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        from monitoring.drift_report import _prepare
        from monitoring.windows import reference_window

        ref = _prepare(reference_window(reference).frame, columns["num"], columns["cat"])
        cur = _prepare(current, columns["num"], columns["cat"])
        cols = columns["num"] + columns["cat"]
        definition = DataDefinition(
            numerical_columns=columns["num"], categorical_columns=columns["cat"]
        )
        run = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(cur[cols], data_definition=definition),
            Dataset.from_pandas(ref[cols], data_definition=definition),
        )
        run.save_html(str(folder / "plain.html"))
        extra = {}
    seconds = time.perf_counter() - started
    return {
        "kind": kind,
        "seconds": round(seconds, 2),
        "evidently_import_seconds": round(imported, 2),
        "peak_mib_above_start": round(peak_rss_mib() - base, 1),
        "peak_mib": round(peak_rss_mib(), 1),
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--as-of", default=None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--child", choices=["ours", "plain"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.folder, args.home)))
        return 0

    import pandas as pd

    from monitoring.drift_report import choose_columns
    from monitoring.reference import load_reference
    from monitoring.windows import reference_window, window_from_data
    from npsrisk.settings import load_settings

    settings = load_settings(home=args.home)
    reference = load_reference(settings)
    as_of = pd.Timestamp(args.as_of) if args.as_of else None
    window = window_from_data(args.data, reference, as_of)
    current = window.frame.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
    num, cat, _ = choose_columns(reference_window(reference).frame, current, reference, True)
    folder = Path(tempfile.mkdtemp(prefix="npsrisk-drift-bench-"))
    current.to_parquet(folder / "current.parquet")
    (folder / "columns.json").write_text(json.dumps({"num": num, "cat": cat}))
    print(
        f"reference {len(reference.frame):,} rows, current {len(current):,} rows (resampled "
        f"from {len(window.frame):,} customers at {window.end}), {len(num) + len(cat)} columns; "
        f"monitoring.sample_rows={settings.monitoring.sample_rows:,}",
        flush=True,
    )
    results = {}
    for kind in ("plain", "ours"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--folder", str(folder),
             "--home", str(args.home), "--data", str(args.data)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(results[kind]), flush=True)
    ours, plain = results["ours"], results["plain"]
    print(
        f"\nmonitor drift {ours['seconds']:.1f} s, peak +{ours['peak_mib_above_start']:.0f} MiB; "
        f"plain Evidently {plain['seconds']:.1f} s, peak +{plain['peak_mib_above_start']:.0f} MiB; "
        f"time ratio {ours['seconds'] / plain['seconds']:.2f}x, memory ratio "
        f"{ours['peak_mib_above_start'] / max(plain['peak_mib_above_start'], 1):.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
