"""The demo continued from a plan: pre-plan data unchanged, the plan's treated get the effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demo.generator import TRUTH_DIR, DemoConfig, make_demo
from demo.interventions import (
    INTERVENTION_TRUTH,
    NEXT_WAVE_SCHEDULE,
    PLAYBOOK_EFFECTS,
    demo_hooks,
    true_effects,
)

CFG = DemoConfig(customers=1200, seed=5, months=15)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    original = tmp_path_factory.mktemp("original")
    on_block, finish = demo_hooks(CFG, original)
    make_demo(CFG, original, on_block=on_block)
    finish()
    schedule = pd.read_csv(original / TRUTH_DIR / NEXT_WAVE_SCHEDULE, dtype=str)
    rng = np.random.default_rng(0)
    playbooks = np.array(list(PLAYBOOK_EFFECTS))
    plan = schedule.assign(
        arm=rng.choice(["treatment", "control", "none"], len(schedule), p=[0.5, 0.3, 0.2]),
        playbook=playbooks[rng.integers(0, len(playbooks), len(schedule))],
        nps_category=rng.choice(["detractor", "passive"], len(schedule)),
    )
    plan["due_date"] = (pd.Timestamp(CFG.end) + pd.Timedelta(days=1)).date().isoformat()
    plan_path = original / "plan.csv"
    plan.to_csv(plan_path, index=False)
    continued = tmp_path_factory.mktemp("continued")
    on_block, finish = demo_hooks(CFG, continued, plan_path)
    make_demo(CFG, continued, on_block=on_block)
    written = finish()
    return original, continued, plan, written


def test_the_schedule_is_the_next_wave(worlds):
    original, _, plan, _ = worlds
    dates = pd.to_datetime(plan["survey_date"])
    assert len(plan) > 100 and (dates >= pd.Timestamp(CFG.end)).all()
    customers = pd.read_parquet(original / "customers.parquet")
    assert set(plan["customer_id"]) <= set(customers["customer_id"])
    churned = pd.read_parquet(original / "churn.parquet")
    assert not set(plan["customer_id"]) & set(churned["customer_id"])


@pytest.mark.parametrize(
    "table", ["customers", "usage", "tickets", "chats", "nps_responses", "churn"]
)
def test_pre_plan_data_is_unchanged(worlds, table):
    original, continued, _, _ = worlds
    before = pd.read_parquet(original / f"{table}.parquet")
    after = pd.read_parquet(continued / f"{table}.parquet")
    pd.testing.assert_frame_equal(before, after.iloc[: len(before)])
    extra = after.iloc[len(before) :]
    if table in ("nps_responses", "churn"):
        column = "responded_at" if table == "nps_responses" else "churned_at"
        assert len(extra) and (extra[column] >= pd.Timestamp(CFG.end)).all()
    else:
        assert extra.empty


def test_treated_are_the_plans_and_effects_follow_the_playbook(worlds):
    _, continued, plan, written = worlds
    truth = pd.read_parquet(continued / TRUTH_DIR / INTERVENTION_TRUTH)
    assert written["intervention truth"].name == INTERVENTION_TRUTH
    by = truth.set_index("customer_id")
    arms = plan.set_index("customer_id")["arm"]
    assert (by["treated"] == (arms.loc[by.index] == "treatment")).all()
    assert (by.loc[~by["treated"], "effect"] == 0).all()
    treated = by[by["treated"]]
    expected = treated["playbook"].map(PLAYBOOK_EFFECTS)
    np.testing.assert_allclose(treated["effect"], expected)
    # the ineffective playbook and untreated customers: both potential outcomes coincide
    same = by[by["effect"] == 0]
    pd.testing.assert_series_equal(
        same["score_treated"], same["score_untreated"], check_names=False
    )
    answers = pd.read_parquet(continued / "nps_responses.parquet")
    new = answers[answers["responded_at"] >= pd.Timestamp(CFG.end)]
    assert set(new["customer_id"]) <= set(plan["customer_id"])
    effects = true_effects(truth).set_index("group")
    assert effects.loc["all", "nps_effect"] > 5  # effective playbooks dominate
    assert effects.loc["playbook=value_review", "nps_effect"] == 0
