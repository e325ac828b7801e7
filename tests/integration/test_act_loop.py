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
    # Not MLflow's own variables: mlflow.set_tracking_uri in this process (the trained
    # fixture) exports MLFLOW_TRACKING_URI, which would point the CLI at another store.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = {
        **inherited,
        "NPSRISK_HOME": str(root / "home"),
        "NPSRISK_REGISTRY__TRACKING_URI": settings.tracking_uri,
        "NPSRISK_INTERVENTIONS__CONTROL_SHARE": "0.5",
        "NPSRISK_INTERVENTIONS__INTERVAL": "0.99",
        "NPSRISK_ALERTS__CONSOLE": "false",
        "COLUMNS": "200",
    }

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [NPSRISK, *args],
            capture_output=True,
            text=True,
            env={**env, **(extra or {})},
            timeout=900,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    # A month earlier first, then now: the store keeps the earlier one, so every score can
    # say why it moved since then.
    earlier = (pd.Timestamp(demo_config.end) - pd.Timedelta(days=31)).date()
    made = run("materialize", str(demo_path), "--as-of", str(earlier))
    assert made.returncode == 0, made.stderr
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


def _alerts(root: Path, kind: str) -> list[dict]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{root / 'home' / 'npsrisk.db'}")
    with engine.connect() as conn:
        bodies = conn.execute(
            sa.text("SELECT body FROM alerts WHERE type = :t"), {"t": kind}
        ).scalars()
        out = [json.loads(b)["data"] for b in bodies]
    engine.dispose()
    return out


def test_scores_say_why_they_moved_in_the_list_and_the_alerts(loop):
    run, root, _, _ = loop
    listed = run("at-risk", "--limit", "30", "--out", str(root / "moved.csv"))
    assert listed.returncode == 0, listed.stderr
    page = pd.read_csv(root / "moved.csv")
    assert page["change"].str.contains(r"^churn risk .+ since \d{4}-\d{2}-\d{2}").all()
    assert page["change"].str.contains(r"points\)").any()  # some feature moved the score
    newly = run(
        "at-risk", "--newly-at-risk", "--alert", "--limit", "20", "--out", str(root / "n.csv")
    )
    assert newly.returncode == 0, newly.stderr
    rose = pd.read_csv(root / "n.csv")
    raised = _alerts(root, "customer.newly_at_risk")
    assert len(rose) > 0 and {a["customer_id"] for a in raised} == set(rose["customer_id"])
    assert all(a["change"]["summary"] and a["previous_risk_tier"] != a["risk_tier"] for a in raised)
    assert run("at-risk", "--newly-at-risk", "--alert", "--limit", "20").returncode == 0
    assert len(_alerts(root, "customer.newly_at_risk")) == len(raised)  # once per date
    assert run("at-risk", "--alert").returncode == 2  # --alert needs --newly-at-risk
    # the detractor answers routed by `outcomes` carry the drivers and the score's change
    routed = _alerts(root, "detractor.answered")
    assert routed and sum(bool(a["drivers"]) for a in routed) > len(routed) / 2
    assert any(a["change"] and " since " in a["change"]["summary"] for a in routed)


def test_forecast_from_the_surveys_table_and_segment_playbooks(loop, demo_path, tmp_path):
    run, root, _, schedule = loop
    day = str(schedule["survey_date"].iloc[0])
    invited = schedule[schedule["survey_date"].astype(str) == day]
    import shutil

    folder = tmp_path / "export"  # the demo export with its invitations added
    shutil.copytree(demo_path, folder)
    surveys = pd.DataFrame({"customer_id": invited["customer_id"], "sent_at": f"{day}T09:00:00Z"})
    surveys = pd.concat(
        [surveys, pd.DataFrame({"customer_id": ["C-x"], "sent_at": ["not a date"]})]
    )
    surveys.to_csv(folder / "surveys.csv", index=False)
    # a playbook file with a segment playbook for any drop, and every fall counted as a drop
    import yaml

    from interventions.playbooks import DEFAULT_PLAYBOOKS

    shipped = yaml.safe_load(
        (Path(__file__).parents[2] / "interventions" / DEFAULT_PLAYBOOKS).read_text()
    )
    shipped["segment_playbooks"] = [
        {"id": "segment_call", "action": "call the segment's accounts", "owner_role": "lead"}
    ]
    playbooks = tmp_path / "playbooks.yaml"
    playbooks.write_text(yaml.safe_dump(shipped))
    extra = {
        "NPSRISK_INTERVENTIONS__PLAYBOOKS_PATH": str(playbooks),
        "NPSRISK_INTERVENTIONS__SEGMENT_DROP_POINTS": "0.001",
    }
    result = run(
        "forecast", "--surveys", str(folder), "--survey-date", day, "--plan-segments", extra=extra
    )
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    # set aside by the contract's rules: the unparsable invitation and the unknown customer
    unknown = int((invited["customer_id"] == "NOBODY").sum())
    assert f"surveys: {1 + unknown} of {len(surveys):,} rows set aside" in said, said
    body = json.loads(
        max((root / "home" / "reports" / "forecast").glob("*/forecast.json")).read_text()
    )
    known = invited[invited["customer_id"] != "NOBODY"]["customer_id"].nunique()
    assert body["wave"]["customers"] == known
    dropped = body["dropped_segments"]
    assert dropped, "no segment forecast below its last measured NPS"
    listed = run("interventions", "list", "--playbook", "segment_call", "--limit", "100")
    assert listed.returncode == 0, listed.stderr
    for seg in dropped:
        assert f"segment:{seg['column']}={seg['value']}" in " ".join(listed.stdout.split())
    alerts = [a for a in _alerts(root, "segment.dropped") if a["survey_date"] == day]
    assert alerts and all(a["plan"]["playbook"] == "segment_call" for a in alerts)
    again = run(
        "forecast", "--surveys", str(folder), "--survey-date", day, "--plan-segments", extra=extra
    )
    assert again.returncode == 0 and "(already open)" in again.stdout


