"""The DuckDB engine reading the export itself: event tables streamed from their files, checked
on the way, into Parquet files DuckDB reads, and the shared Ibis definitions run there.

A large export never sits in pandas. The per-customer tables (customers, churn: one row per
customer) are read and validated in memory as ``features.validation.validate_tables`` does.
The event tables (usage, tickets, chats, nps_responses) are scanned a batch at a time,
filtered at the scan to the customers asked for; each batch goes through
``features.validation.row_reasons`` (the single-row rules both other paths run, and unknown
customers: the customers are read first) and is written with its reasons to a Parquet file
in the run's temporary folder. The one rule that needs other rows of the table (duplicate
key) is a SQL window over the whole table, with the semantics
``features.validation._validate_table`` states, so the counts are the in-memory path's.
The features are ``features.build.assemble_features`` on those tables: one set of
definitions, compiled by Ibis for DuckDB, which spills to that folder rather than
grow past its memory limit.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.attributes import static_attributes
from features.build import (
    EVENT_TABLES,
    INPUT_COLUMNS,
    ROW,
    TEXT_SIGNALS,
    FeatureInputs,
    FeaturePlan,
    assemble_features,
    cutoff_range,
    in_given_order,
    make_spine,
    typed_features,
)
from features.contract import TABLES, TableSpec
from features.loading import (
    CUSTOMER_KEY,
    RawTables,
    _dataset,
    _duckdb_column,
    _id_filter,
    _normalise_columns,
    _physical,
    folder_files,
    load_tables,
    read_fault,
)
from features.validation import (
    REASONS,
    SOURCE_ROW,
    DateRange,
    TableReport,
    ValidatedTables,
    ValidationReport,
    _validate_table,
    arrow_text_type,
    duplicate_reason,
    missing_columns,
    row_reasons,
    validate_tables,
)

BATCH_ROWS = 200_000  # rows checked in pandas at a time: bounds the memory of the check
# DuckDB's own budget: beyond it, joins, aggregations and sorts spill to the run's folder.
MEMORY_LIMIT = "1500MB"
RAW = "_raw_"  # prefix of a bad row's values as read (text), for the quarantine
_ARROW_TYPES = {
    "id": pa.string(),
    "string": pa.string(),
    "date": pa.timestamp("us"),
    "timestamp": pa.timestamp("us"),
    "integer": pa.float64(),
    "number": pa.float64(),
}


@dataclass
class DuckTables:
    """An export checked into a DuckDB database: the per-customer tables in memory
    (``memory``, as validate_tables gives them), each event table as a DuckDB table of every
    row read with its reasons (``checked``; null for a good row), and the report."""

    con: ibis.BaseBackend
    memory: ValidatedTables
    checked: dict[str, str]
    report: ValidationReport
    workdir: Path
    own_workdir: bool = False
    capped_messages: int = 0
    derived: dict[str, str] = field(default_factory=dict)

    @property
    def raw(self) -> duckdb.DuckDBPyConnection:
        return self.con.con

    def has(self, table: str) -> bool:
        return table in self.memory.frames or table in self.checked

    def good(self, table: str, columns: Collection[str] | None = None) -> ir.Table:
        """A checked event table's good rows (only ``columns`` when given)."""
        t = self.con.table(self.checked[table])
        t = t.filter(t[REASONS].isnull())
        names = [c for c in (columns or TABLES[table].column_names) if c in t.columns]
        return t.select(*names)

    def quarantine(self, table: str) -> pd.DataFrame:
        """A table's set-aside rows as read, with ``_source_row`` and ``_reasons``."""
        if table not in self.checked:
            return self.memory.quarantine.get(table, pd.DataFrame())
        columns = [c[len(RAW) :] for c in self._columns(table) if c.startswith(RAW)]
        # A row set aside as it was checked keeps its raw text; one broken only by the
        # duplicate rule passed every other rule, so its typed value is its value.
        values = ", ".join(
            f'coalesce("{RAW}{c}", CAST("{c}" AS VARCHAR)) AS "{c}"'
            if c in TABLES[table].column_names
            else f'"{RAW}{c}" AS "{c}"'
            for c in columns
        )
        return self.raw.execute(
            f'SELECT {SOURCE_ROW}, {values}, {REASONS} FROM "{self.checked[table]}" '
            f"WHERE {REASONS} IS NOT NULL ORDER BY {SOURCE_ROW}"
        ).df()

    def _columns(self, table: str) -> list[str]:
        return [r[0] for r in self.raw.execute(f'DESCRIBE "{self.checked[table]}"').fetchall()]

    def close(self) -> None:
        self.con.disconnect()
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def connect_duckdb(workdir: Path, threads: int | None = None) -> ibis.BaseBackend:
    """An Ibis DuckDB connection (in memory) with a memory limit and ``workdir`` to spill to."""
    # No database file: the checked rows are Parquet files it reads (see _check_table), and
    # what it builds past the limit is evicted to the temp directory.
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.raw_sql("SET enable_progress_bar = false")
    con.raw_sql(f"SET temp_directory = '{workdir / 'spill'}'")
    con.raw_sql("SET preserve_insertion_order = false")  # lets DuckDB stream in parallel
    if threads:
        con.raw_sql(f"SET threads = {int(threads)}")
    return con


