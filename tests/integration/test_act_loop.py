"""The success team's loop as a user runs it: plan, work, forecast, continue the demo, outcomes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NPSRISK = str(Path(sys.executable).parent / "npsrisk")


@pytest.fixture(scope="module")
def loop(trained, demo_path, demo_data, demo_config, tmp_path_factory):
    """A home of its own that scores with the trained champion (same registry)."""
    from demo.interventions import next_wave_schedule

    settings, _ = trained
    root = tmp_path_factory.mktemp("loop")
    env = {
        **os.environ,
        "NPSRISK_HOME": str(root / "home"),
        "NPSRISK_REGISTRY__TRACKING_URI": settings.tracking_uri,
        "NPSRISK_INTERVENTIONS__CONTROL_SHARE": "0.5",
        "NPSRISK_INTERVENTIONS__INTERVAL": "0.99",
        "NPSRISK_ALERTS__CONSOLE": "false",
        "COLUMNS": "200",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [NPSRISK, *args], capture_output=True, text=True, env=env, timeout=900
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    made = run("materialize", str(demo_path))
    assert made.returncode == 0, made.stderr
    schedule = next_wave_schedule(demo_data, demo_config)
    schedule = pd.concat(
        [
            schedule,
            pd.DataFrame(
                {
                    "customer_id": ["NOBODY", ""],
                    "survey_date": [schedule["survey_date"].iloc[0], "2026-01-05"],
                }
            ),
        ],
        ignore_index=True,
    )
    schedule_path = root / "schedule.csv"
    schedule.to_csv(schedule_path, index=False)
    return run, root, schedule_path, schedule


def test_presurvey_plans_every_scheduled_customer(loop, demo_config):
    run, root, schedule_path, schedule = loop
    today = str((pd.Timestamp(demo_config.end) - pd.Timedelta(days=1)).date())
    plan_path = root / "plan.csv"
    result = run(
        "presurvey", str(schedule_path), "--today", today, "--seed", "3", "--out", str(plan_path)
    )
    assert result.returncode == 0, result.stderr
    assert "1 schedule rows set aside" in result.stdout  # the row without an id
    plan = pd.read_csv(plan_path, dtype={"customer_id": str})
    good = schedule[schedule["customer_id"] != ""]
    assert plan["customer_id"].tolist() == good["customer_id"].tolist()  # nobody dropped
    assert (plan.loc[plan["customer_id"] == "NOBODY", "arm"] == "unknown").all()
    arms = plan["arm"].value_counts()
    assert arms["treatment"] > 20 and arms["control"] > 20
    assert plan["seed"].eq(3).all()
    again = run("presurvey", str(schedule_path), "--today", today, "--dry-run")
    said = " ".join(again.stdout.split())  # the terminal wraps long lines
    assert "already open" in said and "dry run: nothing stored" in said
    assert f"{len(good):,} scheduled, all listed" in said


def test_work_the_list(loop):
    run, root, _, _ = loop
    listed = run("interventions", "list", "--status", "planned", "--limit", "3")
    assert listed.returncode == 0 and "iv-" in listed.stdout
    iv = next(w for w in listed.stdout.split() if w.startswith("iv-"))
    assert run("interventions", "status", iv, "contacted", "--actor", "ana").returncode == 0
    bad = run("interventions", "status", iv, "planned", "--actor", "ana")
    assert bad.returncode == 2 and "allowed from contacted" in bad.stderr
    at_risk = run("at-risk", "--limit", "5", "--min-tier", "medium", "--out", str(root / "r.csv"))
    assert at_risk.returncode == 0, at_risk.stderr
    page = pd.read_csv(root / "r.csv")
    assert len(page) == 5 and page["churn_probability"].is_monotonic_decreasing
    assert run("at-risk", "--sort", "nonsense").returncode == 2


def test_forecast_and_outcomes_against_the_truth(loop, demo_config):
    from demo.interventions import INTERVENTION_TRUTH, true_effects
    from interventions.forecast import measured_nps

    run, root, schedule_path, _ = loop
    forecast = run("forecast", "--schedule", str(schedule_path), "--no-alert")
    assert forecast.returncode == 0, forecast.stderr
    body = json.loads(
        next((root / "home" / "reports" / "forecast").glob("*/forecast.json")).read_text()
    )
    cont = root / "continued"
    made = run(
        "demo-data",
        str(cont),
        "--customers",
        str(demo_config.customers),
        "--seed",
        str(demo_config.seed),
        "--continue-from",
        str(root / "plan.csv"),
    )
    assert made.returncode == 0, made.stderr
    answers = pd.read_parquet(cont / "nps_responses.parquet")
    wave = answers[answers["responded_at"] >= pd.Timestamp(demo_config.end)]
    truth = pd.read_parquet(cont / "ground_truth" / INTERVENTION_TRUTH)
    no_program = truth["score_if_no_program"].dropna().to_numpy()
    # the forecast (made before any outreach) against what the wave would report without it
    assert body["wave"]["low"] - 10 <= measured_nps(no_program) <= body["wave"]["high"] + 10
    assert len(wave) > 50

    outcomes = run("outcomes", str(cont))
    assert outcomes.returncode == 0, outcomes.stderr
    report = pd.read_csv(
        next((root / "home" / "reports" / "outcomes").glob("*/outcome_report.csv"))
    )
    head = report[(report["metric"] == "detractor_conversion") & (report["group"] == "all")].iloc[0]
    effect = true_effects(truth).set_index("group").loc["all", "conversion_effect"]
    assert head["low"] <= effect <= head["high"], (head.to_dict(), effect)
    assert head["n_treated"] > 0 and head["n_control"] > 0
    assert np.isfinite(head["difference"])

    def detractor_alerts() -> int:
        import sqlalchemy as sa

        engine = sa.create_engine(f"sqlite:///{root / 'home' / 'npsrisk.db'}")
        with engine.connect() as conn:
            n = conn.execute(
                sa.text("SELECT count(*) FROM alerts WHERE type = 'detractor.answered'")
            ).scalar_one()
        engine.dispose()
        return n

    first = detractor_alerts()
    new_detractors = wave[wave["score"] <= 6]
    assert first >= len(new_detractors) > 0  # every new detractor answer routed
    assert run("outcomes", str(cont)).returncode == 0
    assert detractor_alerts() == first  # a second ingest raises no duplicates
