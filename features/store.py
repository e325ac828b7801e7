"""The materialized feature store: one DuckDB file per refresh, swapped atomically.

``materialize_features`` writes every active customer's features as of a date into a new
DuckDB file and then repoints ``CURRENT`` at it with an atomic rename, so a running service
never sees a half-written store. ``FeatureStore.open`` reads the current file into memory
with a hash index on customer_id: a point lookup is a dict access, never a scan.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from features.plan import FeaturePlan

if TYPE_CHECKING:  # building features (Ibis, the loaders) only when materializing
    import pandas as pd

    from features.chunks import ChunkedRun, FeatureModel, Progress

POINTER = "CURRENT"
KEEP_STORES = 3


class StoreMissingError(Exception):
    """No materialized store yet; the message says which command creates one."""


@dataclass(frozen=True)
class StoreInfo:
    path: Path
    features_as_of: pd.Timestamp
    rows: int
    created_at: str
    model_version: str | None
    run: ChunkedRun | None = None  # materialize_features: rows set aside, messages capped


def store_dir(home: Path) -> Path:
    return Path(home) / "feature_store"


def current_store_path(home: Path) -> Path | None:
    pointer = store_dir(home) / POINTER
    if not pointer.is_file():
        return None
    path = store_dir(home) / pointer.read_text().strip()
    return path if path.is_file() else None


def store_as_of(path: Path) -> str | None:
    """The as-of date a store file's name records ('features-20250531-...': '2025-05-31')."""
    parts = Path(path).name.split("-")
    if len(parts) < 3 or parts[0] != "features" or len(parts[1]) != 8 or not parts[1].isdigit():
        return None
    d = parts[1]
    return f"{d[:4]}-{d[4:6]}-{d[6:]}"


def previous_store_path(current: Path) -> Path | None:
    """The newest kept store of an earlier as-of date than ``current`` (None: none kept).

    The stores beside the current one are kept (``KEEP_STORES``) so that a score's change can
    be explained; a re-materialization of the same date explains nothing, so it is skipped.
    """
    now = store_as_of(current)
    if now is None:
        return None
    older = [
        (as_of, p.stat().st_mtime, p)
        for p in Path(current).parent.glob("features-*.duckdb")
        if p != current and (as_of := store_as_of(p)) is not None and as_of < now
    ]
    return max(older)[2] if older else None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new pointer


def write_store(
    features: pd.DataFrame,
    plan: FeaturePlan,
    home: Path,
    features_as_of: pd.Timestamp,
    model_version: str | None = None,
) -> StoreInfo:
    """Write a new store file, then atomically make it the current one."""
    folder = store_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    # The process id too: two materializations in the same microsecond get files of their own.
    name = f"features-{features_as_of:%Y%m%d}-{created:%Y%m%dT%H%M%S%fZ}-{os.getpid()}.duckdb"
    tmp = folder / f".{name}.tmp"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        frame = features.drop(columns=["as_of"]).reset_index(drop=True)
        con.register("frame_view", frame)
        con.execute("CREATE TABLE features AS SELECT * FROM frame_view ORDER BY customer_id")
        con.unregister("frame_view")
        meta = {
            "features_as_of": str(features_as_of.date()),
            "created_at": created.isoformat(timespec="seconds"),
            "rows": len(frame),
            "model_version": model_version,
            "plan": plan.to_dict(),
        }
        con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
        con.executemany(
            "INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()]
        )
    finally:
        con.close()
    final = folder / name
    os.replace(tmp, final)
    _atomic_write(folder / POINTER, name)
    _prune(folder, keep=name)
    return StoreInfo(final, features_as_of, len(features), meta["created_at"], model_version)


def _prune(folder: Path, keep: str) -> None:
    """Keep the newest few stores; a running service holds its own copy in memory."""
    stores = sorted(folder.glob("features-*.duckdb"), key=lambda p: p.stat().st_mtime)
    for old in stores[:-KEEP_STORES]:
        if old.name != keep:
            old.unlink(missing_ok=True)


