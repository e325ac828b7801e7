"""Where training reads the export: every table in memory on this machine, or on a Spark
cluster with only the per-customer tables and summaries on the driver.

``training.pipeline.prepare_data`` runs the same steps on either: it reads the validated
tables a source gives, scores texts through it, and builds the snapshots' features with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from features.build import TEXT_SIGNALS, FeaturePlan, attach_text_signals, build_features
from features.loading import DataSourceError, is_url, load_tables
from features.validation import (
    TableSummary,
    ValidatedTables,
    validate_tables,
    write_report_files,
    write_validation_report,
)
from npsrisk.settings import Settings
from text_analytics.signals import TextScorer

if TYPE_CHECKING:
    from features.spark import SparkTables


class TableSource(Protocol):
    """What prepare_data and the feature step ask of the engine that holds the rows."""

    def validated(self, report_dir: Path, comments: bool) -> tuple[ValidatedTables, list[str]]:
        """Read and validate once, write the report; the tables the labels and the plan read
        (``comments``: with the NPS comments the text model learns from), and notes."""
        ...

    def score_texts(self, tables: ValidatedTables, text: TextScorer) -> int:
        """Score (or count, where they are scored later) the customer texts the features
        use; return how many were longer than the scorer reads."""
        ...

    def snapshot_features(
        self, tables: ValidatedTables, pairs: pd.DataFrame, plan: FeaturePlan, text
    ) -> pd.DataFrame:
        """Features of (customer_id, as_of) pairs, as features.build.build_features gives them."""
        ...

    def close(self) -> None: ...


class MemorySource:
    """A local folder or DuckDB file, every table read into pandas."""

    def __init__(self, data_path: Path | str, settings: Settings) -> None:
        if is_url(data_path):
            raise DataSourceError(
                f"{data_path} is a URL: the duckdb engine reads a local folder or DuckDB file. "
                "Use --engine spark (features.backend: spark) to read it on a cluster."
            )
        self.data_path = Path(data_path)
        self.settings = settings

    def validated(self, report_dir: Path, comments: bool) -> tuple[ValidatedTables, list[str]]:
        tables = validate_tables(load_tables(self.data_path), self.settings.data)
        write_validation_report(tables, report_dir)
        return tables, []

    def score_texts(self, tables: ValidatedTables, text: TextScorer) -> int:
        attach_text_signals(tables, text)
        return tables.derived[TEXT_SIGNALS].attrs.get("capped_messages", 0)

    def snapshot_features(
        self, tables: ValidatedTables, pairs: pd.DataFrame, plan: FeaturePlan, text
    ) -> pd.DataFrame:
        return build_features(tables, pairs, plan)

    def close(self) -> None:
        pass


class SparkSource:
    """Any folder Spark reads (a local path, s3a://, hdfs://, abfss://, file://), read and
    validated once on the cluster (features.spark.validate_spark). The driver gets the
    per-customer tables, summaries of the others and at most ``spark.driver_comment_limit``
    NPS comments; the texts are scored and the features built on the cluster."""

    def __init__(self, location: Path | str, settings: Settings) -> None:
        from features.spark import spark_session

        self.location = location
        self.settings = settings
        self.spark = spark_session(settings)
        self.tables: SparkTables | None = None

    def _spark_tables(self) -> SparkTables:
        if self.tables is None:
            raise RuntimeError("SparkSource.validated() reads the export first")
        return self.tables

    def validated(self, report_dir: Path, comments: bool) -> tuple[ValidatedTables, list[str]]:
        from features.spark import driver_tables, validate_spark, write_quarantine

        self.tables = validate_spark(self.spark, self.location, self.settings.data)
        write_report_files(self.tables.report, report_dir)
        write_quarantine(self.tables, str(report_dir.resolve() / "quarantine"))
        limit = self.settings.spark.driver_comment_limit if comments else 0
        return driver_tables(self.tables, limit, self.settings.training.seed)

    def score_texts(self, tables: ValidatedTables, text: TextScorer) -> int:
        from features.spark import customer_text_rows

        # Scored with the features, on the executors; here only counted, for the plan.
        texts, capped = customer_text_rows(self._spark_tables(), text.max_chars)
        tables.summaries[TEXT_SIGNALS] = TableSummary(texts)
        return capped

    def snapshot_features(
        self, tables: ValidatedTables, pairs: pd.DataFrame, plan: FeaturePlan, text
    ) -> pd.DataFrame:
        from features.spark import spark_pairs_features

        return spark_pairs_features(self.spark, self._spark_tables(), pairs, plan, text)

    def close(self) -> None:
        if self.tables is not None:
            self.tables.unpersist()


@contextmanager
def table_source(data: Path | str, settings: Settings, engine: str) -> Iterator[TableSource]:
    """The source of ``engine`` ("duckdb" or "spark") for ``data``, released on exit."""
    source: TableSource = (
        SparkSource(data, settings) if engine == "spark" else MemorySource(data, settings)
    )
    try:
        yield source
    finally:
        source.close()
