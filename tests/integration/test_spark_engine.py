"""The Spark engine on a real local session gives the DuckDB path's answers: the same rows set
aside, the same features, the same scores and drivers row for row, the same serving store, a
training run from a URL that reads the export only on the cluster with the same report and
validation metrics; a failed task's retry duplicates nothing; a low driver row limit
down-samples and stays calibrated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from conftest import FAST_LIGHTGBM, assert_same_report
from demo.generator import DemoConfig, find_ground_truth, generate_demo, write_demo
from features.build import FeaturePlan
from features.loading import load_tables
from features.spark import spark_pairs_features, validate_spark, write_quarantine
from features.store import FeatureStore, materialize_features
from features.validation import validate_tables
from npsrisk.settings import load_settings
from serving.batch import read_predictions, score_source
from serving.distributed import FAULT_PROPERTY, score_spark
from serving.state import load_champion
from training.pipeline import MODEL, train

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.spark]

AS_OF = pd.Timestamp("2024-12-31")


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """A small company as CSV (every value text) with contract-breaking rows."""
    config = DemoConfig(customers=400, seed=5, months=12, bad_rows=0.03, file_format="csv")
    out = tmp_path_factory.mktemp("spark_export")
    write_demo(generate_demo(config), out, config)
    return out


@pytest.fixture(scope="module")
def duck_run(tmp_path_factory, export):
    settings = load_settings(
        home=tmp_path_factory.mktemp("duck_home"), training={"lightgbm": FAST_LIGHTGBM}
    )
    return settings, train(export, settings, truth_path=find_ground_truth(export))


@pytest.fixture(scope="module")
def spark_tables(spark, export):
    tables = validate_spark(spark, export)
    yield tables
    tables.unpersist()


def _assert_same_drivers(left: list[dict], right: list[dict]) -> None:
    assert [(d["feature"], d["target"]) for d in left] == [
        (d["feature"], d["target"]) for d in right
    ]
    for a, b in zip(left, right, strict=True):
        assert a["contribution"] == pytest.approx(b["contribution"], rel=1e-6, abs=1e-9)
        if isinstance(a["value"], float) and isinstance(b["value"], float):
            assert a["value"] == pytest.approx(b["value"], rel=1e-9)
        else:
            assert a["value"] == b["value"]
        assert a["description"] == b["description"]


def test_quarantine_counts_equal_the_duckdb_path(spark_tables, export, tmp_path):
    on_duckdb = validate_tables(load_tables(export)).report
    assert on_duckdb.rows_set_aside > 0  # the export does break the contract
    assert_same_report(spark_tables.report, on_duckdb)
    written = write_quarantine(spark_tables, str(tmp_path / "quarantine"))
    for name, folder in written.items():
        parts = list(Path(folder).glob("part-*.csv"))
        rows = pd.concat([pd.read_csv(p, dtype=str) for p in parts])
        assert len(rows) == on_duckdb.tables[name].rows_set_aside
        assert rows["_reasons"].notna().all()
        assert (Path(folder) / "_SUCCESS").exists()


def test_features_of_any_pairs_equal_duckdb(spark, spark_tables, export, duck_run):
    settings, _ = duck_run
    bundle = load_champion(settings).bundle
    plan = FeaturePlan.from_dict(bundle.plan)
    tables = validate_tables(load_tables(export))
    ids = tables["customers"]["customer_id"].sample(60, random_state=1).tolist()
    pairs = pd.DataFrame(
        {
            "customer_id": [*ids, *ids[:20], "NOT-A-CUSTOMER"],
            "as_of": [AS_OF] * 60 + [pd.Timestamp("2024-06-30 13:00")] * 20 + [AS_OF],
        }
    )
    on_spark = spark_pairs_features(spark, spark_tables, pairs, plan, bundle.text)
    on_duckdb = bundle.features_for(tables, pairs)
    assert len(on_spark) == len(pairs)
    pd.testing.assert_frame_equal(on_spark, on_duckdb, check_exact=False, rtol=1e-9)


def test_spark_scores_equal_duckdb_and_a_retried_task_duplicates_nothing(
    spark, spark_tables, export, duck_run, tmp_path
):
    settings, _ = duck_run
    champion = load_champion(settings)
    tiers = settings.serving.risk_tiers
    out = tmp_path / "scores"
    context = spark.sparkContext
    context.setJobGroup("npsrisk-score-test", "score with an injected failure")
    context.setLocalProperty(FAULT_PROPERTY, "first-attempt")
    try:
        result = score_spark(
            spark, export, champion.bundle, champion.card, out, AS_OF, True, 5, tiers,
            tmp_path / "work", tables=spark_tables,
        )  # fmt: skip
    finally:
        context.setLocalProperty(FAULT_PROPERTY, None)
    tracker = context.statusTracker()
    failed = sum(
        tracker.getStageInfo(stage).numFailedTasks
        for job in tracker.getJobIdsForGroup("npsrisk-score-test")
        for stage in tracker.getJobInfo(job).stageIds
    )
    assert failed >= 1  # the failure did happen, and Spark retried the task
    assert (out / "_SUCCESS").exists()
    assert not list(tmp_path.glob(".scores.*"))  # the staging folder was moved into place

    on_spark = read_predictions(out).sort_values("customer_id", ignore_index=True)
    duck_out = tmp_path / "duck.parquet"
    score_source(export, champion.bundle, champion.card, duck_out, AS_OF, True, 5, tiers)
    on_duckdb = read_predictions(duck_out).sort_values("customer_id", ignore_index=True)
    assert result.rows == len(on_spark) == len(on_duckdb) > 100
    assert on_spark["customer_id"].is_unique  # no row written twice by the retried task
    pd.testing.assert_frame_equal(
        on_spark.drop(columns="drivers"),
        on_duckdb.drop(columns="drivers"),
        check_exact=False,
        rtol=1e-6,
    )
    for left, right in zip(on_spark["drivers"], on_duckdb["drivers"], strict=True):
        _assert_same_drivers(left, right)
    assert sum(len(d) for d in on_spark["drivers"]) > 0


def test_materialize_from_spark_writes_the_same_store(spark, export, duck_run, tmp_path):
    from features.spark import materialize_spark

    settings, _ = duck_run
    champion = load_champion(settings)
    info, report = materialize_spark(
        spark, export, champion.bundle, tmp_path / "spark_home", AS_OF, champion.card.version
    )
    duck = materialize_features(
        export, champion.bundle, tmp_path / "duck_home", AS_OF, champion.card.version
    )
    assert report.rows_set_aside > 0
    a = FeatureStore.read(info.path).frame
    b = FeatureStore.read(duck.path).frame
    assert len(a) == len(b) == info.rows > 100
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


def _validation_metrics(result) -> pd.Series:
    m = result.metrics
    m = m[(m["model"] == MODEL) & (m["segment"] == "all") & (m["metric"] != "n")]
    return m.set_index(["target", "metric"])["value"]


def _report(result) -> dict:
    return json.loads((result.report_dir / "validation" / "report.json").read_text())


def _plan(result) -> dict:
    return json.loads((result.report_dir / "features.json").read_text())["plan"]


def test_spark_training_from_a_url_reads_the_export_once_on_the_cluster(
    spark, export, duck_run, tmp_path, monkeypatch
):
    """``file://`` takes the code path of ``s3a://``: the export is validated once by Spark, no
    table is read into pandas, and only small tables, summaries and the features come back."""
    import features.loading
    import features.spark
    import training.sources

    _, duck = duck_run

    def no_local_read(*args, **kwargs):
        raise AssertionError("the Spark path read the export into pandas")

    monkeypatch.setattr(training.sources, "load_tables", no_local_read)
    monkeypatch.setattr(features.loading, "load_tables", no_local_read)
    validations = []
    validate = features.spark.validate_spark
    monkeypatch.setattr(
        features.spark,
        "validate_spark",
        lambda *args, **kwargs: validations.append(args[1]) or validate(*args, **kwargs),
    )
    collected: list[tuple[set[str], int]] = []  # the columns and rows of every collect
    frame_class = type(spark.range(1))
    to_pandas, collect = frame_class.toPandas, frame_class.collect

    def spy_to_pandas(self, *args, **kwargs):
        out = to_pandas(self, *args, **kwargs)
        collected.append((set(out.columns), len(out)))
        return out

    def spy_collect(self, *args, **kwargs):
        out = collect(self, *args, **kwargs)
        collected.append((set(self.columns), len(out)))
        return out

    monkeypatch.setattr(frame_class, "toPandas", spy_to_pandas)
    monkeypatch.setattr(frame_class, "collect", spy_collect)

    url = export.resolve().as_uri()  # file:///...
    settings = load_settings(home=tmp_path / "home", training={"lightgbm": FAST_LIGHTGBM})
    result = train(url, settings, truth_path=find_ground_truth(export), engine="spark")

    assert result.model_version is not None
    run = MlflowClient(settings.tracking_uri).get_run(result.run_id)
    assert run.data.params["engine"] == "spark" and run.data.params["sampling_sampled"] == "False"
    assert run.data.tags["data_source"] == url
    assert validations == [url]  # read and validated once, for labels, plan and features
    usage_rows = _report(duck)["tables"]["usage"]["rows_kept"]
    assert collected and max(rows for _, rows in collected) < usage_rows
    row_columns = {"value", "timestamp", "sent_at", "created_at", "text", "subject", "body"}
    for columns, _ in collected:  # no usage, chat or ticket row reached the driver
        assert not columns & row_columns, columns
    # The same report as the in-memory path, and the quarantine written by Spark beside it.
    on_spark, on_duckdb = _report(result), _report(duck)
    assert on_spark["source"] == url
    assert on_spark["tables"] == on_duckdb["tables"]
    assert on_spark["rows_set_aside"] == on_duckdb["rows_set_aside"] > 0
    assert on_spark["absent_tables"] == on_duckdb["absent_tables"]
    quarantine = result.report_dir / "validation" / "quarantine"
    for name, table in on_duckdb["tables"].items():
        if table["rows_set_aside"]:
            rows = pd.concat(
                [pd.read_csv(p, dtype=str) for p in (quarantine / name).glob("part-*.csv")]
            )
            assert len(rows) == table["rows_set_aside"], name
    # Labels, plan and text model from the driver's share give the in-memory run's figures.
    assert _plan(result) == _plan(duck)
    pd.testing.assert_series_equal(
        _validation_metrics(result), _validation_metrics(duck), check_exact=False, atol=1e-3
    )


def test_low_row_limit_down_samples_and_stays_calibrated(spark, export, duck_run, tmp_path):
    _, duck = duck_run
    limit = 800  # below the ~1,800 snapshot rows: every group is thinned to its share
    settings = load_settings(
        home=tmp_path / "home",
        training={"lightgbm": FAST_LIGHTGBM},
        spark={"driver_row_limit": limit},
    )
    result = train(export, settings, truth_path=find_ground_truth(export), engine="spark")
    params = MlflowClient(settings.tracking_uri).get_run(result.run_id).data.params
    assert params["sampling_sampled"] == "True"
    assert int(params["sampling_rows_kept"]) <= limit < int(params["sampling_snapshot_rows"])
    assert 0 < float(params["sampling_negative_rate"]) < 1
    assert float(params["sampling_positive_rate"]) == 1.0  # every churner kept
    sampled, full = _validation_metrics(result), _validation_metrics(duck)
    # Calibrated on the data's own churn rate: on the held-out window the sampled model's
    # calibration error is close to the full model's, and its Brier score too.
    assert sampled["churn", "calibration_error"] <= full["churn", "calibration_error"] + 0.03
    assert sampled["churn", "brier"] <= full["churn", "brier"] * 1.15
    assert sampled["churn", "roc_auc"] > 0.6
    assert not np.isnan(sampled["churn", "churn_rate"])


def test_parquet_with_nanosecond_timestamps_reads_as_on_duckdb(spark, export, tmp_path):
    """pandas writes Parquet timestamps in nanoseconds, which Spark refuses unless told to read
    them as numbers; they must come back as the same instants the local path reads."""
    out = tmp_path / "nanos"
    out.mkdir()
    for name in ("customers", "usage", "tickets", "nps_responses"):
        frame = pd.read_csv(export / f"{name}.csv", dtype=str)
        for column in frame.columns:
            if column.endswith(("_at", "_date")) or column == "timestamp":
                parsed = pd.to_datetime(frame[column], errors="coerce", format="mixed", utc=True)
                frame[column] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
        frame.to_parquet(out / f"{name}.parquet", index=False)  # datetime64[ns] as written
    assert "ns" in str(pq.read_schema(out / "usage.parquet").field("timestamp").type)
    local = validate_tables(load_tables(out))
    on_spark = validate_spark(spark, out)
    try:
        assert_same_report(on_spark.report, local.report)
        times = on_spark.frames["usage"].select("timestamp").toPandas()["timestamp"]
        want = local["usage"]["timestamp"]
        assert sorted(times.dropna()) == sorted(want.dropna())
    finally:
        on_spark.unpersist()
