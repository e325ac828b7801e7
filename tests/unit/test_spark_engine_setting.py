"""The engine setting: one `features.backend`, the spark section, and a clear message when the
`spark` extra is not installed."""

import sys

import pytest

from npsrisk.settings import ConfigError, load_settings


def test_the_engine_is_one_setting_with_a_spark_section(tmp_path):
    settings = load_settings(home=tmp_path)
    assert settings.features.backend == "duckdb"
    assert settings.spark.master == "local[*]" and settings.spark.conf == {}
    tuned = load_settings(
        home=tmp_path,
        features={"backend": "spark"},
        spark={"master": "spark://m:7077", "conf": {"spark.executor.memory": "8g"}},
    )
    assert tuned.features.backend == "spark"
    assert tuned.spark.conf["spark.executor.memory"] == "8g"


def test_models_trained_before_the_setting_read_pyspark_as_spark(tmp_path):
    assert load_settings(home=tmp_path, features={"backend": "pyspark"}).features.backend == "spark"


def test_without_pyspark_the_spark_engine_says_what_to_install(monkeypatch, tmp_path):
    from features.spark import require_pyspark, spark_session

    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now raises ImportError
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ConfigError, match=r"uv sync --extra spark"):
        require_pyspark()
    with pytest.raises(ConfigError, match=r"uv sync --extra spark"):
        spark_session(load_settings(home=tmp_path))
