"""The `npsrisk` console command, run as a user runs it (a subprocess)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

NPSRISK = str(Path(sys.executable).parent / "npsrisk")


def run(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "NPSRISK_HOME": str(home), "COLUMNS": "200", **env}
    return subprocess.run(
        [NPSRISK, *args], capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["validate", "/no/such/folder"], {}, "does not exist"),
        (["validate", "."], {"NPSRISK_CONFIG": "/no/such.yaml"}, "NPSRISK_CONFIG"),
        (["validate", "."], {"NPSRISK_TRAINING__HORIZON_DAYS": "soon"}, "horizon_days"),
        (["demo-data", "x", "--start", "someday"], {}, "--start"),
    ],
)
def test_user_mistakes_get_a_message_not_a_traceback(tmp_path, args, env, message):
    result = run(*args, home=tmp_path, **env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_demo_validate_train_evaluate_on_a_duckdb_file(tmp_path):
    data = tmp_path / "data"
    made = run(
        "demo-data",
        str(data),
        "--customers",
        "600",
        "--seed",
        "8",
        "--format",
        "duckdb",
        "--bad-rows",
        "0.005",
        home=tmp_path / "home",
    )
    assert made.returncode == 0, made.stderr
    assert "wrote contract tables" in made.stdout
    source = str(data / "npsrisk.duckdb")

    checked = run("validate", source, home=tmp_path / "home")
    assert checked.returncode == 0, checked.stderr
    assert "Rows set aside, by reason" in checked.stdout
    assert "unknown_customer:customer_id" in checked.stdout
    assert list((tmp_path / "home" / "reports" / "validation").glob("*/quarantine/usage.csv"))

    trained = run(
        "train",
        source,
        "--horizon-days",
        "60",
        home=tmp_path / "home",
        NPSRISK_TRAINING__LIGHTGBM__N_ESTIMATORS="200",
        # Too few comments to learn from: the run falls back to the lexicon and says so.
        NPSRISK_TEXT__MIN_COMMENTS="100000",
    )
    assert trained.returncode == 0, trained.stderr
    assert "is champion" in trained.stdout
    assert "lexicon" in trained.stdout
    assert "roc_auc" in trained.stdout and "oracle" in trained.stdout
    assert "wrote evaluation report and plots" in trained.stdout
    assert (tmp_path / "home" / "mlflow.db").exists()

    shown = run("evaluate", home=tmp_path / "home")
    assert shown.returncode == 0, shown.stderr
    assert "Training evaluation" in shown.stdout and "champion" in shown.stdout

    backtest = run("evaluate", "--data", source, home=tmp_path / "home")
    assert backtest.returncode == 0, backtest.stderr
    assert "Champion v1" in backtest.stdout

    # The serving steps, with their progress bars, as the README's first command runs them.
    stored = run("materialize", source, home=tmp_path / "home")
    assert stored.returncode == 0, stored.stderr + stored.stdout
    assert "active customers as of" in stored.stdout and "Traceback" not in stored.stderr
    scores = tmp_path / "scores.csv"
    scored = run("score", source, "--out", str(scores), home=tmp_path / "home")
    assert scored.returncode == 0, scored.stderr + scored.stdout
    assert "customers scored with" in scored.stdout
    import pandas as pd

    assert len(pd.read_csv(scores)) > 0


def test_training_without_enough_history_says_what_to_change(tmp_path):
    data = tmp_path / "data"
    made = run("demo-data", str(data), "--customers", "50", "--months", "4", home=tmp_path)
    assert made.returncode == 0
    result = run("train", str(data), "--horizon-days", "400", home=tmp_path)
    assert result.returncode == 2
    assert "--horizon-days" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_text_evaluate_and_theme_report(tmp_path):
    data = tmp_path / "data"
    assert (
        run("demo-data", str(data), "--customers", "800", "--seed", "4", home=tmp_path).returncode
        == 0
    )
    evaluated = run("text", "evaluate", str(data), home=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "learned" in evaluated.stdout and "lexicon" in evaluated.stdout
    assert "Theme coding against the demo ground truth" in evaluated.stdout
    cv = next((tmp_path / "reports" / "text").glob("*/sentiment_cv.csv"))
    import pandas as pd

    table = pd.read_csv(cv).set_index("model")
    assert table.loc["learned", "detractor_auc"] > table.loc["lexicon", "detractor_auc"]
    assert table.loc["learned", "score_mae"] < table.loc["lexicon", "score_mae"]

    reported = run("report", "themes", str(data), home=tmp_path)
    assert reported.returncode == 0, reported.stderr
    html = next((tmp_path / "reports" / "themes").glob("*/theme_report.html")).read_text()
    assert "@" not in html.replace("[email]", "")  # verbatims are masked
