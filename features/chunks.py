"""Features of every active customer, handed out a slice at a time, so memory stays flat.

Scoring and materializing a million customers must not hold a million customers' events in
pandas: the export's event tables are streamed from the files into DuckDB, filtered at the
scan to the active customers and checked on the way (features.duck), the features of every
active customer are one DuckDB query (spilling to disk past its memory limit), and its rows
are handed on a slice at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from features.loading import latest_date, load_tables
from features.validation import ValidatedTables, validate_tables

# Feature rows handed on at a time (the scoring and the store's writes work in these slices).
CUSTOMER_CHUNK = 25_000
Progress = Callable[[int, int], None]


class FeatureModel(Protocol):
    """A trained model that knows how to build its own features (training.bundle)."""

    plan: dict  # its FeaturePlan, as FeaturePlan.to_dict() wrote it
    text: Any  # its text scorer (text_analytics.signals.TextScorer), or None

    def features_for(self, tables: ValidatedTables, pairs: pd.DataFrame) -> pd.DataFrame: ...


@dataclass
class ChunkedRun:
    """What a chunked pass saw: the date, the customers, the rows set aside on the way."""

    as_of: pd.Timestamp
    customers: int
    set_aside: dict[str, dict[str, int]] = field(default_factory=dict)
    capped_messages: int = 0  # texts longer than the model's text cap (scored in part)

    def add(self, tables: ValidatedTables | Any) -> None:
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
        from features.build import FeaturePlan
        from features.duck import attach_text_signals_duckdb, feature_batches, validate_duckdb

        plan = FeaturePlan.from_dict(model.plan)
        if plan.text_themes and getattr(model, "text", None) is None:
            raise ValueError("this model's plan has text features but no text scorer")
        tables = validate_duckdb(source, data, customer_ids=set(ids))
        try:
            run.add(tables)
            if plan.text_themes:
                attach_text_signals_duckdb(tables, model.text)
                run.capped_messages += tables.capped_messages
            pairs = pd.DataFrame({"customer_id": ids, "as_of": when})
            done = 0
            for features in feature_batches(tables, pairs, plan, chunk_size):
                yield features
                done += len(features)
                if progress is not None:
                    progress(done, len(ids))
        finally:
            tables.close()

    return run, chunks()
