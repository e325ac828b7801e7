"""Reading contract tables from a folder of Parquet/CSV files or from a DuckDB file."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

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


def _read_csv(path: Path) -> pd.DataFrame:
    # Every value is read as text so that validation, not the reader, decides what is
    # unparsable: a bad date must be set aside with its reason, not turned into NaN.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding="utf8"),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            null_values=[""],
            strings_can_be_null=True,
        ),
    )
    return table.to_pandas()


def _read_folder(folder: Path) -> RawTables:
    frames: dict[str, pd.DataFrame] = {}
    origins: dict[str, str] = {}
    hashes: dict[str, str] = {}
    ignored: list[str] = []
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for path in files:
        stem, suffix = path.stem.lower(), path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            continue
        if stem not in TABLES:
            ignored.append(path.name)
            continue
        if stem in frames:
            raise DataSourceError(
                f"Table '{stem}' is present twice in {folder} ({origins[stem]} and "
                f"{path.name}); keep one file per table."
            )
        try:
            frame = pd.read_parquet(path) if suffix == ".parquet" else _read_csv(path)
        except Exception as exc:
            raise DataSourceError(f"Could not read {path}: {exc}") from None
        frames[stem] = _normalise_columns(frame)
        origins[stem] = path.name
        hashes[stem] = _file_hash(path)
    return RawTables(folder, "folder", frames, origins, hashes, ignored)


def _read_duckdb(path: Path) -> RawTables:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except Exception as exc:
        raise DataSourceError(f"Could not open DuckDB file {path}: {exc}") from None
    frames: dict[str, pd.DataFrame] = {}
    origins: dict[str, str] = {}
    hashes: dict[str, str] = {}
    ignored: list[str] = []
    try:
        names = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        for name in names:
            key = name.lower()
            if key not in TABLES:
                ignored.append(name)
                continue
            frame = _normalise_columns(con.execute(f'SELECT * FROM "{name}"').df())
            frames[key] = frame
            origins[key] = f"{path.name}:{name}"
            hashes[key] = _frame_hash(frame)
    finally:
        con.close()
    return RawTables(path, "duckdb", frames, origins, hashes, ignored)


def load_tables(source: Path) -> RawTables:
    """Read every contract table present at ``source`` (a folder or a DuckDB file)."""
    source = Path(source).expanduser()
    if not source.exists():
        raise DataSourceError(
            f"{source} does not exist. Pass a folder of <table>.parquet/.csv files or a "
            "DuckDB file (see DATA_CONTRACT.md)."
        )
    if source.is_dir():
        raw = _read_folder(source)
    elif source.suffix.lower() in DUCKDB_SUFFIXES:
        raw = _read_duckdb(source)
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
