"""`npsrisk monitor drift|performance` and `npsrisk retrain` as a user runs them, on the
session's trained demo model and a real MLflow store: verdicts, exit codes, reports, alerts,
the promotion gate both ways."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alerts import list_alerts
from db import open_database
from monitoring.performance import realized_metrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLI = [sys.executable, "-c", "from npsrisk.cli import main; main()"]


def npsrisk(home: Path, *args: str, env: dict[str, str] | None = None):
    # Not MLflow's own variables: mlflow.set_tracking_uri in this process (the trained
    # fixture) exports MLFLOW_TRACKING_URI, which would point the CLI at another home.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    full = {
        **inherited,
        "NPSRISK_HOME": str(home),
        "NPSRISK_TRAINING__LIGHTGBM__N_ESTIMATORS": "300",
        "NPSRISK_TRAINING__LIGHTGBM__EARLY_STOPPING_ROUNDS": "30",
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run([*CLI, *args], env=full, capture_output=True, text=True, timeout=900)


def _summary(home: Path, kind: str) -> dict:
    latest = sorted((home / "reports" / kind).glob("*/summary.json"))[-1]
    return json.loads(latest.read_text())


@pytest.fixture(scope="module")
def last_valid_as_of(trained) -> str:
    from monitoring.reference import load_reference

    settings, _ = trained
    return str(load_reference(settings).frame["as_of"].max().date())


@pytest.fixture(scope="module")
def scored(trained, demo_path, last_valid_as_of, tmp_path_factory) -> Path:
    settings, _ = trained
    path = tmp_path_factory.mktemp("scored") / "scores.parquet"
    done = npsrisk(
        settings.home_path, "score", str(demo_path), "--out", str(path), "--as-of",
        last_valid_as_of, "--no-explain",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path


def test_the_reference_window_itself_shows_no_drift_and_exits_0(
    trained, demo_path, last_valid_as_of
):
    settings, _ = trained
    done = npsrisk(
        settings.home_path, "monitor", "drift", "--data", str(demo_path), "--as-of",
        last_valid_as_of,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = _summary(settings.home_path, "drift")
    assert summary["verdict"] == "no drift" and summary["segments_moved"] == []
    assert summary["windows"]["current"]["end"] == last_valid_as_of
    assert summary["rows"]["current"] > 100 and summary["segment_tests"] > 50
    assert {p["column"] for p in summary["predictions"]} >= {"churn_probability", "nps_category"}
    folder = sorted((settings.home_path / "reports" / "drift").glob("*"))[-1]
    assert "Verdict" in (folder / "report.html").read_text()
    assert (folder / "evidently.html").stat().st_size > 10_000
    index = (settings.home_path / "reports" / "index.html").read_text()
    assert folder.name in index and "no drift" in index
    assert "wrote drift report" in done.stdout


def test_shifted_predictions_drift_exit_1_and_raise_an_alert(trained, scored, tmp_path):
    settings, _ = trained
    calm = npsrisk(settings.home_path, "monitor", "drift", "--batch", str(scored))
    assert calm.returncode == 0, calm.stdout + calm.stderr
    frame = pd.read_parquet(scored)
    frame["churn_probability"] = np.clip(frame["churn_probability"] * 2.5, 0, 1)
    shifted = tmp_path / "shifted.parquet"
    frame.to_parquet(shifted)
    done = npsrisk(settings.home_path, "monitor", "drift", "--batch", str(shifted))
    assert done.returncode == 1, done.stdout + done.stderr
    summary = _summary(settings.home_path, "drift")
    assert summary["verdict"] == "drift"
    churn = next(p for p in summary["predictions"] if p["column"] == "churn_probability")
    assert churn["drifted"] and churn["score"] > 0.1
    assert any("predictions, not features" in n for n in summary["notes"])
    db = open_database(settings)
    alerts = [a for a in list_alerts(db, alert_type="drift.detected")]
    db.dispose()
    assert alerts and alerts[0].body["data"]["verdict"] == "drift"
    assert alerts[0].status == "sent"  # console and file, delivered by the command itself
    lines = settings.alerts_file_path.read_text().splitlines()
    assert alerts[0].id in {json.loads(line)["id"] for line in lines}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "/nonexistent/scores.parquet"], "does not exist"),
        (["--batch", "a.parquet", "--data", "b"], "give one window"),
        (["--data", "/nonexistent/export"], "nonexistent"),
    ],
)
def test_drift_that_cannot_run_exits_2_with_the_reason(trained, args, message):
    settings, _ = trained
    done = npsrisk(settings.home_path, "monitor", "drift", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_home_without_a_model_exits_2(tmp_path):
    done = npsrisk(tmp_path / "empty", "monitor", "drift")
    assert done.returncode == 2 and "npsrisk train" in done.stderr


def test_realized_performance_on_known_outcomes(trained, demo_path, scored, last_valid_as_of):
    from monitoring.reference import load_reference

    settings, _ = trained
    done = npsrisk(
        settings.home_path, "monitor", "performance", str(demo_path), "--batch", str(scored),
        "--no-log",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    summary = _summary(settings.home_path, "performance")
    (period,) = summary["periods"]
    assert period["period"] == last_valid_as_of
    # The same customers, features and outcomes the training run held out at that date.
    ref = load_reference(settings).frame
    expected = realized_metrics(ref[ref["as_of"] == pd.Timestamp(last_valid_as_of)])
    assert period["n"] == expected["n"]
    # Batch outputs round probabilities to 6 decimals; with smooth calibration that rounding
    # makes a few ties the reference's full-precision scores do not have.
    assert period["roc_auc"] == pytest.approx(expected["roc_auc"], abs=5e-4)
    assert period["mae"] == pytest.approx(expected["mae"], abs=1e-3)
    assert abs(period["expected_churn_rate"] - period["churn_rate"]) < 0.05
    assert summary["verdict"] == ("decay" if done.returncode == 1 else "no decay")
    table = pd.read_csv(
        sorted((settings.home_path / "reports" / "performance").glob("*"))[-1] / "performance.csv"
    )
    assert {"plan_tier", "region", "tenure_band"} <= set(table["segment"])


def test_retrain_gate_both_ways(demo_path, tmp_path):
    from mlflow import MlflowClient

    home = tmp_path / "home"
    # A weak first champion: LightGBM alone (no linear or blend candidate) with 3 trees.
    weak = {
        "NPSRISK_TRAINING__CANDIDATES": '["lightgbm"]',
        "NPSRISK_TRAINING__SEARCH_LIGHTGBM": "false",
        "NPSRISK_TRAINING__LIGHTGBM__N_ESTIMATORS": "3",
        "NPSRISK_TRAINING__LIGHTGBM__LEARNING_RATE": "0.01",
    }
    first = npsrisk(home, "train", str(demo_path), env=weak)
    assert first.returncode == 0, first.stderr
    store = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(store, store)  # registry too: the process's global one is elsewhere

    promoted = npsrisk(home, "retrain", str(demo_path))
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "promoted" in promoted.stdout, promoted.stdout
    assert "kept as challenger" not in promoted.stdout, promoted.stdout
    assert str(client.get_model_version_by_alias("npsrisk", "champion").version) == "2"
    run = client.get_run(client.get_model_version("npsrisk", "2").run_id)
    assert run.data.tags["retrain.trigger"] == "unconditional retrain"
    assert run.data.tags["promotion"] == "champion"

    # Every column drifts at a tiny threshold: the drift trigger fires, the same settings
    # retrain an identical model, and the gate keeps the champion.
    hair_trigger = {
        "NPSRISK_MONITORING__NUMERICAL_THRESHOLD": "0.000001",
        "NPSRISK_MONITORING__CATEGORICAL_THRESHOLD": "0.000001",
    }
    kept = npsrisk(home, "retrain", "--if-needed", str(demo_path), env=hair_trigger)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "trigger: drift" in kept.stdout and "kept as challenger" in kept.stdout
    assert str(client.get_model_version_by_alias("npsrisk", "champion").version) == "2"
    run = client.get_run(client.get_model_version("npsrisk", "3").run_id)
    assert run.data.tags["retrain.trigger"].startswith("drift:")
    assert run.data.tags["retrain.drift_verdict"] == "drift"
    assert run.data.tags["promotion"] == "challenger"
    assert _summary(home, "retrain")["verdict"] == "kept as challenger"

    calm = {
        "NPSRISK_MONITORING__NUMERICAL_THRESHOLD": "1000",
        "NPSRISK_MONITORING__CATEGORICAL_THRESHOLD": "1000",
    }
    skipped = npsrisk(home, "retrain", "--if-needed", str(demo_path), env=calm)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "no retrain needed" in skipped.stdout
    assert len(client.search_model_versions("name='npsrisk'")) == 3
    assert _summary(home, "retrain")["verdict"] == "not needed"


def test_promote_by_hand_moves_the_alias_and_records_why(tmp_path):
    """`npsrisk promote` on a real SQLite registry holding three versions, v2 the champion
    and v3 a challenger (as the gate test leaves them)."""
    from mlflow import MlflowClient

    home = tmp_path / "home"
    home.mkdir()
    store = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(store, store)
    client.create_registered_model("npsrisk")
    for _ in range(3):
        client.create_model_version("npsrisk", (tmp_path / "model").as_uri())
    client.set_registered_model_alias("npsrisk", "champion", "2")
    client.set_model_version_tag("npsrisk", "3", "promotion", "challenger")

    by_hand = npsrisk(home, "promote", "3", "--reason", "same quality, fresher data")
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    assert "v3 is champion (was v2)" in by_hand.stdout
    assert str(client.get_model_version_by_alias("npsrisk", "champion").version) == "3"
    tags = client.get_model_version("npsrisk", "3").tags
    assert tags["promotion"] == "champion"
    assert tags["promotion_reason"] == "promoted by hand: same quality, fresher data"
    again = npsrisk(home, "promote", "3", "--reason", "again")
    assert again.returncode == 0 and "already champion" in again.stdout
    assert client.get_model_version("npsrisk", "3").tags["promotion_reason"].endswith("data")
    missing = npsrisk(home, "promote", "9", "--reason", "typo")
    assert missing.returncode == 2 and "no version 9 (registered: 1, 2, 3)" in missing.stderr
    assert "Traceback" not in missing.stderr
    nothing = npsrisk(tmp_path / "empty", "promote", "1", "--reason", "x")
    assert nothing.returncode == 2 and "npsrisk train" in nothing.stderr


# --- the inference log as the window: a real service logs, monitoring reads it -------------


def _logged(log_path: Path, n: int, timeout: float = 30) -> pd.DataFrame:
    """The log once it holds ``n`` records (the service writes off the request path)."""
    from serving.inference_log import read_inference_log

    deadline = time.monotonic() + timeout
    while True:
        log = read_inference_log(log_path)
        if len(log) >= n or time.monotonic() > deadline:
            return log
        time.sleep(0.2)


@pytest.fixture(scope="module")
def logging_service(trained, demo_path, last_valid_as_of, tmp_path_factory):
    """The trained champion served from a home of its own (sharing the session's registry),
    its store materialized at the reference's last as-of date, whose outcomes the data holds:
    the shared service's store is at the data's last day, whose outcomes are not known yet,
    and its log collects every other test's requests."""
    from conftest import ServiceProcess
    from features.store import materialize_features
    from npsrisk.settings import load_settings
    from serving.state import load_champion

    shared, _ = trained
    home = tmp_path_factory.mktemp("logging_home")
    env = {"NPSRISK_REGISTRY__TRACKING_URI": shared.tracking_uri}
    settings = load_settings(home=home, registry={"tracking_uri": shared.tracking_uri})
    champion = load_champion(settings)
    materialize_features(
        demo_path, champion.bundle, home, pd.Timestamp(last_valid_as_of), champion.card.version
    )
    open_database(settings, upgrade=True)
    process = ServiceProcess(home, tmp_path_factory.mktemp("logging_service") / "serve.log", env)
    try:
        process.wait_until_up()
        yield settings, process, env
    finally:
        process.stop()


def test_inference_log_window_end_to_end(logging_service, demo_path, last_valid_as_of):
    """Predictions served over HTTP, half of them compacted into the day's Parquet file, are
    the window of `monitor drift --from/--to` and the predictions `monitor performance`
    judges: every logged prediction is counted, each customer once."""
    import httpx

    from conftest import headers
    from features.store import FeatureStore
    from serving.inference_log import COMPACTED, tidy_inference_log

    settings, service, env = logging_service
    log_path = settings.inference_log_path
    ids = list(FeatureStore.open(settings.home_path).frame["customer_id"])
    assert len(ids) >= 600
    first, second = ids[:300], ids[250:600]  # 50 customers predicted twice

    def predict(batch: list[str]) -> None:
        response = httpx.post(
            service.url + "/predict",
            json={"customer_ids": [*batch, "nobody"], "explain": False},
            headers=headers(),
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.json()["unknown_customer_ids"] == ["nobody"]

    predict(first)
    assert len(_logged(log_path, 300)) == 300
    # The service compacts a day once it is over; a clock one day ahead does it now.
    today = datetime.now(UTC).date()
    done = tidy_inference_log(log_path, 0, today=today + timedelta(days=1), settle_seconds=0)
    assert done["compacted_records"] == 300
    predict(second)
    log = _logged(log_path, 650)
    day = log_path / f"date={today}"
    assert (day / COMPACTED).is_file() and list(day.glob("*.jsonl"))
    assert len(log) == 650 and set(log["features_as_of"]) == {last_valid_as_of}
    distinct = len(set(first) | set(second))

    drift = npsrisk(
        settings.home_path, "monitor", "drift", "--from", str(today), "--to", str(today), env=env
    )
    assert drift.returncode == 0, drift.stdout + drift.stderr  # the reference's own date
    summary = _summary(settings.home_path, "drift")
    current = summary["windows"]["current"]
    assert summary["rows"]["current"] == distinct == current["rows"]
    assert current["source"].startswith("inference log") and current["has_features"]
    assert current["start"] == current["end"] == str(today)
    assert summary["verdict"] == "no drift" and summary["segment_tests"] > 0

    perf = npsrisk(settings.home_path, "monitor", "performance", str(demo_path), env=env)
    assert perf.returncode == 0, perf.stdout + perf.stderr
    summary = _summary(settings.home_path, "performance")
    assert summary["sources"] == ["the inference log"]
    assert summary["rows"] == {"predictions": 650, "joined": distinct}
    (period,) = summary["periods"]
    assert period["period"] == last_valid_as_of and period["n"] == distinct
    assert 0.6 < period["roc_auc"] <= 1 and period["n_answered"] > 0

    # A window with nothing logged cannot run: exit 2 and the reason.
    empty = npsrisk(
        settings.home_path, "monitor", "drift", "--from", "2020-01-01", "--to", "2020-01-31",
        env=env,
    )  # fmt: skip
    assert empty.returncode == 2 and "2020-01-01" in empty.stderr, empty.stderr
