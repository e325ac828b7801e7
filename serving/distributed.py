"""Batch scoring on Spark: the champion bundle shipped once per executor, rows scored with
``mapInArrow`` through the batch path's ``predictions_batch`` (the scores, drivers and
descriptions of ``predict_rows``, the code behind `/predict`, built as Arrow columns), Parquet
part files published atomically with a ``_SUCCESS`` marker.

Spark's file committer keeps only one attempt of each task, so a task that fails and is
retried leaves no duplicate rows; the whole output appears under ``--out`` by one rename.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.build import FeaturePlan, typed_features
from features.spark import (
    SparkTables,
    active_pairs,
    latest_date_spark,
    location_of,
    spark_features,
    validate_spark,
)
from npsrisk.settings import RiskTierSettings
from serving.batch import PREDICT_ROWS, PREDICTIONS_SCHEMA, predictions_batch
from serving.predictions import ModelCard
from training.bundle import ModelBundle

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# A local property a test sets to make every task's first attempt fail midway.
FAULT_PROPERTY = "npsrisk.inject_failure"
_BUNDLES: dict[str, ModelBundle] = {}  # per Python worker: each shipped bundle loaded once


@dataclass
class SparkBatchResult:
    path: str
    rows: int
    features_as_of: str
    rows_set_aside: int


def ship_bundle(spark: SparkSession, bundle: ModelBundle, work_dir: Path) -> str:
    """Pickle the bundle once and hand it to every executor (SparkFiles); its file name."""
    import cloudpickle

    name = f"npsrisk-bundle-{uuid.uuid4().hex[:12]}.pkl"
    path = work_dir / name
    path.write_bytes(cloudpickle.dumps(bundle))
    spark.sparkContext.addFile(str(path))
    return name


def _load_bundle(name: str) -> ModelBundle:
    if name not in _BUNDLES:
        import pickle

        from pyspark import SparkFiles

        with open(SparkFiles.get(name), "rb") as handle:
            _BUNDLES[name] = pickle.load(handle)
    return _BUNDLES[name]


def score_frame(
    features: DataFrame,
    bundle_name: str,
    plan: FeaturePlan,
    card: ModelCard,
    features_as_of: str,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
) -> DataFrame:
    """Prediction rows of a Spark feature frame, scored on the executors."""
    from pyspark.sql.pandas.types import from_arrow_schema

    def score(batches):
        from pyspark import TaskContext

        bundle = _load_bundle(bundle_name)
        task = TaskContext.get()
        fail = (
            task is not None
            and task.getLocalProperty(FAULT_PROPERTY) == "first-attempt"
            and task.attemptNumber() == 0
        )
        for batch in batches:
            frame = typed_features(_naive_utc(batch.to_pandas()), plan)
            for start in range(0, len(frame), PREDICT_ROWS):
                part = frame.iloc[start : start + PREDICT_ROWS].reset_index(drop=True)
                table = predictions_batch(bundle, part, card, features_as_of, explain, top_k, tiers)
                yield from table.to_batches()
                if fail:  # after some rows went out: the retry must not repeat them
                    raise RuntimeError("injected task failure (npsrisk.inject_failure)")

    # Arrow in and out: the batch path's own columns, with no pandas round trip of the drivers.
    return features.mapInArrow(score, from_arrow_schema(PREDICTIONS_SCHEMA))


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrow batches from Spark carry timestamps as UTC instants (the session time zone is
    UTC); the features compare naive UTC times, as the DuckDB path's frames hold them."""
    from features.validation import to_utc_naive

    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = to_utc_naive(frame[column])
    return frame


def publish(spark: SparkSession, frame: DataFrame, out: str) -> None:
    """Write ``frame`` as Parquet next to ``out``, then move it into place in one rename:
    readers see the old output or the complete new one (with ``_SUCCESS``), never a part."""
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(out)
    fs = target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    parent = target.getParent()
    token = uuid.uuid4().hex[:12]
    staging = jvm.org.apache.hadoop.fs.Path(parent, f".{target.getName()}.{token}.partial")
    frame.write.mode("error").parquet(staging.toString())
    if not fs.exists(jvm.org.apache.hadoop.fs.Path(staging, "_SUCCESS")):
        raise RuntimeError(f"Spark finished without a _SUCCESS marker in {staging}")
    old = None
    if fs.exists(target):
        old = jvm.org.apache.hadoop.fs.Path(parent, f".{target.getName()}.{token}.old")
        fs.rename(target, old)
    if not fs.rename(staging, target):
        raise RuntimeError(f"could not move {staging} to {target}")
    if old is not None:
        fs.delete(old, True)


def score_spark(
    spark: SparkSession,
    source: str | Path,
    bundle: ModelBundle,
    card: ModelCard,
    out: str | Path,
    as_of: pd.Timestamp | None,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
    work_dir: Path,
    tables: SparkTables | None = None,
    data=None,
) -> SparkBatchResult:
    """Score every customer active at ``as_of`` (default: the export's latest date) on the
    cluster and publish the predictions as a Parquet folder at ``out``."""
    tables = tables or validate_spark(spark, source, data)
    when = pd.Timestamp(as_of).normalize() if as_of is not None else latest_date_spark(tables)
    plan = FeaturePlan.from_dict(bundle.plan)
    features = spark_features(spark, tables, active_pairs(tables, when), plan, bundle.text)
    work_dir.mkdir(parents=True, exist_ok=True)
    name = ship_bundle(spark, bundle, work_dir)
    as_of_text = str(when.date())
    scored = score_frame(features, name, plan, card, as_of_text, explain, top_k, tiers)
    target = location_of(out)
    publish(spark, scored, target)
    rows = spark.read.parquet(target).count()  # from the Parquet footers
    return SparkBatchResult(target, rows, as_of_text, tables.report.rows_set_aside)
