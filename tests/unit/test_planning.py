"""Pre-survey planning: nobody is ever dropped, the control group, dedup, due dates, owners."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from interventions.owners import OwnerDirectory, load_owners
from interventions.planning import (
    ARM_CONTROL,
    ARM_OPEN,
    ARM_TREATMENT,
    ARM_UNKNOWN,
    CustomerContext,
    OpenIntervention,
    assign_control,
    due_date_for,
    plan_wave,
)
from interventions.playbooks import load_playbooks

PLAYBOOKS = load_playbooks()
TODAY = date(2025, 7, 1)


def prediction(cid: str, tier: str, p_det: float, drivers=()) -> dict:
    return {
        "customer_id": cid,
        "churn_probability": {"low": 0.05, "medium": 0.2, "high": 0.5}[tier],
        "nps_category": "detractor" if p_det > 0.5 else "passive",
        "category_probabilities": {"detractor": p_det, "passive": 1 - p_det, "promoter": 0.0},
        "risk_tier": tier,
        "drivers": [
            {"feature": f, "contribution": 0.2, "target": "churn", "description": f"{f} words"}
            for f in drivers
        ],
    }


def world(n: int, rng: np.random.Generator):
    tiers = rng.choice(["low", "medium", "high"], n, p=[0.5, 0.3, 0.2])
    preds, contexts = {}, {}
    for i, tier in enumerate(tiers):
        cid = f"C-{i:05d}"
        preds[cid] = prediction(cid, tier, float(rng.uniform(0, 1)), ("tickets_open",))
        contexts[cid] = CustomerContext(mrr=100.0, segments={"plan_tier": "pro"})
    return preds, contexts


def plan(schedule, preds, contexts, open_=None, seed=1, share=0.1, owners=None, lead=5):
    directory = owners or OwnerDirectory()
    return plan_wave(
        schedule,
        preds,
        contexts,
        PLAYBOOKS,
        open_ or {},
        directory.owner_of,
        planned_on=TODAY,
        control_share=share,
        seed=seed,
        lead_time_days=lead,
    )


def test_every_scheduled_customer_is_listed_in_order_never_suppressed():
    rng = np.random.default_rng(0)
    preds, contexts = world(300, rng)
    ids = [*preds, "NOT-A-CUSTOMER", "C-00003"]  # an unknown id and a duplicate
    survey = [date(2025, 7, 2) if i % 7 == 0 else date(2025, 7, 20) for i in range(len(ids))]
    open_ = {"C-00010": OpenIntervention("iv-1", "billing_review", "contacted")}
    result = plan(list(zip(ids, survey, strict=True)), preds, contexts, open_)
    assert [i.customer_id for i in result.items] == ids
    assert [i.survey_date for i in result.items] == survey  # never delayed
    assert not any(i.survey_suppressed for i in result.items)
    assert result.items[-2].arm == ARM_UNKNOWN and not result.items[-2].intervene
    # too soon to act: flagged and still planned, the survey untouched
    soon = [i for i in result.items if i.intervene and i.survey_date == date(2025, 7, 2)]
    assert soon and all(i.too_soon and i.due_date == TODAY for i in soon)
    late = [i for i in result.items if i.intervene and i.survey_date == date(2025, 7, 20)]
    assert late and all(not i.too_soon and i.due_date <= date(2025, 7, 15) for i in late)


def test_open_intervention_is_not_planned_twice():
    preds, contexts = world(50, np.random.default_rng(1))
    open_ = {cid: OpenIntervention(f"iv-{cid}", "check_in", "planned") for cid in list(preds)[:10]}
    result = plan([(c, date(2025, 7, 20)) for c in preds], preds, contexts, open_)
    for item in result.items[:10]:
        assert item.arm == ARM_OPEN and not item.intervene
        assert item.open_intervention_id == f"iv-{item.customer_id}"


def test_duplicate_schedule_row_plans_one_intervention():
    preds = {"A": prediction("A", "high", 0.8, ("tickets_open",))}
    result = plan([("A", date(2025, 7, 20)), ("A", date(2025, 7, 21))], preds, {}, share=0.0)
    assert len(result.items) == 2
    assert [i.intervene for i in result.items] == [True, False]


def test_control_share_is_honoured_per_tier_and_reproducible():
    tiers = {f"C{i}": ["low", "medium", "high"][i % 3] for i in range(3000)}
    arms = assign_control(tiers, 0.1, seed=7)
    for tier in ("low", "medium", "high"):
        members = [c for c, t in tiers.items() if t == tier]
        share = np.mean([arms[c] == ARM_CONTROL for c in members])
        assert share == pytest.approx(0.1, abs=0.001)  # exact count per tier
    assert assign_control(dict(reversed(tiers.items())), 0.1, seed=7) == arms  # order-free
    other = assign_control(tiers, 0.1, seed=8)
    assert other != arms
    # random: control members are not the first ids, and differ by seed
    control = sorted(c for c, a in arms.items() if a == ARM_CONTROL)
    assert control[:5] != sorted(tiers)[:5]


def test_fractional_control_share_is_unbiased_over_seeds():
    tiers = {f"C{i}": "high" for i in range(5)}
    shares = [
        np.mean([a == ARM_CONTROL for a in assign_control(tiers, 0.1, s).values()])
        for s in range(2000)
    ]
    assert np.mean(shares) == pytest.approx(0.1, abs=0.015)


def test_plan_records_seed_and_control_gets_no_outreach():
    preds, contexts = world(400, np.random.default_rng(2))
    schedule = [(c, date(2025, 7, 20)) for c in preds]
    a = plan(schedule, preds, contexts, seed=11)
    b = plan(schedule, preds, contexts, seed=11)
    assert a.seed == 11 and a.wave_id != b.wave_id  # a new wave, the same assignment
    assert [i.arm for i in a.items] == [i.arm for i in b.items]
    control = [i for i in a.items if i.arm == ARM_CONTROL]
    treated = [i for i in a.items if i.arm == ARM_TREATMENT]
    assert control and treated
    assert all(not i.intervene and i.playbook for i in control)  # would-be playbook kept
    assert all(i.intervene and i.owner_role for i in treated)
    assert len(control) / (len(control) + len(treated)) == pytest.approx(0.1, abs=0.03)


@pytest.mark.parametrize(
    ("survey", "due_days", "lead", "expected", "soon"),
    [
        (date(2025, 7, 30), 5, 5, date(2025, 7, 6), False),
        (date(2025, 7, 9), 5, 5, date(2025, 7, 4), False),  # pulled in to keep the lead time
        (date(2025, 7, 3), 5, 5, TODAY, True),
        (date(2025, 7, 1), 0, 0, TODAY, False),
    ],
)
def test_due_dates(survey, due_days, lead, expected, soon):
    assert due_date_for(TODAY, survey, due_days, lead) == (expected, soon)


def test_owner_resolution_order(tmp_path):
    path = tmp_path / "owners.yaml"
    path.write_text(
        "customers: {A: alice}\n"
        "segments:\n  - {column: plan_tier, value: enterprise, owner: ent-desk}\n"
        "  - {column: region, value: emea, role: support_lead, owner: emea-support}\n"
        "roles: {support_lead: lead}\n"
    )
    d = load_owners(path).with_account_owners({"A": "acct-a", "B": "acct-b", "C": "acct-c"})
    ent = CustomerContext(segments={"plan_tier": "enterprise", "region": "emea"})
    emea = CustomerContext(segments={"plan_tier": "pro", "region": "emea"})
    assert d.owner_of("A", "support_lead", ent) == "alice"
    assert d.owner_of("B", "support_lead", ent) == "ent-desk"
    assert d.owner_of("C", "support_lead", emea) == "emea-support"
    assert d.owner_of("C", "account_manager", emea) == "acct-c"
    assert d.owner_of("Z", "support_lead", CustomerContext()) == "lead"
    assert d.owner_of("Z", "account_manager", CustomerContext()) is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments: [{column: plan_tier}]\n")
    with pytest.raises(ValueError, match=r"segments\.0\.value"):
        load_owners(bad)
