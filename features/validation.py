"""Contract validation: typed good rows, and every bad row set aside with its reason."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from features.contract import TABLES, Column, TableSpec
from features.loading import DataSourceError, RawTables

SOURCE_ROW = "_source_row"
REASONS = "_reasons"


@dataclass
class TableReport:
    """What happened to one table's rows."""

    table: str
    origin: str
    rows_read: int
    rows_kept: int
    rows_set_aside: int
    reasons: dict[str, int] = field(default_factory=dict)
    note: str | None = None


@dataclass
class ValidationReport:
    """Counts per table and per reason, plus what was absent or ignored."""

    source: str
    tables: dict[str, TableReport]
    absent_tables: list[str]
    ignored_files: list[str]

    @property
    def rows_set_aside(self) -> int:
        return sum(t.rows_set_aside for t in self.tables.values())

    def summary(self) -> pd.DataFrame:
        """One row per table: rows read, kept and set aside."""
        return pd.DataFrame(
            [
                {
                    "table": t.table,
                    "rows_read": t.rows_read,
                    "rows_kept": t.rows_kept,
                    "rows_set_aside": t.rows_set_aside,
                }
                for t in self.tables.values()
            ]
        )

    def reason_counts(self) -> pd.DataFrame:
        """One row per table and reason (a row breaking two rules counts under both)."""
        rows = [
            {"table": t.table, "reason": reason, "rows": count}
            for t in self.tables.values()
            for reason, count in sorted(t.reasons.items())
        ]
        return pd.DataFrame(rows, columns=["table", "reason", "rows"])

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_set_aside": self.rows_set_aside,
            "absent_tables": self.absent_tables,
            "ignored_files": self.ignored_files,
            "tables": {name: asdict(t) for name, t in self.tables.items()},
        }


@dataclass
class TableSummary:
    """What the steps before the features (the data's span, the feature plan) read of a table
    whose rows stay where they were validated, e.g. on a Spark cluster."""

    rows: int  # good rows
    first: pd.Timestamp | None = None  # first and last value of the table's time column
    last: pd.Timestamp | None = None
    metric_rows: pd.Series | None = None  # usage: good rows per metric, most frequent first