def materialize_features(
    source: Path,
    model: FeatureModel,
    home: Path,
    as_of: pd.Timestamp | None = None,
    model_version: str | None = None,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    data=None,
) -> StoreInfo:
    """Build every customer active at ``as_of`` (default: the export's latest date) with the
    model's own features, one slice of customers at a time (``chunk_size``, default
    ``features.chunks.CUSTOMER_CHUNK``), and publish them as the store."""
    import pandas as pd

    from features.chunks import CUSTOMER_CHUNK, feature_chunks

    chunk_size = chunk_size or CUSTOMER_CHUNK
    run, chunks = feature_chunks(source, model, as_of, chunk_size, progress, data=data)
    parts = list(chunks)
    features = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    plan = FeaturePlan.from_dict(model.plan)
    if features.empty:
        features = pd.DataFrame(columns=["customer_id", "as_of", *plan.feature_names])
    return replace(write_store(features, plan, home, run.as_of, model_version), run=run)


def _unmasked(values: np.ndarray) -> np.ndarray:
    """A fetched column without its null mask: NaN in floats, None elsewhere (as ``.df()``)."""
    if not isinstance(values, np.ma.MaskedArray):
        return values
    if values.dtype.kind == "f":
        return values.filled(np.nan)
    if values.dtype.kind in "iub":
        return values.astype(float).filled(np.nan)
    out = values.data.astype(object)
    out[np.ma.getmaskarray(values)] = None
    return out


class FeatureStore:
    """A read-only, in-memory copy of one store file with a hash index on customer_id.

    The columns are plain NumPy arrays: a serving worker that restarts reads the file and
    its encoded matrix (cached beside it, else ``FeatureEncoder.transform_columns``) without
    importing pandas. ``frame`` builds the pandas view on first use (monitoring, tests).
    """

    def __init__(self, path: Path, columns: dict[str, np.ndarray], meta: dict):
        self.path = path
        self.columns = {c: _unmasked(v) for c, v in columns.items()}
        self.meta = meta
        self.features_as_of = str(meta["features_as_of"])
        self.plan = FeaturePlan.from_dict(meta["plan"])
        ids = self.columns.get("customer_id", np.array([], dtype=object))
        self.index: dict[str, int] = {cid: i for i, cid in enumerate(ids.tolist())}
        self._rows = len(ids)
        self._frame: pd.DataFrame | None = None

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            import pandas as pd

            self._frame = pd.DataFrame(self.columns)
        return self._frame

    @classmethod
    def open(cls, home: Path) -> FeatureStore:
        path = current_store_path(home)
        if path is None:
            raise StoreMissingError(
                f"No materialized feature store under {store_dir(home)}. "
                "Run `npsrisk materialize DATA` first."
            )
        return cls.read(path)

    @classmethod
    def read(cls, path: Path) -> FeatureStore:
        con = duckdb.connect(str(path), read_only=True)
        try:
            columns = con.execute("SELECT * FROM features").fetchnumpy()
            meta = {
                k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta").fetchall()
            }
        finally:
            con.close()
        return cls(path, columns, meta)

    def __len__(self) -> int:
        return self._rows

    def locate(self, customer_ids: list[str]) -> tuple[list[int], list[str], list[str]]:
        """Rows and ids of known customers (request order, deduplicated), and unknown ids."""
        rows, known, unknown, seen = [], [], [], set()
        for cid in customer_ids:
            if cid in seen:
                continue
            seen.add(cid)
            row = self.index.get(cid)
            if row is None:
                unknown.append(cid)
            else:
                rows.append(row)
                known.append(cid)
        return rows, known, unknown

    def value(self, row: int, column: str):
        """One raw feature value (None when missing or when the store lacks the column)."""
        values = self.columns.get(column)
        if values is None:
            return None
        value = values.item(row)  # a Python scalar, or an object column's own object
        if value is None or value != value:  # NaN is the one value unequal to itself
            return None
        return value.item() if hasattr(value, "item") else value