# --- reading ----------------------------------------------------------------------------


def _event_sources(source: Path) -> tuple[dict[str, str], list[str]]:
    """Each event table's origin (file name or ``file:table``), and the ignored names."""
    if source.is_dir():
        files, ignored = folder_files(source)
        return {n: p.name for n, p in files.items() if n in EVENT_TABLES}, ignored
    con = duckdb.connect(str(source), read_only=True)
    try:
        names = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
    finally:
        con.close()
    origins = {n.lower(): f"{source.name}:{n}" for n in names if n.lower() in EVENT_TABLES}
    return origins, []


def _batches(
    source: Path, table: str, customer_ids: Collection[str] | None
) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """A table's column names as spelled in the file, and its rows a batch at a time,
    filtered at the scan to ``customer_ids``."""
    if source.is_dir():
        path = folder_files(source)[0][table]
        dataset = _dataset(path)
        names = dataset.schema.names
        key = _physical(names, CUSTOMER_KEY)
        expression = _id_filter(key, customer_ids) if customer_ids is not None and key else None

        def scan() -> Iterator[pa.RecordBatch]:
            try:
                yield from dataset.to_batches(filter=expression, batch_size=BATCH_ROWS)
            except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
                raise read_fault(path, exc) from None

        return names, scan()
    con = duckdb.connect(str(source), read_only=True)
    name = next(r[0] for r in con.execute("SHOW TABLES").fetchall() if r[0].lower() == table)
    names = [r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
    query = f'SELECT * FROM "{name}"'
    if customer_ids is not None and (key := _duckdb_column(con, name, CUSTOMER_KEY)):
        con.register("selected_ids", pa.table({"id": pa.array(sorted(customer_ids))}))
        query += f' WHERE trim(CAST("{key}" AS VARCHAR)) IN (SELECT id FROM selected_ids)'

    def scan_db() -> Iterator[pa.RecordBatch]:
        try:
            yield from con.execute(query).fetch_record_batch(BATCH_ROWS)
        finally:
            con.close()

    return names, scan_db()


def _batch_frame(spec: TableSpec, batch: pa.RecordBatch) -> pd.DataFrame:
    """A batch as pandas; the contract's id and text columns that are strings in the file stay
    Arrow-backed: making a Python string of every id cost more than checking it."""
    text = {c.name for c in spec.columns if c.kind in ("id", "string")}
    columns = {}
    for i, (meta, array) in enumerate(zip(batch.schema, batch.columns, strict=True)):
        if arrow_text_type(meta.type) and str(meta.name).strip().lower() in text:
            columns[i] = pd.arrays.ArrowExtensionArray(array)
        else:
            columns[i] = array.to_pandas()
    frame = pd.DataFrame(columns, copy=False)
    frame.columns = batch.schema.names  # as spelled (duplicates too), as batch.to_pandas()
    return frame


def _checked_batch(
    spec: TableSpec,
    batch: pa.RecordBatch,
    first_row: int,
    dates: DateRange,
    keep: list[str],
    known: pa.Array | None = None,
) -> pa.Table:
    """One batch with its position in the file, its reasons (the single-row rules and, with
    ``known``, unknown customers), the typed contract columns in ``keep``, and the raw text of
    bad rows."""
    part = _normalise_columns(_batch_frame(spec, batch))
    typed, bad, reasons = row_reasons(spec, part, dates, arrow_text=True, known=known)
    arrays = {
        SOURCE_ROW: pa.array(np.arange(first_row + 1, first_row + len(part) + 1)),
        REASONS: pa.array(reasons, type=pa.string()),
    }
    for name in keep:
        kind = spec.column(name).kind
        values = typed[name]
        if isinstance(values.dtype, pd.ArrowDtype):  # an id or text column, kept in Arrow
            arrays[name] = pa.array(values.array).cast(_ARROW_TYPES[kind])
            continue
        if kind in ("date", "timestamp"):
            values = values.astype("datetime64[us]")
        arrays[name] = pa.array(values.to_numpy(), type=_ARROW_TYPES[kind], from_pandas=True)
    rows = np.flatnonzero(bad)
    for name in part.columns:
        # Only the few bad rows are turned to text: converting every value costs more than
        # the checks themselves (and a batch without one gets a column of nulls as is).
        if not len(rows):
            arrays[f"{RAW}{name}"] = pa.nulls(len(part), pa.string())
            continue
        raw = np.full(len(part), None, dtype=object)
        values = part[name].iloc[rows]
        raw[rows] = values.astype("string").astype(object).where(values.notna(), None)
        arrays[f"{RAW}{name}"] = pa.array(raw, type=pa.string(), from_pandas=True)
    return pa.table(arrays)


class _BackgroundWriter:
    """Checked batches to a run's own temporary Parquet file, written by a thread of its own
    (at most two batches waiting) while the caller checks the next one. No compression and no
    dictionaries: at 100,000 customers building them was a fifth of the check, and a scan of
    plain pages costs a little more, far less than that. A failed write is raised by the
    next ``write`` or on leaving the block; leaving on an error closes the file all the same."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = False
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="npsrisk-parquet", daemon=True)

    def _run(self) -> None:
        writer = None
        try:
            while (table := self._queue.get()) is not None:
                if self._error is None:
                    writer = writer or pq.ParquetWriter(
                        self.path, table.schema, compression="none", use_dictionary=False
                    )
                    writer.write_table(table)
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
            while self._queue.get() is not None:  # let the producer finish, write nothing
                pass
        finally:
            if writer is not None:
                writer.close()

    def write(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        if not self.started:
            self.started = True
            self._thread.start()
        self._queue.put(table)

    def __enter__(self) -> _BackgroundWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.started:
            self._queue.put(None)
            self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error


def _check_table(
    con: ibis.BaseBackend,
    source: Path,
    spec: TableSpec,
    customer_ids: Collection[str] | None,
    dates: DateRange,
    folder: Path,
    known: pa.Array,
) -> str | None:
    """Stream a table into ``read_<name>`` with its reasons (single-row rules, then unknown
    customers: those not in ``known``); None when the table lacks a required column (the
    caller sets it aside whole, as the in-memory path)."""
    names, batches = _batches(source, spec.name, customer_ids)
    columns = [str(c).strip().lower() for c in names]
    if missing_columns(spec, columns):
        batches.close()
        return None
    keep = [c for c in spec.column_names if c in columns]
    target = f"read_{spec.name}"
    # The checked rows go to a Parquet file DuckDB then reads: appending to a DuckDB table
    # cost more than the checks themselves (measured), and a file keeps memory flat.
    path = folder / f"{target}.parquet"
    # Writing a batch (Arrow's C++, without the GIL) overlaps the check of the next one: at
    # 100,000 customers the writes were nearly half of the table's time.
    with _BackgroundWriter(path) as writer:
        seen = 0
        for batch in batches:
            if batch.num_rows == 0 and writer.started:
                continue
            writer.write(_checked_batch(spec, batch, seen, dates, keep, known))
            seen += batch.num_rows
        if not writer.started:  # no rows at all: an empty file of the right shape
            nothing = pa.record_batch({c: pa.array([], pa.string()) for c in names})
            writer.write(_checked_batch(spec, nothing, 0, dates, keep, known))
    con.con.execute(f"CREATE OR REPLACE VIEW \"{target}\" AS SELECT * FROM read_parquet('{path}')")
    return target


def _cross_row_rules(con: ibis.BaseBackend, spec: TableSpec, target: str) -> None:
    """``valid_<name>``: the checked rows with, for a table with a unique key, the duplicate
    keys among the otherwise-good rows (the first in file order is kept) appended to their
    reasons, in the in-memory path's order. Unknown customers were found as each batch was
    checked (the customers are read first), so a table without a key needs no other pass."""
    if spec.unique_key is None:
        con.con.execute(f'CREATE OR REPLACE VIEW "valid_{spec.name}" AS SELECT * FROM "{target}"')
        return
    key = f'"{spec.unique_key}"'
    competing = f"({key} IS NOT NULL AND {REASONS} IS NULL)"
    step = f"""
        WITH b AS (
            SELECT *, CASE WHEN {competing} THEN row_number() OVER (
                PARTITION BY {key}, {competing} ORDER BY {SOURCE_ROW}) END AS _rank
            FROM "{target}"
        )
        SELECT * EXCLUDE ({REASONS}, _rank),
               NULLIF(concat_ws('; ', {REASONS},
                   CASE WHEN _rank > 1 THEN '{duplicate_reason(spec)}' END), '') AS {REASONS}
        FROM b
    """
    # A view: the rule is a window, cheaper to run with each use than to write every row again.
    con.con.execute(f'CREATE OR REPLACE VIEW "valid_{spec.name}" AS {step}')


def _report(con: ibis.BaseBackend, spec: TableSpec, target: str, origin: str) -> TableReport:
    """The table's counts from one pass over its rows: grouped by their reasons (a handful of
    distinct strings), then each reason counted in Python."""
    groups = con.con.execute(f'SELECT {REASONS}, count(*) FROM "{target}" GROUP BY ALL').fetchall()
    n = bad = 0
    reasons: dict[str, int] = {}
    for joined, count in groups:
        n += int(count)
        if joined is None:
            continue
        bad += int(count)
        for reason in str(joined).split("; "):
            reasons[reason] = reasons.get(reason, 0) + int(count)
    reasons = dict(sorted(reasons.items()))
    return TableReport(spec.name, origin, n, n - bad, bad, reasons)


def validate_duckdb(
    source: Path,
    data=None,
    customer_ids: Collection[str] | None = None,
    tables: Collection[str] | None = None,
    workdir: Path | None = None,
    threads: int | None = None,
) -> DuckTables:
    """Read and check the export at ``source`` (a folder or a DuckDB file) into a DuckDB
    connection whose files live in ``workdir`` (a temporary folder by default, removed by
    ``close``).

    ``customer_ids`` keeps only those customers' rows, filtered at the scan; ``tables``
    limits the event tables read. ``data`` (npsrisk.settings.DataSettings) sets the plausible
    dates, as for validate_tables; the report's counts are the ones it gives.
    """
    source = Path(source).expanduser()
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="npsrisk-duckdb-")) if own else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dates = DateRange.of(data)
    small = load_tables(source, tables=("customers", "churn"), customer_ids=customer_ids)
    events, ignored = _event_sources(source)
    con = connect_duckdb(workdir, threads)
    try:
        memory = validate_tables(small, data)
        known = pa.array(memory["customers"]["customer_id"].to_numpy(dtype=object), pa.string())
        reports = dict(memory.report.tables)
        checked: dict[str, str] = {}
        for name in EVENT_TABLES:
            if name not in events or (tables is not None and name not in tables):
                continue
            spec = TABLES[name]
            target = _check_table(con, source, spec, customer_ids, dates, workdir, known)
            if target is None:  # a broken table: set aside whole, exactly as in memory
                frame = _read_raw(source, name, customer_ids)
                _, q, reports[name] = _validate_table(spec, frame, events[name], None, None, dates)
                memory.quarantine[name] = q
                continue
            _cross_row_rules(con, spec, target)
            checked[name] = f"valid_{name}"
            reports[name] = _report(con, spec, checked[name], events[name])
    except BaseException:
        con.disconnect()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    order = {name: reports[name] for name in TABLES if name in reports}
    present = set(memory.frames) | set(checked)
    absent = [name for name in TABLES if name not in present]
    report = ValidationReport(str(source), order, absent, sorted({*small.ignored, *ignored}))
    memory.report = report
    return DuckTables(con, memory, checked, report, workdir, own)


def _read_raw(source: Path, table: str, customer_ids: Collection[str] | None) -> pd.DataFrame:
    raw: RawTables = load_tables(source, tables=(table,), customer_ids=customer_ids)
    return raw.frames[table]


# --- text and features ------------------------------------------------------------------


def attach_text_signals_duckdb(tables: DuckTables, scorer) -> None:
    """Score the customers' texts a batch at a time into the ``text_signals`` table."""
    if TEXT_SIGNALS in tables.derived:
        return
    raw = tables.raw
    raw.execute(f'DROP TABLE IF EXISTS "{TEXT_SIGNALS}"')
    # The signals are written through a cursor of their own: a statement run on the
    # connection that streams the texts ends that stream, and every batch after the first
    # was silently lost (exports with more than BATCH_ROWS messages lost most of their texts).
    writer, target, created = raw.cursor(), f'"{TEXT_SIGNALS}"', False
    try:
        for table in ("chats", "tickets"):
            if table not in tables.checked:
                continue
            reader = tables.good(table).to_pyarrow_batches(chunk_size=BATCH_ROWS)
            for batch in reader:
                signals = scorer.signals({table: batch.to_pandas()})
                tables.capped_messages += int(signals.attrs.get("capped_messages", 0))
                if not len(signals):
                    continue
                writer.register("_signals", pa.Table.from_pandas(signals, preserve_index=False))
                into = f"INSERT INTO {target} BY NAME" if created else f"CREATE TABLE {target} AS"
                writer.execute(f"{into} SELECT * FROM _signals")
                created = True
                writer.unregister("_signals")
    finally:
        writer.close()
    if created:
        tables.derived[TEXT_SIGNALS] = TEXT_SIGNALS


