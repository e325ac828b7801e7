"""Time and peak memory of `npsrisk monitor drift` on the 100k-customer demo, against a plain
Evidently run on the same frames.

    flock /work/notes/heavy.lock uv run python benchmarks/monitor_drift.py \
        --data /tmp/demo-100k --home /tmp/home-100k --customers 100000

DATA is a demo export (generated there with ``--customers`` and ``--seed`` when it holds none),
HOME a home with a champion and its reference sample (trained on DATA with
``training.max_snapshots`` = ``--max-snapshots`` when it holds none). Three runs, each in its own
process so its peak memory is its own:

- ``cli``: ``npsrisk monitor drift --data DATA --as-of AS_OF`` exactly as a user runs it: the
  window built with the champion's plan (every customer active at AS_OF, featurized and scored),
  then the comparison, the report and the alert;
- ``ours``: ``monitoring.drift_report.run_drift`` on the frames saved from that window:
  Evidently's DataDriftPreset with include_tests (our methods and thresholds), the parsing, the
  column x segment tests with Benjamini-Hochberg, the HTML and JSON, the index page (sampling
  above monitoring.sample_rows, as the command does);
- ``plain``: ``Report([DataDriftPreset()], include_tests=True)`` on the same columns of the same
  frames with Evidently's defaults, and ``save_html``.

The ratio ours / plain is the figure to trust; absolute times depend on the machine's load.
Import time of Evidently is reported apart (every run pays it once per process).
``--rows N`` resamples the window to N rows (with replacement) to try other sizes.
"""

from __future__ import annotations

import argparse
import json
import os
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


CLI_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from memory import peak_rss_mib
from npsrisk.cli import main
sys.argv = ["npsrisk", *sys.argv[2:]]
started = time.perf_counter()
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
print(json.dumps({"kind": "cli", "seconds": round(time.perf_counter() - started, 2),
                  "exit_code": code, "peak_mib": round(peak_rss_mib(), 1)}))
"""


def _run_cli(home: Path, data: Path, as_of: str) -> dict:
    """`npsrisk monitor drift --data DATA --as-of AS_OF` in a fresh process: seconds, peak MiB,
    exit code (0/1 are verdicts; anything else fails the benchmark)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "NPSRISK_HOME": str(home),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-c", CLI_CHILD, str(Path(__file__).parent), "monitor", "drift",
         "--data", str(data), "--as-of", as_of],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if result.get("exit_code") not in (0, 1):
        raise SystemExit(f"monitor drift failed:\n{done.stdout}\n{done.stderr}")
    result["verdict_line"] = next((ln.strip() for ln in lines if ln.startswith("verdict")), "")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="trained there if no champion")
    parser.add_argument("--data", type=Path, required=True, help="generated there if empty")
    parser.add_argument("--customers", type=int, default=100_000, help="demo size if generated")
    parser.add_argument("--seed", type=int, default=7, help="demo seed if generated")
    parser.add_argument("--max-snapshots", type=int, default=3, help="training snapshots")
    parser.add_argument("--as-of", default=None, help="current window (default: last day)")
    parser.add_argument("--rows", type=int, default=0, help="resample the window (0: as is)")
    parser.add_argument("--skip-cli", action="store_true", help="skip the end-to-end run")
    parser.add_argument("--child", choices=["ours", "plain"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.folder, args.home)))
        return 0

    import pandas as pd
    from batch_scoring import ensure_champion, ensure_data

    from monitoring.drift_report import choose_columns
    from monitoring.reference import load_reference
    from monitoring.windows import reference_window, window_from_data

    print(
        f"npsrisk monitor drift benchmark (python {sys.version.split()[0]}, {os.cpu_count()} "
        f"CPUs, load average {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    data, home = args.data.resolve(), args.home.resolve()
    ensure_data(data, args.customers, args.seed)
    settings, _ = ensure_champion(data, home, args.max_snapshots)
    reference = load_reference(settings)
    as_of = pd.Timestamp(args.as_of) if args.as_of else None
    started = time.perf_counter()
    window = window_from_data(data, reference, as_of)
    built = time.perf_counter() - started
    customers = len(pd.read_parquet(data / "customers.parquet", columns=["customer_id"]))
    current = window.frame
    if args.rows:
        current = current.sample(args.rows, replace=True, random_state=0)
    current = current.reset_index(drop=True)
    num, cat, _ = choose_columns(reference_window(reference).frame, current, reference, True)
    folder = Path(tempfile.mkdtemp(prefix="npsrisk-drift-bench-"))
    current.to_parquet(folder / "current.parquet")
    (folder / "columns.json").write_text(json.dumps({"num": num, "cat": cat}))
    print(
        f"export {data}: {customers:,} customers; current window: {len(window.frame):,} active "
        f"at {window.end} (built in {built:.1f} s in this process)"
        + (f", resampled to {len(current):,} rows" if args.rows else "")
        + f"; reference {len(reference.frame):,} rows of v{reference.version}; "
        f"{len(num) + len(cat)} columns; monitoring.sample_rows="
        f"{settings.monitoring.sample_rows:,}",
        flush=True,
    )
    results = {}
    for kind in ("plain", "ours"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--folder", str(folder),
             "--home", str(home), "--data", str(data)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(results[kind]), flush=True)
    ours, plain = results["ours"], results["plain"]
    print(
        f"\nmonitor drift's comparison {ours['seconds']:.1f} s, peak +"
        f"{ours['peak_mib_above_start']:.0f} MiB; plain Evidently {plain['seconds']:.1f} s, peak +"
        f"{plain['peak_mib_above_start']:.0f} MiB; time ratio "
        f"{ours['seconds'] / plain['seconds']:.2f}x, memory ratio "
        f"{ours['peak_mib_above_start'] / max(plain['peak_mib_above_start'], 1):.2f}x",
        flush=True,
    )
    if not args.skip_cli:
        day = window.end or str(pd.Timestamp(as_of).date())
        cli = _run_cli(home, data, day)
        print(json.dumps(cli))
        print(
            f"npsrisk monitor drift --data (end to end, window built from the export): "
            f"{cli['seconds']:.1f} s, peak {cli['peak_mib']:.0f} MiB, exit {cli['exit_code']}; "
            f"{cli['verdict_line']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
