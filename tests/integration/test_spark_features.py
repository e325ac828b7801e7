"""The same Ibis feature definitions run on local Spark and give DuckDB's answers."""

import pandas as pd
import pytest

from demo.generator import DemoConfig, generate_demo
from features.build import build_features, connect, plan_features
from training.snapshots import active_customers

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.spark]


def test_pyspark_features_equal_duckdb_features(spark, validate_frames, settings):
    tables = validate_frames(generate_demo(DemoConfig(customers=150, seed=21)).tables)
    plan, _ = plan_features(tables, settings.features, settings.data)
    pairs = pd.concat(
        [
            pd.DataFrame({"customer_id": active_customers(tables, pd.Timestamp(d)), "as_of": d})
            for d in ("2024-09-30", "2025-06-30")
        ]
    )
    on_duckdb = build_features(tables, pairs, plan, connect("duckdb"))
    on_spark = build_features(tables, pairs, plan, connect("spark", spark))
    assert len(on_spark) == len(pairs)
    pd.testing.assert_frame_equal(on_spark, on_duckdb, check_exact=False, rtol=1e-9)