def duckdb_inputs(tables: DuckTables, spine: pd.DataFrame, plan: FeaturePlan) -> FeatureInputs:
    """The definitions' inputs as tables of the export's database (the spine and the
    static attributes, one row per customer, are written there from memory)."""
    raw = tables.raw
    pairs = spine if "_cutoff" in spine else make_spine(spine)
    raw.register("_spine", pa.Table.from_pandas(pairs, preserve_index=False))
    raw.execute("CREATE OR REPLACE TABLE spine AS SELECT * FROM _spine")
    raw.unregister("_spine")
    attributes = static_attributes(tables.memory["customers"], plan.attributes)
    raw.register("_attrs", pa.Table.from_pandas(attributes, preserve_index=False))
    raw.execute("CREATE OR REPLACE TABLE attributes AS SELECT * FROM _attrs")
    raw.unregister("_attrs")
    events = {
        name: tables.good(name, INPUT_COLUMNS[name])
        for name in plan.tables
        if name in tables.checked
    }
    if plan.text_themes and TEXT_SIGNALS in tables.derived:
        events[TEXT_SIGNALS] = tables.con.table(TEXT_SIGNALS)
    return FeatureInputs(
        tables.con.table("spine"), tables.con.table("attributes"), events, cutoff_range(pairs)
    )


