"""Time the Ibis/DuckDB feature build against the plain-pandas reference on the same spine.

    uv run python benchmarks/feature_build.py --customers 100000
    uv run python benchmarks/feature_build.py --customers 100000 --snapshots 6
    uv run python benchmarks/feature_build.py --data path/to/export --repeats 5

Both builds run in this process on the same validated tables: one warm-up each, then the best
wall time of ``--repeats`` runs.

With ``--data`` a folder (or a DuckDB file), it then times the whole way from the files, as
training and scoring run it: the DuckDB engine (features.duck: event tables streamed from the
files into DuckDB, checked on the way, the definitions run there) against the pandas way
(load every table into pandas, validate there, the pandas reference build), with the peak
memory of each over the tables loaded for the spine (goal: >= 3x faster at 100,000 customers
and 6 snapshots; the validation counts are checked equal).

The frames are checked for equality (``tickets_csat_last`` and ``nps_last_score``/``nps_trend``
cells whose "last" row is a same-second tie with different values are left out of the check:
the engine breaks such ties arbitrarily).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from memory import peak_rss_mib, reset_peak, rss_mib  # benchmarks/memory.py

from demo.generator import DemoConfig, generate_demo
from features.build import FeaturePlan, build_features, plan_features
from features.duck import build_features_duckdb, validate_duckdb
from features.loading import RawTables, load_tables
from features.reference import ambiguous_last_values, build_features_pandas
from features.validation import ValidatedTables, validate_tables
from npsrisk.settings import load_settings
from training.snapshots import active_customers, data_window


def load(args: argparse.Namespace) -> tuple[ValidatedTables, str]:
    if args.data is not None:
        return validate_tables(load_tables(args.data)), str(args.data)
    data = generate_demo(DemoConfig(customers=args.customers, seed=args.seed))
    raw = RawTables(source=Path("memory"), source_format="memory", frames=data.tables)
    return validate_tables(raw), f"demo, {args.customers} customers, seed {args.seed}"


def month_ends(tables: ValidatedTables, count: int) -> list[pd.Timestamp]:
    """The ``count`` latest month ends on or before the last date in the data."""
    start, end = data_window(tables)
    dates = pd.date_range(start, end, freq="ME")
    if len(dates) == 0:
        raise SystemExit(f"No month end between {start.date()} and {end.date()}.")
    return [pd.Timestamp(d) for d in dates[-count:]]


def make_pairs(tables: ValidatedTables, dates: list[pd.Timestamp]) -> pd.DataFrame:
    """Every active customer at each as-of date (scoring: one date; training: several)."""
    return pd.concat(
        [pd.DataFrame({"customer_id": active_customers(tables, d), "as_of": d}) for d in dates],
        ignore_index=True,
    )


def best_time(build: Callable[[], pd.DataFrame], repeats: int) -> tuple[float, float, pd.DataFrame]:
    """Warm up once, then the best wall time of ``repeats`` runs; also the peak RSS (MiB)
    over all the runs and the last result."""
    gc.collect()
    reset_peak()
    frame = build()
    best = float("inf")
    for _ in range(repeats):
        del frame
        gc.collect()
        start = time.perf_counter()
        frame = build()
        best = min(best, time.perf_counter() - start)
    return best, peak_rss_mib(), frame


def check_equal(
    engine: pd.DataFrame,
    reference: pd.DataFrame,
    tables: ValidatedTables,
    pairs: pd.DataFrame,
    plan: FeaturePlan,
) -> int:
    """Assert the frames are equal apart from tie-ambiguous cells; return how many those are."""
    ambiguous = ambiguous_last_values(tables, pairs, plan)
    engine, reference = engine.copy(), reference.copy()
    for column in ambiguous.columns[ambiguous.any()]:
        mask = ambiguous[column].to_numpy()
        engine.loc[mask, column] = float("nan")
        reference.loc[mask, column] = float("nan")
    pd.testing.assert_frame_equal(engine, reference, check_dtype=False, rtol=1e-9, atol=1e-12)
    return int(ambiguous.to_numpy().sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="demo customers")
    parser.add_argument("--seed", type=int, default=7, help="demo seed")
    parser.add_argument("--data", type=Path, help="read this folder/DuckDB file instead")
    parser.add_argument(
        "--snapshots", type=int, default=1, help="latest month-end as-of dates in the spine"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument(
        "--no-files", action="store_true", help="with --data: skip the from-the-files timing"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    tables, source = load(args)
    settings = load_settings()
    plan, _ = plan_features(tables, settings.features, settings.data)
    dates = month_ends(tables, args.snapshots)
    pairs = make_pairs(tables, dates)
    rows = {name: len(frame) for name, frame in tables.frames.items()}
    print(f"data: {source} ({time.perf_counter() - start:.1f} s to prepare)")
    print("rows: " + ", ".join(f"{name} {n:,}" for name, n in rows.items()))
    print(
        f"spine: {len(pairs):,} rows, {len(dates)} as-of date(s) "
        f"{dates[0].date()}..{dates[-1].date()}"
    )
    gc.collect()
    base = rss_mib()
    print(f"RSS with the data loaded: {base:,.0f} MiB (peak while preparing {peak_rss_mib():,.0f})")

    ibis_s, ibis_peak, engine = best_time(lambda: build_features(tables, pairs, plan), args.repeats)
    pandas_s, pandas_peak, reference = best_time(
        lambda: build_features_pandas(tables, pairs, plan), args.repeats
    )
    separate = reset_peak()
    ambiguous = check_equal(engine, reference, tables, pairs, plan)

    print()
    header = f"{'implementation':<14}{'rows':>9}{'features':>10}{'best s':>9}{'peak RSS MiB':>14}"
    print(header + f"{'(+ over data)':>15}")
    for name, seconds, peak in (
        ("ibis/duckdb", ibis_s, ibis_peak),
        ("pandas", pandas_s, pandas_peak),
    ):
        print(
            f"{name:<14}{len(engine):>9,}{len(plan.feature_names):>10}{seconds:>9.2f}"
            f"{peak:>14,.0f}{peak - base:>+15,.0f}"
        )
    print(f"pandas/ibis time ratio: {pandas_s / ibis_s:.2f}")
    print(
        f"frames equal (rtol 1e-9), {ambiguous} tie-ambiguous 'last' cells left out; "
        f"best of {args.repeats} runs after a warm-up"
        + ("" if separate else "; peak RSS is cumulative (no /proc/self/clear_refs)")
    )
    if args.data is not None and not args.no_files:
        from_files(args, tables, pairs, plan, base)


def from_files(
    args: argparse.Namespace,
    tables: ValidatedTables,
    pairs: pd.DataFrame,
    plan: FeaturePlan,
    base: float,
) -> None:
    """Files to features: the DuckDB engine against pandas loading, validation and build."""
    settings = load_settings()

    def duck() -> tuple[pd.DataFrame, dict]:
        checked = validate_duckdb(args.data, settings.data)
        try:
            frame = build_features_duckdb(checked, pairs, plan)
        finally:
            checked.close()
        return frame, checked.report.to_dict()["tables"]

    def in_pandas() -> tuple[pd.DataFrame, dict]:
        validated = validate_tables(load_tables(args.data), settings.data)
        frame = build_features_pandas(validated, pairs, plan)
        return frame, validated.report.to_dict()["tables"]

    duck_s, duck_peak, (engine, duck_report) = best_time(duck, args.repeats)
    pandas_s, pandas_peak, (reference, pandas_report) = best_time(in_pandas, args.repeats)
    assert duck_report == pandas_report, "validation counts differ"
    ambiguous = check_equal(engine, reference, tables, pairs, plan)
    print()
    print("from the files (read, validate, build):")
    print(f"{'implementation':<14}{'best s':>9}{'peak RSS MiB':>14}{'(+ over data)':>15}")
    for name, seconds, peak in (
        ("duckdb files", duck_s, duck_peak),
        ("pandas", pandas_s, pandas_peak),
    ):
        print(f"{name:<14}{seconds:>9.2f}{peak:>14,.0f}{peak - base:>+15,.0f}")
    print(f"pandas/duckdb time ratio from the files: {pandas_s / duck_s:.2f}")
    print(
        f"validation counts equal; frames equal (rtol 1e-9), {ambiguous} tie-ambiguous cells "
        f"left out; best of {args.repeats} run(s) after a warm-up"
    )


if __name__ == "__main__":
    main()
