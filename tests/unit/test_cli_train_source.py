"""`npsrisk train` hands a URL to the pipeline as written (a Path would fold s3a://b into
s3a:/b) and looks for demo ground truth beside a local folder only."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from demo.generator import CUSTOMER_TRUTH, TRUTH_DIR
from npsrisk.cli import app


class Reached(Exception):
    """Raised by the stand-in pipeline: what the CLI passed is all the test needs."""


@pytest.fixture
def handed(monkeypatch, tmp_path) -> dict:
    import training.pipeline

    seen: dict = {}

    def fake_train(data_path, settings, horizon_days, truth_path, progress=None, **kwargs):
        seen.update(data=data_path, truth=truth_path, engine=kwargs.get("engine"))
        raise Reached

    monkeypatch.setattr(training.pipeline, "train", fake_train)
    monkeypatch.setenv("NPSRISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NPSRISK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return seen


@pytest.mark.parametrize(
    "url", ["s3a://acme-exports/2026-11-30", "hdfs:///exports/acme", "file:///tmp/export"]
)
def test_a_url_reaches_the_pipeline_unchanged_without_demo_truth(handed, url):
    result = CliRunner().invoke(app, ["train", url, "--engine", "spark"])
    assert isinstance(result.exception, Reached), result.output
    assert handed == {"data": url, "truth": None, "engine": "spark"}


def test_a_url_with_truth_given_keeps_it(handed, tmp_path):
    truth = tmp_path / "truth.parquet"
    result = CliRunner().invoke(
        app, ["train", "s3a://b/x", "--engine", "spark", "--truth", str(truth)]
    )
    assert isinstance(result.exception, Reached), result.output
    assert handed["data"] == "s3a://b/x" and handed["truth"] == truth


def test_a_local_folder_is_a_path_with_its_demo_truth(handed, tmp_path):
    folder = tmp_path / "export"
    (folder / TRUTH_DIR).mkdir(parents=True)
    (folder / TRUTH_DIR / CUSTOMER_TRUTH).write_bytes(b"")
    result = CliRunner().invoke(app, ["train", str(folder)])
    assert isinstance(result.exception, Reached), result.output
    assert handed["data"] == Path(folder) and handed["truth"] == folder / TRUTH_DIR / CUSTOMER_TRUTH
    assert handed["engine"] == "duckdb"


def test_the_duckdb_engine_refuses_a_url_with_the_way_out(tmp_path):
    from features.loading import DataSourceError
    from npsrisk.settings import load_settings
    from training.pipeline import prepare_data

    settings = load_settings(home=tmp_path)
    with pytest.raises(DataSourceError, match="--engine spark"):
        prepare_data("s3a://b/x", settings, 90, tmp_path / "report")