def _require_signals(tables: DuckTables, plan: FeaturePlan) -> None:
    if plan.text_themes and TEXT_SIGNALS not in tables.derived:
        raise ValueError(
            "this feature plan has text features: score the texts first "
            "(features.duck.attach_text_signals_duckdb with the model's text scorer)"
        )


def feature_batches(
    tables: DuckTables, pairs: pd.DataFrame, plan: FeaturePlan, batch_rows: int
) -> Iterator[pd.DataFrame]:
    """The features of ``pairs`` computed in one DuckDB query over the whole export, handed
    out ``batch_rows`` rows at a time (ordered by customer and date)."""
    pairs = make_spine(pairs).drop_duplicates(["customer_id", "as_of"], ignore_index=True)
    _require_signals(tables, plan)
    expr = assemble_features(duckdb_inputs(tables, pairs, plan), plan)
    expr = expr.order_by(["customer_id", "as_of"])
    for batch in tables.con.to_pyarrow_batches(expr, chunk_size=batch_rows):
        if batch.num_rows:
            yield typed_features(batch.to_pandas(), plan)


def build_features_duckdb(
    tables: DuckTables, pairs: pd.DataFrame, plan: FeaturePlan
) -> pd.DataFrame:
    """Features for each (customer_id, as_of) pair, in the pairs' order (as build_features)."""
    keys = ["customer_id", "as_of"]
    spine = make_spine(pairs).drop_duplicates(keys, ignore_index=True)
    if len(spine) == 0:
        return pd.DataFrame(columns=[*keys, *plan.feature_names])
    _require_signals(tables, plan)
    spine[ROW] = np.arange(len(spine), dtype="int64")
    expr = assemble_features(duckdb_inputs(tables, spine, plan), plan)
    table = in_given_order(tables.con.to_pyarrow(expr), len(spine))
    return typed_features(table.to_pandas(), plan)
