"""Reading contract tables from a folder of Parquet/CSV files or from a DuckDB file."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from features.contract import REQUIRED_TABLES, TABLES

DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")


class DataSourceError(Exception):
    """The input cannot be read at all; the message says what to fix."""


@dataclass
class RawTables:
    """Tables exactly as read, before validation, with where each came from."""

    source: Path
    source_format: str
    frames: dict[str, pd.DataFrame]
    origins: dict[str, str] = field(default_factory=dict)
    content_hashes: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def absent(self) -> list[str]:
        return [name for name in TABLES if name not in self.frames]


def is_url(source: str | Path) -> bool:
    """A location with a scheme (s3a://, hdfs://, abfss://, file:...): Spark reads it; the
    in-memory and DuckDB readers take local paths only."""
    text = str(source)
    return "://" in text or text.startswith("file:")


def _normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _frame_hash(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256(",".join(frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return digest.hexdigest()


CUSTOMER_KEY = "customer_id"


def _physical(names: list[str], wanted: str) -> str | None:
    """The column as the file spells it (contract names are matched case-insensitively)."""
    return next((n for n in names if str(n).strip().lower() == wanted), None)


def _id_filter(column: str, customer_ids: Collection[str]) -> ds.Expression:
    key = pc.utf8_trim_whitespace(pc.field(column).cast(pa.string()))
    return pc.is_in(key, value_set=pa.array(sorted(customer_ids), type=pa.string()))


def _csv_format(path: Path) -> ds.CsvFileFormat:
    # Every value is read as text so that validation, not the reader, decides what is
    # unparsable: a bad date must be set aside with its reason, not turned into NaN.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    return ds.CsvFileFormat(
        read_options=pacsv.ReadOptions(encoding="utf8"),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def read_fault(path: Path, exc: Exception) -> DataSourceError:
    """What is wrong with a table file, in words, naming the file."""
    message = str(exc)
    size = path.stat().st_size if path.is_file() else None
    if size == 0:
        fault = "the file is empty (0 bytes)"
    elif "magic bytes" in message or "deserialize thrift" in message or "file size" in message:
        fault = "it is not a complete Parquet file (truncated or corrupt)"
    elif "Empty CSV" in message:
        fault = "the CSV file has no header row"
    elif isinstance(exc, UnicodeDecodeError) or "UTF8" in message or "utf-8" in message:
        fault = "the file is not UTF-8 text"
    else:
        fault = message.strip().splitlines()[-1][:300] if message.strip() else type(exc).__name__
    return DataSourceError(
        f"Could not read {path}: {fault}. Export the table again, or move the file out of "
        "the folder to run without it."
    )


def _dataset(path: Path) -> ds.Dataset:
    """A Parquet or CSV table file, to scan (CSV columns as text: see ``_csv_format``)."""
    try:
        fmt = "parquet" if path.suffix.lower() == ".parquet" else _csv_format(path)
        return ds.dataset(path, format=fmt)
    except (pa.ArrowException, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise read_fault(path, exc) from None


def _duckdb_column(con: duckdb.DuckDBPyConnection, table: str, wanted: str) -> str | None:
    """A DuckDB table's column as it is spelled there (see ``_physical``)."""
    return _physical([row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()], wanted)


def _read_file(
    path: Path, customer_ids: Collection[str] | None, columns: list[str] | None = None
) -> pd.DataFrame:
    """One table file, optionally only some customers' rows (filtered while scanning, so a
    slice of a large file never needs the whole file in memory) or only some columns."""
    dataset = _dataset(path)
    names = dataset.schema.names
    wanted = None if columns is None else [n for c in columns if (n := _physical(names, c))]
    key = _physical(names, CUSTOMER_KEY)
    expression = _id_filter(key, customer_ids) if customer_ids is not None and key else None
    return dataset.to_table(columns=wanted, filter=expression).to_pandas()


def folder_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The contract table files of a folder (Parquet or CSV, one per table), and the names
    of the other Parquet/CSV files there (ignored)."""
    found: dict[str, Path] = {}
    ignored: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        stem, suffix = path.stem.lower(), path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            continue
        if stem not in TABLES:
            ignored.append(path.name)
            continue
        if stem in found:
            raise DataSourceError(
                f"Table '{stem}' is present twice in {folder} ({found[stem].name} and "
                f"{path.name}); keep one file per table."
            )
        found[stem] = path
    return found, ignored


def _read_folder(
    folder: Path,
    tables: Collection[str] | None,
    customer_ids: Collection[str] | None,
) -> RawTables:
    frames: dict[str, pd.DataFrame] = {}
    origins: dict[str, str] = {}
    hashes: dict[str, str] = {}
    files, ignored = folder_files(folder)
    for stem, path in files.items():
        origins[stem] = path.name
        if tables is not None and stem not in tables:
            continue
        try:
            frame = _read_file(path, customer_ids)
        except DataSourceError:
            raise
        except Exception as exc:
            raise read_fault(path, exc) from None
        frames[stem] = _normalise_columns(frame)
        if customer_ids is None:  # the lineage hash is of the whole file
            hashes[stem] = _file_hash(path)
    origins = {k: v for k, v in origins.items() if k in frames}
    return RawTables(folder, "folder", frames, origins, hashes, ignored)


def _read_duckdb(
    path: Path,
    tables: Collection[str] | None,
    customer_ids: Collection[str] | None,
) -> RawTables:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except Exception as exc:
        raise DataSourceError(f"Could not open DuckDB file {path}: {exc}") from None
    frames: dict[str, pd.DataFrame] = {}
    origins: dict[str, str] = {}
    hashes: dict[str, str] = {}
    ignored: list[str] = []
    try:
        if customer_ids is not None:
            con.register("selected_ids", pa.table({"id": pa.array(sorted(customer_ids))}))
        names = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        for name in names:
            key = name.lower()
            if key not in TABLES:
                ignored.append(name)
                continue
            if tables is not None and key not in tables:
                continue
            id_column = _duckdb_column(con, name, CUSTOMER_KEY)
            query = f'SELECT * FROM "{name}"'
            if customer_ids is not None and id_column:
                query += (
                    f' WHERE trim(CAST("{id_column}" AS VARCHAR)) IN (SELECT id FROM selected_ids)'
                )
            frame = _normalise_columns(con.execute(query).df())
            frames[key] = frame
            origins[key] = f"{path.name}:{name}"
            if customer_ids is None:
                hashes[key] = _frame_hash(frame)
    finally:
        con.close()
    return RawTables(path, "duckdb", frames, origins, hashes, ignored)


def load_tables(
    source: Path,
    tables: Collection[str] | None = None,
    customer_ids: Collection[str] | None = None,
) -> RawTables:
    """Read the contract tables present at ``source`` (a folder or a DuckDB file).

    ``tables`` limits which tables are read; ``customer_ids`` keeps only those customers'
    rows of every table, filtered while reading (a slice of a large export, for scoring in
    chunks). Content hashes (for lineage) are computed for whole reads only.
    """
    source = Path(source).expanduser()
    if tables is not None:
        tables = set(tables) | set(REQUIRED_TABLES)
    if not source.exists():
        raise DataSourceError(
            f"{source} does not exist. Pass a folder of <table>.parquet/.csv files or a "
            "DuckDB file (see DATA_CONTRACT.md)."
        )
    if source.is_dir():
        raw = _read_folder(source, tables, customer_ids)
    elif source.suffix.lower() in DUCKDB_SUFFIXES:
        raw = _read_duckdb(source, tables, customer_ids)
    else:
        raise DataSourceError(
            f"{source} is neither a folder nor a DuckDB file ({', '.join(DUCKDB_SUFFIXES)})."
        )
    missing = [t for t in REQUIRED_TABLES if t not in raw.frames]
    if missing:
        found = ", ".join(sorted(raw.frames)) or "no contract tables"
        raise DataSourceError(
            f"{source} has no '{missing[0]}' table (found: {found}). The customers table is "
            "required: add customers.parquet or customers.csv with customer_id and signup_date."
        )
    return raw


TIME_BATCH_ROWS = 1_000_000


def latest_date(source: Path, data=None) -> pd.Timestamp:
    """The export's last date: the latest plausible time in any event table (see
    features.validation.DateRange; ``data`` is npsrisk.settings.DataSettings), reading only
    time columns. For a large export this is cheap where loading every table would not be.
    """
    from features.validation import DateRange, to_utc_naive  # validation imports this module

    source = Path(source).expanduser()
    latest: list[pd.Timestamp] = []
    dates = DateRange.of(data)

    def consider(batches: Iterator[pa.RecordBatch]) -> None:
        # A batch at a time: a 200M-row usage table's times never sit in memory at once.
        for batch in batches:
            parsed = to_utc_naive(batch.column(0).to_pandas())
            parsed = parsed[~dates.outside(parsed)].dropna()
            if len(parsed):
                latest.append(parsed.max())

    if source.is_dir():
        for path in sorted(p for p in source.iterdir() if p.suffix.lower() in (".parquet", ".csv")):
            spec = TABLES.get(path.stem.lower())
            if spec is None or spec.name == "customers" or spec.time_column is None:
                continue
            dataset = _dataset(path)
            column = _physical(dataset.schema.names, spec.time_column)
            if column:
                try:
                    consider(dataset.to_batches(columns=[column], batch_size=TIME_BATCH_ROWS))
                except (pa.ArrowException, OSError) as exc:
                    raise read_fault(path, exc) from None
    else:
        con = duckdb.connect(str(source), read_only=True)
        try:
            for (name,) in con.execute("SHOW TABLES").fetchall():
                spec = TABLES.get(name.lower())
                if spec is None or spec.name == "customers" or spec.time_column is None:
                    continue
                column = _duckdb_column(con, name, spec.time_column)
                if column:
                    reader = con.execute(f'SELECT "{column}" FROM "{name}"')
                    consider(iter(reader.fetch_record_batch(TIME_BATCH_ROWS)))
        finally:
            con.close()
    if not latest:
        raise DataSourceError(f"{source} has no dated rows in any event table: pass --as-of.")
    return pd.Timestamp(max(latest)).normalize()