def test_review_weekly_monthly_quarterly(loop, demo_path, demo_data):
    from features.contract import nps_category

    run, root, _, _ = loop
    answers = demo_data.tables["nps_responses"].copy()
    answers["responded_at"] = pd.to_datetime(answers["responded_at"], utc=True)
    reports = root / "home" / "reports"

    weekly = run("review", str(demo_path), "--weekly")
    assert weekly.returncode == 0, weekly.stderr
    comments = pd.read_csv(next((reports / "review-weekly").glob("*/detractor_comments.csv")))
    end = pd.Timestamp(
        max(pd.to_datetime(f[c], utc=True).max() for f, c in _event_columns(demo_data))
    ).normalize()
    recent = answers[
        (answers["responded_at"] > end - pd.Timedelta(days=7))
        & (answers["responded_at"] <= end)
        & (answers["score"] <= 6)
    ]
    assert len(comments) == len(recent) > 0
    assert f"{len(recent):,} detractor answers in the 7 days to {end.date()}" in " ".join(
        weekly.stdout.split()
    )
    themes = pd.read_csv(next((reports / "review-weekly").glob("*/repeating_themes.csv")))
    assert (themes["mentions"] >= 3).all()

    monthly = run("review", str(demo_path), "--monthly")
    assert monthly.returncode == 0, monthly.stderr
    trend = pd.read_csv(next((reports / "review-monthly").glob("*/nps_trend.csv")))
    last = trend[(trend["segment"] == "(all)")].sort_values("month").iloc[-1]
    month = answers[answers["responded_at"].dt.strftime("%Y-%m") == last["month"]]
    month = month[month["responded_at"] <= end]
    cats = month["score"].map(nps_category)
    assert last["answers"] == len(month)
    expected = 100 * ((cats == "promoter").mean() - (cats == "detractor").mean())
    assert last["nps"] == pytest.approx(expected, abs=0.05)
    assert {"plan_tier", "region"} <= set(trend["segment"])
    top = pd.read_csv(next((reports / "review-monthly").glob("*/top_detractor_themes.csv")))
    assert 0 < len(top) <= 3

    quarterly = run("review", str(demo_path), "--quarterly")
    assert quarterly.returncode == 0, quarterly.stderr
    table = pd.read_csv(next((reports / "review-quarterly").glob("*/nps_and_revenue.csv")))
    groups = table.set_index("group")
    assert list(groups.index) == [
        "promoter",
        "passive",
        "detractor",
        "respondent",
        "non-respondent",
        "detractor, followed up",
        "detractor, not followed up",
    ]
    parts = groups.loc[["promoter", "passive", "detractor"], "customers"].sum()
    assert parts == groups.loc["respondent", "customers"]
    assert (
        groups.loc["detractor, followed up", "customers"]
        + groups.loc["detractor, not followed up", "customers"]
        == groups.loc["detractor", "customers"]
    )
    ok = groups.dropna(subset=["retention"])
    assert ((ok["low"] <= ok["retention"]) & (ok["retention"] <= ok["high"])).all()
    # promoters are retained more than detractors in the demo's world
    assert groups.loc["promoter", "retention"] > groups.loc["detractor", "retention"]


def _event_columns(demo_data):
    from features.contract import TABLES

    for name, frame in demo_data.tables.items():
        column = TABLES[name].time_column if name in TABLES else None
        if name != "customers" and column and len(frame):
            yield frame, column
