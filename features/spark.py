"""The Spark engine: a session from the settings, the contract tables read and validated on
the cluster (quarantine written by Spark), and the shared Ibis feature definitions run there.

Nothing here restates a feature or a single-row contract rule: rows are checked per
partition by ``features.validation.row_problems`` (the function the DuckDB path runs), the
features are ``features.build.assemble_features`` compiled for Spark, static attributes and
text signals are the in-memory functions applied per partition. Only the rules that need
other rows (unknown customer, duplicate key, churn before signup) are Spark joins and
windows, with the semantics ``features.validation._validate_table`` states.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.attributes import static_attributes
from features.build import (
    EVENT_TABLES,
    INPUT_COLUMNS,
    TEXT_SIGNALS,
    FeatureInputs,
    FeaturePlan,
    assemble_features,
)
from features.contract import TABLES, TableSpec
from features.loading import DataSourceError, is_url
from features.validation import (
    CHURNED_BEFORE_SIGNUP,
    REASONS,
    UNKNOWN_CUSTOMER,
    DateRange,
    TableReport,
    TableSummary,
    ValidatedTables,
    ValidationReport,
    duplicate_reason,
    missing_column_reason,
    missing_columns,
    row_reasons,
)
from npsrisk.settings import ConfigError, Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = (
    "the Spark engine needs pyspark: run `uv sync --extra spark` "
    "(or `pip install 'npsrisk[spark]'`), with Java 17 on the machine"
)
ROW_ID = "_row_id"  # read order (Spark's monotonically increasing id), not a line number
TYPED = "_t_"
# Settings every run needs: times are UTC (the contract's rule), pandas hand-offs via Arrow.
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


def require_pyspark() -> None:
    """Fail with the install command when the `spark` extra is missing."""
    try:
        import pyspark
        import pyspark.sql  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None


def spark_session(settings: Settings) -> SparkSession:
    """The session the settings describe (spark.master, spark.app_name, spark.conf).

    Under ``spark-submit`` the submitted master and resources win over ``spark.master``.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(settings.spark.app_name)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # set by spark-submit for Python apps
        builder = builder.master(settings.spark.master)
    for key, value in {**BASE_CONF, **settings.spark.conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# --- reading ----------------------------------------------------------------------------


def _hadoop_path(spark: SparkSession, location: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(location)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def location_of(source: str | Path) -> str:
    """A path Spark reads: URLs (s3a://, hdfs://, abfss://, file:) as given, local paths
    made absolute."""
    text = str(source)
    return text if is_url(text) else str(Path(text).resolve())


def table_files(spark: SparkSession, source: str) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``{table: (location, format)}`` of the contract tables in a folder any Hadoop file
    system holds, and the names ignored. A table is ``<table>.parquet`` or ``<table>.csv``,
    a file or a folder of part files (as Spark writes them)."""
    path, fs = _hadoop_path(spark, source)
    if not fs.exists(path) or not fs.getFileStatus(path).isDirectory():
        raise DataSourceError(
            f"{source} is not a folder Spark can list. The Spark engine reads a folder of "
            "<table>.parquet/.csv files (local, s3a://, hdfs://, abfss://); for a DuckDB file "
            "use --engine duckdb."
        )
    found: dict[str, tuple[str, str]] = {}
    ignored: list[str] = []
    for status in sorted(fs.listStatus(path), key=lambda s: s.getPath().getName()):
        name = status.getPath().getName()
        stem, _, suffix = name.rpartition(".")
        if suffix.lower() not in ("parquet", "csv") or name.startswith(("_", ".")):
            continue
        if stem.lower() not in TABLES:
            ignored.append(name)
            continue
        if stem.lower() in found:
            raise DataSourceError(
                f"Table '{stem.lower()}' is present twice in {source}; keep one file per table."
            )
        found[stem.lower()] = (status.getPath().toString(), suffix.lower())
    return found, ignored


def read_table(
    spark: SparkSession, location: str, fmt: str, spec: TableSpec | None = None
) -> DataFrame:
    """One table as read, column names normalised as features.loading does, in read order."""
    from pyspark.sql import functions as F

    if fmt == "parquet":
        # pandas writes nanosecond timestamps, which Spark refuses (PARQUET_TYPE_ILLEGAL): it
        # reads them as epoch nanoseconds instead, and the contract's date and time columns
        # among them become timestamps again below (a whole number there means nanoseconds,
        # as pandas reads it).
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
        frame = spark.read.parquet(location)
        times = {c.name for c in spec.columns if c.kind in ("date", "timestamp")} if spec else ()
        for name, kind in frame.dtypes:
            if kind == "bigint" and name.strip().lower() in times:
                frame = frame.withColumn(name, F.timestamp_micros(F.floor(F.col(name) / 1000)))
    else:
        # Every value as text, so that validation decides what is unparsable (see
        # features.loading._csv_format); quoted values may span lines.
        frame = (
            spark.read.option("header", True)
            .option("inferSchema", False)
            .option("multiLine", True)
            .option("escape", '"')
            .csv(location)
        )
    frame = frame.toDF(*[c.strip().lower() for c in frame.columns])
    return frame.withColumn(ROW_ID, F.monotonically_increasing_id())


# --- validation -------------------------------------------------------------------------


def _contract_type(spec: TableSpec, name: str) -> str:
    column = next((c for c in spec.columns if c.name == name), None)
    if column is None:
        return "string"  # customers' own attributes travel as text (see static_attributes)
    return {"date": "timestamp", "timestamp": "timestamp", "integer": "double"}.get(
        column.kind, "double" if column.kind == "number" else "string"
    )


def _check_rows(spec: TableSpec, raw: DataFrame, dates: DateRange) -> DataFrame:
    """Each row typed and with the reasons of the single-row rules it breaks (or null);
    the raw values of bad rows kept as text for the quarantine."""
    from pyspark.sql.types import StructType

    raw_columns = [c for c in raw.columns if c != ROW_ID]
    typed_columns = [*spec.column_names, *[c for c in raw_columns if c not in spec.column_names]]
    ddl = ", ".join(
        [
            f"`{ROW_ID}` bigint",
            f"`{REASONS}` string",
            *[f"`{TYPED}{c}` {_contract_type(spec, c)}" for c in typed_columns],
            *[f"`{c}` string" for c in raw_columns],
        ]
    )
    schema = StructType.fromDDL(ddl)

    def check(batches):
        for batch in batches:
            part = batch.drop(columns=[ROW_ID]).reset_index(drop=True)
            typed, bad, reasons = row_reasons(spec, part, dates)
            out = {ROW_ID: batch[ROW_ID].to_numpy(), REASONS: reasons}
            for c in typed_columns:
                values = typed[c]
                if c not in spec.column_names:
                    values = values.astype("string").astype(object).where(values.notna(), None)
                out[f"{TYPED}{c}"] = values.to_numpy()
            for c in raw_columns:
                text = part[c].astype("string").astype(object)
                out[c] = text.where(pd.Series(bad) & part[c].notna(), None).to_numpy()
            yield pd.DataFrame(out)

    return raw.mapInPandas(check, schema)


def _add_reason(frame: DataFrame, condition, reason: str) -> DataFrame:
    from pyspark.sql import functions as F

    flagged = F.when(condition, F.lit(reason))
    return frame.withColumn(REASONS, F.concat_ws("; ", F.col(REASONS), flagged)).withColumn(
        REASONS, F.when(F.col(REASONS) != "", F.col(REASONS))
    )


def _flag_duplicates(frame: DataFrame, spec: TableSpec) -> DataFrame:
    """Among otherwise-good rows the first (in read order) of each key is kept."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = F.col(f"{TYPED}{spec.unique_key}")
    competing = key.isNotNull() & F.col(REASONS).isNull()
    order = Window.partitionBy(key, competing).orderBy(ROW_ID)
    ranked = frame.withColumn("_rank", F.row_number().over(order))
    return _add_reason(ranked, competing & (F.col("_rank") > 1), duplicate_reason(spec)).drop(
        "_rank"
    )


@dataclass
class SparkTables:
    """Validated contract tables on the cluster: typed good rows, the flagged rows (for the
    quarantine), the report with the same counts the DuckDB path gives."""

    frames: dict[str, DataFrame]
    flagged: dict[str, DataFrame]
    raw_columns: dict[str, list[str]]
    report: ValidationReport
    derived: dict[str, DataFrame] = field(default_factory=dict)

    def has(self, table: str) -> bool:
        return table in self.frames

    def unpersist(self) -> None:
        for frame in self.flagged.values():
            frame.unpersist()


def _count(frame: DataFrame, spec: TableSpec, origin: str) -> TableReport:
    from pyspark.sql import functions as F

    totals = frame.agg(
        F.count(F.lit(1)).alias("n"), F.count(F.col(REASONS)).alias("bad")
    ).collect()[0]
    rows = (
        frame.where(F.col(REASONS).isNotNull())
        .select(F.explode(F.split(F.col(REASONS), "; ")).alias("reason"))
        .groupBy("reason")
        .count()
        .collect()
    )
    reasons = {r["reason"]: int(r["count"]) for r in rows}
    n, bad = int(totals["n"]), int(totals["bad"])
    return TableReport(spec.name, origin, n, n - bad, bad, dict(sorted(reasons.items())))


def _good(frame: DataFrame, columns: list[str]) -> DataFrame:
    from pyspark.sql import functions as F

    kept = frame.where(F.col(REASONS).isNull())
    return kept.select(*[F.col(f"{TYPED}{c}").alias(c) for c in columns])


def validate_spark(spark: SparkSession, source: str | Path, data=None) -> SparkTables:
    """Read and check every contract table at ``source`` on the cluster (``data``:
    npsrisk.settings.DataSettings, for the plausible dates, as validate_tables)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    dates = DateRange.of(data)  # decided once on the driver: every executor uses the same
    location = location_of(source)
    files, ignored = table_files(spark, location)
    if "customers" not in files:
        found = ", ".join(sorted(files)) or "no contract tables"
        raise DataSourceError(
            f"{source} has no 'customers' table (found: {found}). The customers table is "
            "required: add customers.parquet or customers.csv with customer_id and signup_date."
        )
    frames: dict[str, DataFrame] = {}
    flagged: dict[str, DataFrame] = {}
    raw_columns: dict[str, list[str]] = {}
    reports: dict[str, TableReport] = {}
    customers = None
    for name in ("customers", *[t for t in TABLES if t != "customers"]):
        if name not in files:
            continue
        spec = TABLES[name]
        where, fmt = files[name]
        origin = where.rsplit("/", 1)[-1]
        raw = read_table(spark, where, fmt, spec)
        raw_columns[name] = [c for c in raw.columns if c != ROW_ID]
        missing = missing_columns(spec, raw_columns[name])
        if missing:
            if name == "customers":
                raise DataSourceError(
                    f"The customers table ({origin}) lacks {', '.join(missing)}; "
                    "customer_id and signup_date are required."
                )
            reason = missing_column_reason(missing)
            flagged[name] = raw.withColumn(REASONS, F.lit(reason))
            n = raw.count()
            note = (
                f"missing required column(s) {', '.join(missing)}: every row set aside and "
                "the table is treated as absent"
            )
            reports[name] = TableReport(name, origin, n, 0, n, {reason: n} if n else {}, note)
            continue
        checked = _check_rows(spec, raw, dates)
        if name == "churn":
            signup = customers.select(
                F.col("customer_id").alias("_cid"), F.col("signup_date").alias("_signup")
            )
            checked = checked.join(signup, checked[f"{TYPED}customer_id"] == signup._cid, "left")
            checked = _add_reason(
                checked,
                F.col("_signup").isNotNull() & (F.col(f"{TYPED}churned_at") < F.col("_signup")),
                CHURNED_BEFORE_SIGNUP,
            ).drop("_cid", "_signup")
        if spec.references_customers:
            known = customers.select(F.col("customer_id").alias("_known")).distinct()
            checked = checked.join(known, checked[f"{TYPED}customer_id"] == known._known, "left")
            checked = _add_reason(
                checked,
                F.col(f"{TYPED}customer_id").isNotNull() & F.col("_known").isNull(),
                UNKNOWN_CUSTOMER,
            ).drop("_known")
        if spec.unique_key is not None:
            checked = _flag_duplicates(checked, spec)
        # Counted, written to the quarantine and built into features: computed once.
        checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
        flagged[name] = checked
        keep = [*spec.column_names]
        if name == "customers":
            keep += [c for c in raw_columns[name] if c not in spec.column_names]
        frames[name] = _good(checked, keep)
        reports[name] = _count(checked, spec, origin)
        if name == "customers":
            if reports[name].rows_kept == 0:
                report = reports[name]
                raise DataSourceError(
                    f"No usable customers in {source}: all {report.rows_read} rows were set "
                    f"aside ({', '.join(report.reasons) or 'empty table'}). "
                    "Fix the customers table."
                )
            customers = frames[name]
    absent = [name for name in TABLES if name not in frames]
    report = ValidationReport(str(source), reports, absent, ignored)
    return SparkTables(frames, flagged, raw_columns, report)


def write_quarantine(tables: SparkTables, out_dir: str) -> dict[str, str]:
    """Each table's set-aside rows, as read, with their reasons: ``<out>/<table>/`` CSV part
    files written by the cluster. Returns the folders written."""
    from pyspark.sql import functions as F

    written = {}
    for name, frame in tables.flagged.items():
        if not tables.report.tables[name].rows_set_aside:
            continue
        # A row broken by a single-row rule keeps its raw text; one broken only by a cross-row
        # rule passed every single-row rule, so its typed value is its value.
        columns = [
            F.coalesce(F.col(c), F.col(f"{TYPED}{c}").cast("string")).alias(c)
            if f"{TYPED}{c}" in frame.columns
            else F.col(c)
            for c in tables.raw_columns[name]
        ]
        target = f"{out_dir.rstrip('/')}/{name}"
        bad = frame.where(F.col(REASONS).isNotNull()).select(ROW_ID, *columns, REASONS)
        bad.write.mode("overwrite").option("header", True).csv(target)
        written[name] = target
    return written


# --- the driver's share (training) -------------------------------------------------------

# The per-customer tables the steps before the features read (training.snapshots' labels,
# training.text_model's comments), with the columns they read; None: every column, in the
# order features.validation gives them (the plan infers static attributes from them). The
# other tables' rows stay on the cluster; the driver gets their TableSummary.
DRIVER_COLUMNS: dict[str, tuple[str, ...] | None] = {
    "customers": None,
    "churn": ("customer_id", "churned_at"),
    "nps_responses": ("customer_id", "responded_at", "score", "comment"),
    "surveys": ("customer_id", "sent_at"),
}
# What text_analytics.signals.extract_customer_texts reads of the message tables.
TEXT_INPUTS = {
    "chats": ("customer_id", "sent_at", "conversation_id", "author", "text"),
    "tickets": ("customer_id", "created_at", "ticket_id", "subject", "body"),
}


def _validated_order(tables: SparkTables, name: str) -> list[str]:
    """A table's columns as features.validation orders them: as read, then the contract
    columns the file lacks."""
    raw = tables.raw_columns[name]
    return [*raw, *[c for c in TABLES[name].column_names if c not in raw]]


def _summary(frame: DataFrame, time_column: str) -> TableSummary:
    from pyspark.sql import functions as F

    time = F.col(time_column)
    # toPandas, not collect: times come back in the session's zone (UTC), not the driver's.
    row = frame.agg(
        F.count(F.lit(1)).alias("rows"), F.min(time).alias("first"), F.max(time).alias("last")
    ).toPandas()
    first, last = (row[c].iloc[0] for c in ("first", "last"))
    if pd.isna(first):
        return TableSummary(int(row["rows"].iloc[0]))
    return TableSummary(int(row["rows"].iloc[0]), pd.Timestamp(first), pd.Timestamp(last))


def _metric_rows(tables: SparkTables) -> pd.Series:
    """Good usage rows per metric, most frequent first, ties in read order (as pandas'
    value_counts gives them for the in-memory path)."""
    from pyspark.sql import functions as F

    metric = F.col(f"{TYPED}metric")
    good = tables.flagged["usage"].where(F.col(REASONS).isNull() & metric.isNotNull())
    counted = (
        good.groupBy(metric.alias("metric"))
        .agg(F.count(F.lit(1)).alias("count"), F.min(ROW_ID).alias("first_row"))
        .toPandas()
        .sort_values(["count", "first_row"], ascending=[False, True], kind="stable")
    )
    index = pd.Index(counted["metric"].astype(object), name="metric")
    return pd.Series(counted["count"].to_numpy(dtype="int64"), index=index, name="count")


def _comments(good: DataFrame, limit: int, seed: int) -> tuple[Any, list[str]]:
    """The comment column the driver gets: none without a ``limit``; above it, the comments
    of a sample of that many answers chosen by a hash (the same rows every run)."""
    from pyspark.sql import functions as F

    comment = F.col(f"{TYPED}comment")
    if not limit:
        return F.lit(None).cast("string"), []
    commented = good.where(comment.isNotNull())
    n = commented.count()
    if n <= limit:
        return comment, []
    key = F.xxhash64(
        F.col(f"{TYPED}customer_id"), F.col(f"{TYPED}responded_at"), comment, F.lit(seed)
    )
    sample = commented.select(key.alias("_key")).orderBy("_key").limit(limit)
    threshold = sample.agg(F.max("_key")).collect()[0][0]
    note = (
        f"{n:,} NPS comments exceed spark.driver_comment_limit ({limit:,}): the text model "
        f"learns from a sample of {limit:,} (chosen by a hash of each answer, the same every run)"
    )
    return F.when(key <= threshold, comment), [note]


def driver_tables(
    tables: SparkTables, comment_limit: int = 0, seed: int = 0
) -> tuple[ValidatedTables, list[str]]:
    """The validated export as the training steps before the features read it, on the driver.

    The per-customer tables (``DRIVER_COLUMNS``) are collected in read order; usage, tickets
    and chats stay on the cluster and come as ``TableSummary``s (rows, time span, usage rows
    per metric). NPS comments, which the text model learns from, come only with a
    ``comment_limit``, and at most about that many. Returns the tables and notes for the run.
    """
    from pyspark.sql import functions as F

    frames: dict[str, pd.DataFrame] = {}
    summaries: dict[str, TableSummary] = {}
    notes: list[str] = []
    for name, frame in tables.frames.items():
        if name not in DRIVER_COLUMNS:
            summaries[name] = _summary(frame, TABLES[name].time_column)
            continue
        good = tables.flagged[name].where(F.col(REASONS).isNull())
        columns = DRIVER_COLUMNS[name] or _validated_order(tables, name)
        selected = {c: F.col(f"{TYPED}{c}") for c in columns}
        if name == "nps_responses":
            selected["comment"], comment_notes = _comments(good, comment_limit, seed)
            notes += comment_notes
        ordered = good.orderBy(ROW_ID).select(*[v.alias(k) for k, v in selected.items()])
        frames[name] = ordered.toPandas()
    if "usage" in summaries:
        summaries["usage"].metric_rows = _metric_rows(tables)
    return ValidatedTables(frames, {}, tables.report, summaries=summaries), notes


def customer_text_rows(tables: SparkTables, max_chars: int) -> tuple[int, int]:
    """How many customer texts of chats and tickets the text features score, and how many of
    them are longer than ``max_chars``: counted on the executors with text_analytics' own
    extraction (no text comes to the driver)."""
    from pyspark.sql import functions as F

    from text_analytics.signals import cap_texts, extract_customer_texts

    parts = []
    for table, columns in TEXT_INPUTS.items():
        if not tables.has(table):
            continue

        def count(batches, table=table):
            for batch in batches:
                found = extract_customer_texts({table: batch})
                _, long = cap_texts(found["text"], max_chars)
                yield pd.DataFrame({"texts": [len(found)], "capped": [long]})

        frame = tables.frames[table]
        inputs = frame.select(*[c for c in columns if c in frame.columns])
        parts.append(inputs.mapInPandas(count, "texts long, capped long"))
    if not parts:
        return 0, 0
    counts = parts[0]
    for part in parts[1:]:
        counts = counts.unionByName(part)
    row = counts.agg(F.sum("texts").alias("texts"), F.sum("capped").alias("capped")).collect()[0]
    return int(row["texts"] or 0), int(row["capped"] or 0)


# --- features ---------------------------------------------------------------------------


def active_pairs(tables: SparkTables, as_of: pd.Timestamp) -> DataFrame:
    """``(customer_id, as_of)`` of customers signed up and not churned by ``as_of``: the
    rule of training.snapshots.active_customers, on the cluster."""
    from pyspark.sql import functions as F

    cutoff = F.lit((as_of.normalize() + pd.Timedelta(days=1)).to_pydatetime())
    customers = tables.frames["customers"].where(F.col("signup_date") < cutoff)
    if tables.has("churn"):
        gone = (
            tables.frames["churn"]
            .where(F.col("churned_at") < cutoff)
            .select(F.col("customer_id").alias("_gone"))
            .distinct()
        )
        customers = customers.join(gone, customers.customer_id == gone._gone, "left_anti")
    when = F.lit(as_of.normalize().to_pydatetime()).cast("timestamp")
    return customers.select("customer_id", when.alias("as_of"))


def latest_date_spark(tables: SparkTables) -> pd.Timestamp:
    """The export's last date: the latest time in any event table (as features.loading)."""
    from pyspark.sql import functions as F

    latest = []
    for name, frame in tables.frames.items():
        spec = TABLES[name]
        if name == "customers" or spec.time_column is None:
            continue
        value = frame.agg(F.max(spec.time_column)).collect()[0][0]
        if value is not None:
            latest.append(pd.Timestamp(value))
    if not latest:
        raise DataSourceError("the export has no dated rows in any event table: pass --as-of.")
    return max(latest).normalize()


def _attributes(tables: SparkTables, plan: FeaturePlan) -> DataFrame:
    """Static attributes typed per partition by features.attributes.static_attributes."""
    from pyspark.sql.types import StructType

    schema_plan = plan.attributes
    ddl = ", ".join(
        [
            "`customer_id` string",
            "`signup_date` timestamp",
            *[f"`{c}` double" for c in (*schema_plan.numeric, *schema_plan.boolean)],
            *[f"`{c}` string" for c in schema_plan.categorical],
        ]
    )
    schema = StructType.fromDDL(ddl)
    names = [f.name for f in schema.fields]
    customers = tables.frames["customers"]
    for column in names:
        if column not in customers.columns:  # the column is absent from this export
            from pyspark.sql import functions as F

            customers = customers.withColumn(column, F.lit(None).cast("string"))
    customers = customers.select(*names)

    def typed(batches):
        for batch in batches:
            yield static_attributes(batch, schema_plan)[names]

    return customers.mapInPandas(typed, schema)


def _text_signals(tables: SparkTables, scorer: Any) -> DataFrame:
    """Customer texts of chats and tickets scored per partition by the model's scorer."""
    from pyspark.sql.types import StructType

    themes = [f"theme_{t}" for t in scorer.taxonomy.ids]
    ddl = ", ".join(
        [
            "`customer_id` string",
            "`timestamp` timestamp",
            "`source` string",
            "`text_score` double",
            "`p_negative` double",
            "`negative` boolean",
            *[f"`{t}` boolean" for t in themes],
        ]
    )
    schema = StructType.fromDDL(ddl)
    names = [f.name for f in schema.fields]
    parts = []
    for table in ("chats", "tickets"):
        if not tables.has(table):
            continue

        def score(batches, table=table):
            for batch in batches:
                yield scorer.signals({table: batch})[names]

        parts.append(tables.frames[table].mapInPandas(score, schema))
    if not parts:  # no texts: the text features exist, with nothing to count
        return tables.frames["customers"].sparkSession.createDataFrame([], schema)
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _view(con, frame: DataFrame, stem: str):
    name = f"npsrisk_{stem}_{uuid.uuid4().hex[:8]}"
    frame.createOrReplaceTempView(name)
    return con.table(name)


def spark_features(
    spark: SparkSession, tables: SparkTables, pairs: DataFrame, plan: FeaturePlan, text=None
) -> DataFrame:
    """The feature frame of ``pairs`` (customer_id, as_of) on the cluster: the shared Ibis
    definitions (features.build.assemble_features) compiled for Spark."""
    import ibis
    from pyspark.sql import functions as F

    con = ibis.pyspark.connect(spark)
    spine = pairs.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        F.date_trunc("day", F.col("as_of").cast("timestamp")).alias("as_of"),
    ).dropDuplicates(["customer_id", "as_of"])
    events = {}
    for name in EVENT_TABLES:
        if name in plan.tables and tables.has(name):
            columns = [c for c in INPUT_COLUMNS[name] if c in tables.frames[name].columns]
            events[name] = _view(con, tables.frames[name].select(*columns), name)
    if plan.text_themes:
        if text is None:
            raise ValueError("this model's plan has text features but no text scorer")
        if TEXT_SIGNALS not in tables.derived:
            tables.derived[TEXT_SIGNALS] = _text_signals(tables, text)
        events[TEXT_SIGNALS] = _view(con, tables.derived[TEXT_SIGNALS], TEXT_SIGNALS)
    inputs = FeatureInputs(
        _view(con, spine, "spine"), _view(con, _attributes(tables, plan), "attributes"), events
    )
    expr = assemble_features(inputs, plan)
    con._run_pre_execute_hooks(expr)
    return spark.sql(con.compile(expr))


def spark_pairs_features(
    spark: SparkSession, tables: SparkTables, pairs: pd.DataFrame, plan: FeaturePlan, text=None
) -> pd.DataFrame:
    """Features of in-memory (customer_id, as_of) pairs built on the cluster, brought to the
    driver as features.build.build_features returns them (training snapshots)."""
    from features.build import KEYS, make_spine, typed_features

    spine = make_spine(pairs).drop_duplicates(list(KEYS), ignore_index=True)[list(KEYS)]
    if len(spine) == 0:
        return pd.DataFrame(columns=[*KEYS, *plan.feature_names])
    frame = spark_features(spark, tables, spark.createDataFrame(spine), plan, text).toPandas()
    frame = typed_features(frame, plan)
    return spine.merge(frame, on=list(KEYS), how="left", validate="one_to_one")


def materialize_spark(
    spark: SparkSession,
    source: str | Path,
    model: Any,
    home: Path,
    as_of: pd.Timestamp | None = None,
    model_version: str | None = None,
    data=None,
):
    """The serving store (features.store.write_store) from the cluster's feature frame of
    every customer active at ``as_of``: the service is fed the same way at any size."""
    from features.build import typed_features
    from features.store import write_store

    tables = validate_spark(spark, source, data)
    when = pd.Timestamp(as_of).normalize() if as_of is not None else latest_date_spark(tables)
    plan = FeaturePlan.from_dict(model.plan)
    frame = spark_features(spark, tables, active_pairs(tables, when), plan, model.text)
    features = typed_features(frame.toPandas(), plan)  # the store is one file the service loads
    info = write_store(features, plan, home, when, model_version)
    tables.unpersist()
    return info, tables.report
