"""Features of every active customer, a slice of customers at a time, so memory stays flat.

Scoring and materializing a million customers must not hold a million customers' events in
memory: each slice's rows are filtered while the files are read (features.loading), then
validated, scored into features and handed on before the next slice is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from features.loading import latest_date, load_tables
from features.validation import ValidatedTables, validate_tables

# Active customers per slice. At 25,000 a slice of a 1M-customer export peaks near 4.3 GiB
# (100,000: 14.5 GiB); each slice re-scans the files, so smaller slices cost read time.
CUSTOMER_CHUNK = 25_000
Progress = Callable[[int, int], None]


class FeatureModel(Protocol):
    """A trained model that knows how to build its own features (training.bundle)."""

    plan: dict  # its FeaturePlan, as FeaturePlan.to_dict() wrote it

    def features_for(self, tables: ValidatedTables, pairs: pd.DataFrame) -> pd.DataFrame: ...


@dataclass
class ChunkedRun:
    """What a chunked pass saw: the date, the customers, the rows set aside on the way."""

    as_of: pd.Timestamp
    customers: int
    set_aside: dict[str, dict[str, int]] = field(default_factory=dict)
    capped_messages: int = 0  # texts longer than the model's text cap (scored in part)

    def add(self, tables: ValidatedTables) -> None:
        for name, report in tables.report.tables.items():
            counts = self.set_aside.setdefault(name, {})
            for reason, n in report.reasons.items():
                counts[reason] = counts.get(reason, 0) + n

    @property
    def rows_set_aside(self) -> int:
        return sum(sum(c.values()) for c in self.set_aside.values())


def active_customer_ids(source: Path, as_of: pd.Timestamp, data=None) -> pd.Series:
    """Customers signed up and not churned by ``as_of`` (reads customers and churn only)."""
    from training.snapshots import active_customers  # training owns who is active when

    tables = validate_tables(load_tables(source, tables=("customers", "churn")), data)
    return active_customers(tables, as_of)


def feature_chunks(
    source: Path,
    model: FeatureModel,
    as_of: pd.Timestamp | None = None,
    chunk_size: int = CUSTOMER_CHUNK,
    progress: Progress | None = None,
    data=None,
) -> tuple[ChunkedRun, Iterator[pd.DataFrame]]:
    """The run's summary, and the model's feature frames of every active customer, by chunk.

    The iterator reads, validates and builds one chunk at a time; the summary fills in as
    it goes. ``as_of`` defaults to the export's latest date. ``data`` is the
    npsrisk.settings.DataSettings validation follows (default: the defaults).
    """
    when = pd.Timestamp(as_of).normalize() if as_of is not None else latest_date(source, data)
    ids = active_customer_ids(source, when, data)
    run = ChunkedRun(when, len(ids))

    def chunks() -> Iterator[pd.DataFrame]:
        done = 0
        for start in range(0, len(ids), chunk_size):
            chunk = ids.iloc[start : start + chunk_size]
            tables = validate_tables(load_tables(source, customer_ids=set(chunk)), data)
            run.add(tables)
            features = model.features_for(
                tables, pd.DataFrame({"customer_id": chunk, "as_of": when})
            )
            signals = tables.derived.get("text_signals")
            if signals is not None:
                run.capped_messages += int(signals.attrs.get("capped_messages", 0))
            yield features
            done += len(chunk)
            if progress is not None:
                progress(done, len(ids))

    return run, chunks()