@dataclass
class ValidatedTables:
    """Typed good rows per table, the quarantined rows, and the report."""

    frames: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    report: ValidationReport
    content_hashes: dict[str, str] = field(default_factory=dict)
    # Tables derived from the contract ones, e.g. scored texts ("text_signals").
    derived: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)
    # Engine-ready copies of the tables (see features.build.event_table); never serialised.
    engine_cache: dict = field(default_factory=dict, repr=False, compare=False)
    # Tables (contract or derived) whose rows are not in ``frames``, read where they were
    # validated (a Spark cluster): what the steps before the features need of them.
    summaries: dict[str, TableSummary] = field(default_factory=dict, repr=False, compare=False)

    def has(self, table: str) -> bool:
        """The table's good rows are here, in ``frames``."""
        return table in self.frames

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.frames[table]

    def rows(self, table: str) -> int:
        """Good rows of a contract or derived table, here or summarised; 0 when absent."""
        if table in self.summaries:
            return self.summaries[table].rows
        frame = self.frames.get(table, self.derived.get(table))
        return 0 if frame is None else len(frame)

    def time_span(self, table: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last value of a contract table's time column; None without rows."""
        if table in self.summaries:
            summary = self.summaries[table]
            return None if summary.first is None else (summary.first, summary.last)
        frame = self.frames.get(table)
        if frame is None or frame.empty:
            return None
        column = frame[TABLES[table].time_column]
        return column.min(), column.max()

    def metric_rows(self) -> pd.Series:
        """Good usage rows per metric name, most frequent first."""
        if "usage" in self.summaries:
            return self.summaries["usage"].metric_rows
        return self["usage"]["metric"].value_counts()


# --- column coercion -------------------------------------------------------------------

_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def _text_array(series: pd.Series) -> pa.Array:
    """Trimmed strings as an Arrow array; empty strings and missing values are null."""
    trimmed = pc.utf8_trim_whitespace(_string_array(series))
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _string_array(series: pd.Series) -> pa.Array:
    """A column's values as an Arrow string array, as they are (missing values null)."""
    if _arrow_strings(series):  # read from Arrow and kept there: no Python strings
        array = pa.array(series.array)
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        array = array.cast(pa.string())
    elif is_numeric_dtype(series) and series.dtype != bool:
        # An id stored as a number: 1.0 must read "1", not "1.0".
        numeric = pd.to_numeric(series, errors="coerce")
        if bool(np.all(np.isnan(numeric) | (numeric == np.round(numeric)))):
            series = numeric.astype("Int64")
        array = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
    else:
        values = series.to_numpy(dtype=object)
        try:
            array = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: numbers, dates, text
            array = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
    return array


def arrow_text_type(kind: pa.DataType) -> bool:
    """An Arrow string type (string or large_string)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _arrow_strings(series: pd.Series) -> bool:
    dtype = series.dtype
    return isinstance(dtype, pd.ArrowDtype) and arrow_text_type(dtype.pyarrow_dtype)


def to_text(series: pd.Series) -> pd.Series:
    """Strings with surrounding blanks removed; empty strings become missing (None)."""
    values = _text_array(series).to_numpy(zero_copy_only=False)
    return pd.Series(values, index=series.index, dtype=object)


# What pandas can hold (nanoseconds): a Parquet timestamp[us] of year 9999 or 1 is brought to
# these edges, so that the plausible-range check sets it aside instead of a cast overflowing.
_NS_EDGES = (np.datetime64("1678-01-01", "us"), np.datetime64("2261-12-31", "us"))
_ISO_YEAR = r"^\s*([+-]?\d{4,6})-\d{2}-\d{2}"


def _within_ns(values: np.ndarray) -> np.ndarray:
    """datetime64 values of any unit as datetime64[ns], out-of-range ones at the edges."""
    as_us = values.astype("datetime64[us]")
    low, high = _NS_EDGES
    return np.minimum(np.maximum(as_us, low), high).astype("datetime64[ns]")  # NaT stays NaT


def _edge_for_year(text: pd.Series) -> pd.Series:
    """ISO dates pandas cannot hold (year 9999, 0001) at the edges; others NaT."""
    year = pd.to_numeric(text.str.extract(_ISO_YEAR, expand=False), errors="coerce")
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    low, high = (pd.Timestamp(e) for e in _NS_EDGES)
    out[(year < low.year).fillna(False).to_numpy(dtype=bool)] = low
    out[(year > high.year).fillna(False).to_numpy(dtype=bool)] = high
    return out


@dataclass(frozen=True)
class DateRange:
    """The dates a row may plausibly carry; rows outside are set aside as
    ``date_out_of_range`` (year 9999 is a placeholder, 1900 a default, not an event).

    Not before ``data.earliest_date`` (1970-01-01 by default) and not after the day the
    run reads the export plus ``data.future_margin_days`` (an export holds no future
    events; the margin absorbs time zones and clock skew).
    """

    earliest: pd.Timestamp
    latest: pd.Timestamp

    @classmethod
    def of(cls, data=None, today: pd.Timestamp | None = None) -> DateRange:
        from npsrisk.settings import DataSettings

        data = data or DataSettings()
        today = (today or pd.Timestamp.now(tz="UTC").tz_localize(None)).normalize()
        latest = today + pd.Timedelta(days=data.future_margin_days + 1) - pd.Timedelta(1, "us")
        return cls(pd.Timestamp(data.earliest_date), latest)

    def outside(self, typed: pd.Series) -> pd.Series:
        return typed.notna() & ((typed < self.earliest) | (typed > self.latest))

    def describe(self) -> str:
        return f"{self.earliest.date()} to {self.latest.date()}"


def _floor_us(series: pd.Series) -> pd.Series:
    ns = series.astype("datetime64[ns]").to_numpy().view("i8")
    floored = np.where(ns == np.iinfo("i8").min, ns, ns // 1000 * 1000)  # keep NaT
    return pd.Series(floored.view("datetime64[ns]"), index=series.index)


def to_utc_naive(series: pd.Series) -> pd.Series:
    """Timestamps in UTC without a zone, to the microsecond: naive values are taken as UTC,
    zoned ones converted."""
    if is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        if series.dtype != "datetime64[ns]":  # e.g. Parquet timestamp[us]: may not fit in ns
            series = pd.Series(_within_ns(series.to_numpy()), index=series.index)
    else:
        text = to_text(series).astype("string")
        # Parsed apart: pandas' ISO8601 parser gives a naive value that follows a zoned one
        # the previous value's offset (measured on pandas 2.3), instead of reading it as UTC.
        zoned = text.str.contains(_ZONE, regex=True).fillna(False).to_numpy(dtype=bool)
        parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
        # Assigned as plain arrays: index alignment is not wanted here (gaps in the index).
        if zoned.any():
            parsed[zoned] = (
                pd.to_datetime(text[zoned], utc=True, errors="coerce", format="ISO8601")
                .dt.tz_localize(None)
                .to_numpy()
            )
        if (~zoned).any():
            parsed[~zoned] = pd.to_datetime(
                text[~zoned], errors="coerce", format="ISO8601"
            ).to_numpy()
        failed = parsed.isna().to_numpy() & text.notna().to_numpy(dtype=bool)
        if failed.any():  # a well-formed date beyond what pandas holds is out of range
            parsed[failed] = _edge_for_year(text[failed]).to_numpy()
        series = parsed
    # Engines keep microseconds; nanoseconds would be cut differently by each of them.
    return _floor_us(series)


# Spellings of "no value" that exports use; they can never be a valid number or date.
NULL_TOKENS = ("nan", "none", "null", "na", "n/a", "#n/a", "nat", "-")


def _present(raw: pd.Series, allow_tokens: bool) -> pd.Series:
    """Rows that hold a value (not missing, not blank, and not a null spelling if asked)."""
    if is_numeric_dtype(raw) or is_datetime64_any_dtype(raw):
        return raw.notna()  # a typed column has no blanks or spellings to look for
    text = _text_array(raw)
    present = pc.is_valid(text)
    if not allow_tokens:
        token = pc.is_in(pc.utf8_lower(text), value_set=pa.array(NULL_TOKENS))
        present = pc.and_(present, pc.invert(pc.fill_null(token, False)))
    return pd.Series(present.to_numpy(zero_copy_only=False), index=raw.index)


def _coerce(
    column: Column, raw: pd.Series, dates: DateRange, arrow_text: bool = False
) -> tuple[pd.Series, list[tuple[str, pd.Series]]]:
    """The typed column and the (reason, mask) pairs of rows that break its rules
    (``arrow_text``: an id or text column stays Arrow-backed, for engines that write Arrow)."""
    problems: list[tuple[str, pd.Series]] = []
    missing_code = {"id": "missing_id", "date": "missing_date", "timestamp": "missing_date"}.get(
        column.kind, "missing_value"
    )
    if column.kind in ("id", "string"):
        text = _text_array(raw)
        if column.choices is not None:
            text = pc.utf8_lower(text)
            bad = pc.invert(pc.fill_null(pc.is_in(text, value_set=pa.array(column.choices)), True))
            problems.append(
                ("invalid_value", pd.Series(bad.to_numpy(zero_copy_only=False), index=raw.index))
            )
        if arrow_text:
            typed = pd.Series(pd.arrays.ArrowExtensionArray(text), index=raw.index)
        else:
            typed = pd.Series(text.to_numpy(zero_copy_only=False), index=raw.index, dtype=object)
        present = pd.Series(pc.is_valid(text).to_numpy(zero_copy_only=False), index=raw.index)
    elif column.kind in ("date", "timestamp"):
        present = _present(raw, allow_tokens=False)
        typed = to_utc_naive(raw if bool(present.all()) else raw.where(present))
        problems.append(("unparsable_date", present & typed.isna()))
        problems.append(("date_out_of_range", dates.outside(typed)))
    else:
        present = _present(raw, allow_tokens=False)
        source = raw if bool(present.all()) else raw.where(present)
        typed = pd.to_numeric(source, errors="coerce").astype(float)
        problems.append(("not_a_number", present & typed.isna()))
        if column.kind == "integer":
            problems.append(("not_an_integer", typed.notna() & (typed != np.round(typed))))
        if column.minimum is not None or column.maximum is not None:
            low = -np.inf if column.minimum is None else column.minimum
            high = np.inf if column.maximum is None else column.maximum
            problems.append(("out_of_range", typed.notna() & ((typed < low) | (typed > high))))
    if not column.nullable:
        problems.append((missing_code, ~present))
    return typed, [(f"{code}:{column.name}", mask) for code, mask in problems]


def _reason_strings(problems: list[tuple[str, pd.Series]], bad: np.ndarray) -> pd.Series:
    labels = [label for label, _ in problems]
    matrix = np.column_stack([mask.to_numpy()[bad] for _, mask in problems])
    return pd.Series(
        ["; ".join(label for label, hit in zip(labels, row, strict=True) if hit) for row in matrix]
    )


# --- the rules -------------------------------------------------------------------------
# Rules a row breaks on its own are ``row_problems``; both engines run that very function
# (Spark per partition, features.spark). The rules that need other rows or tables (unknown
# customer, duplicate key, churn before signup) are named here and applied by each engine
# with its own join or window; their semantics are stated once, in ``_validate_table``.
UNKNOWN_CUSTOMER = "unknown_customer:customer_id"
CHURNED_BEFORE_SIGNUP = "churned_before_signup:churned_at"


def duplicate_reason(spec: TableSpec) -> str:
    return f"duplicate_id:{spec.unique_key}"


def missing_columns(spec: TableSpec, columns) -> list[str]:
    """Required contract columns a table lacks (the whole table is then set aside)."""
    present = set(columns)
    return [c.name for c in spec.columns if c.required and c.name not in present]


def missing_column_reason(missing: list[str]) -> str:
    return "missing_column:" + ",".join(missing)


def empty_column(column: Column, index: pd.Index) -> pd.Series:
    """An optional contract column the table does not have: all missing, of the right type."""
    if column.kind in ("date", "timestamp"):
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    numeric = column.kind in ("integer", "number")
    return pd.Series(np.nan if numeric else None, index=index, dtype=float if numeric else object)


def row_problems(
    spec: TableSpec, raw: pd.DataFrame, dates: DateRange, arrow_text: bool = False
) -> tuple[pd.DataFrame, list[tuple[str, pd.Series]]]:
    """Typed contract columns and the (reason, mask) pairs of the rules a row breaks by
    itself: types, ranges, choices, missing values, implausible dates (``dates``), a ticket
    resolved before it was created. ``arrow_text``: id and text columns come back
    Arrow-backed (``pd.ArrowDtype``), the same values without a Python string each.
    """
    typed = raw.copy(deep=False)  # columns are replaced, never changed in place
    problems: list[tuple[str, pd.Series]] = []
    for column in spec.columns:
        if column.name not in raw.columns:
            typed[column.name] = empty_column(column, raw.index)
            continue
        typed[column.name], column_problems = _coerce(column, raw[column.name], dates, arrow_text)
        problems.extend(column_problems)
    if spec.name == "tickets":
        problems.append(
            (
                "resolved_before_created:resolved_at",
                typed["resolved_at"].notna() & (typed["resolved_at"] < typed["created_at"]),
            )
        )
    return typed, problems


def reason_strings(problems: list[tuple[str, pd.Series]], bad: np.ndarray) -> pd.Series:
    """Each bad row's reasons, '; '-joined in rule order."""
    return _reason_strings(problems, bad)


def unknown_customers(ids: pd.Series, known: pa.Array) -> pd.Series:
    """Rows whose (typed) customer id is present but not among the ``known`` customers."""
    found = pc.is_in(_string_array(ids), value_set=known)
    return ids.notna() & ~pd.Series(found.to_numpy(zero_copy_only=False), index=ids.index)


def row_reasons(
    spec: TableSpec,
    raw: pd.DataFrame,
    dates: DateRange,
    arrow_text: bool = False,
    known: pa.Array | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``row_problems`` per row, as the engines that check a batch at a time want it: the
    typed columns, which rows break a rule, and each row's '; '-joined reasons (None if good).
    With ``known`` (the good customers' ids, when the batch's customers are known before its
    rows are read) the unknown-customer rule too, after the single-row rules, as
    ``_validate_table`` orders them."""
    typed, problems = row_problems(spec, raw, dates, arrow_text)
    if known is not None and spec.references_customers:
        problems.append((UNKNOWN_CUSTOMER, unknown_customers(typed["customer_id"], known)))
    bad = np.zeros(len(raw), dtype=bool)
    for _, mask in problems:
        bad |= mask.to_numpy(dtype=bool)
    reasons = np.full(len(raw), None, dtype=object)
    if bad.any():
        reasons[bad] = _reason_strings(problems, bad).to_numpy()
    return typed, bad, reasons


def _validate_table(
    spec: TableSpec,
    raw: pd.DataFrame,
    origin: str,
    customer_ids: pd.Index | None,
    signup: pd.Series | None,
    dates: DateRange,
) -> tuple[pd.DataFrame | None, pd.DataFrame, TableReport]:
    n = len(raw)
    raw = raw.reset_index(drop=True)
    missing_cols = missing_columns(spec, raw.columns)
    if missing_cols:
        note = (
            f"missing required column(s) {', '.join(missing_cols)}: every row set aside and "
            f"the table is treated as absent"
        )
        if spec.name == "customers":
            raise DataSourceError(
                f"The customers table ({origin}) lacks {', '.join(missing_cols)}; "
                "customer_id and signup_date are required."
            )
        reason = missing_column_reason(missing_cols)
        quarantined = raw.assign(**{SOURCE_ROW: np.arange(1, n + 1), REASONS: reason})
        report = TableReport(spec.name, origin, n, 0, n, {reason: n}, note)
        return None, quarantined, report

    typed, problems = row_problems(spec, raw, dates)
    if spec.name == "churn" and signup is not None:
        joined = typed["customer_id"].map(signup)
        problems.append((CHURNED_BEFORE_SIGNUP, joined.notna() & (typed["churned_at"] < joined)))

    bad_so_far = np.zeros(n, dtype=bool)
    for _, mask in problems:
        bad_so_far |= mask.to_numpy(dtype=bool)

    if spec.references_customers and customer_ids is not None:
        known = pa.array(customer_ids.to_numpy(dtype=object), type=pa.string())
        unknown = unknown_customers(typed["customer_id"], known)
        problems.append((UNKNOWN_CUSTOMER, unknown))
        bad_so_far |= unknown.to_numpy(dtype=bool)

    if spec.unique_key is not None and spec.unique_key in typed.columns:
        key = typed[spec.unique_key]
        # Only otherwise-good rows compete for a key: the first good occurrence is kept.
        candidates = np.flatnonzero(key.notna().to_numpy(dtype=bool) & ~bad_so_far)
        dup = np.zeros(n, dtype=bool)
        dup[candidates] = key.iloc[candidates].duplicated(keep="first").to_numpy(dtype=bool)
        problems.append((duplicate_reason(spec), pd.Series(dup, index=typed.index)))
        bad_so_far |= dup

    reasons: dict[str, int] = {}
    for label, mask in problems:
        count = int(mask.sum())
        if count:
            reasons[label] = reasons.get(label, 0) + count

    good = typed.loc[~bad_so_far].reset_index(drop=True) if bad_so_far.any() else typed
    quarantined = raw.loc[bad_so_far].copy()
    quarantined.insert(0, SOURCE_ROW, np.flatnonzero(bad_so_far) + 1)
    quarantined[REASONS] = (
        _reason_strings(problems, bad_so_far).to_numpy() if bad_so_far.any() else []
    )
    report = TableReport(spec.name, origin, n, len(good), int(bad_so_far.sum()), reasons)
    return good, quarantined.reset_index(drop=True), report


def validate_tables(raw: RawTables, data=None) -> ValidatedTables:
    """Check every table against the contract; fail only when no customer is usable.

    ``data`` (npsrisk.settings.DataSettings) sets the plausible dates (``DateRange``).
    """
    dates = DateRange.of(data)
    frames: dict[str, pd.DataFrame] = {}
    quarantine: dict[str, pd.DataFrame] = {}
    reports: dict[str, TableReport] = {}

    customers, q, report = _validate_table(
        TABLES["customers"],
        raw.frames["customers"],
        raw.origins.get("customers", ""),
        None,
        None,
        dates,
    )
    quarantine["customers"], reports["customers"] = q, report
    if customers is None or customers.empty:
        raise DataSourceError(
            f"No usable customers in {raw.source}: all {report.rows_read} rows were set aside "
            f"({', '.join(report.reasons) or 'empty table'}). Fix the customers table."
        )
    frames["customers"] = customers
    ids = pd.Index(customers["customer_id"])
    signup = customers.set_index("customer_id")["signup_date"]

    for name, spec in TABLES.items():
        if name == "customers" or name not in raw.frames:
            continue
        good, q, report = _validate_table(
            spec, raw.frames[name], raw.origins.get(name, ""), ids, signup, dates
        )
        quarantine[name], reports[name] = q, report
        if good is not None:
            frames[name] = good

    absent = [name for name in TABLES if name not in frames]
    validation = ValidationReport(str(raw.source), reports, absent, raw.ignored)
    return ValidatedTables(frames, quarantine, validation, dict(raw.content_hashes))


def write_validation_report(validated: ValidatedTables, out_dir: Path) -> Path:
    """Write report.json, report.md and one quarantine CSV per table with set-aside rows."""
    write_report_files(validated.report, out_dir)
    quarantine_dir = out_dir / "quarantine"
    for name, frame in validated.quarantine.items():
        if len(frame):
            quarantine_dir.mkdir(exist_ok=True)
            frame.to_csv(quarantine_dir / f"{name}.csv", index=False)
    return out_dir


def write_report_files(report: ValidationReport, out_dir: Path) -> Path:
    """report.json and report.md (the quarantine is written by the engine that has the rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
    lines = [
        f"# Validation report for {report.source}",
        "",
        f"Rows set aside: {report.rows_set_aside}",
        "",
        "| table | rows read | kept | set aside |",
        "|---|---:|---:|---:|",
    ]
    for _, row in report.summary().iterrows():
        lines.append(f"| {row.table} | {row.rows_read} | {row.rows_kept} | {row.rows_set_aside} |")
    reasons = report.reason_counts()
    if len(reasons):
        lines += ["", "| table | reason | rows |", "|---|---|---:|"]
        lines += [f"| {r.table} | {r.reason} | {r.rows} |" for r in reasons.itertuples()]
        lines += [
            "",
            "Each set-aside row is in quarantine/<table>.csv (a folder of CSV part files on "
            "Spark) with its reasons in `_reasons` and its position in the input in "
            "`_source_row` (on Spark `_row_id`, the read order).",
        ]
    if report.absent_tables:
        lines += [
            "",
            "Absent tables (features that need them are not built): "
            + ", ".join(report.absent_tables),
        ]
    for t in report.tables.values():
        if t.note:
            lines += ["", f"- {t.table}: {t.note}"]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    return out_dir
