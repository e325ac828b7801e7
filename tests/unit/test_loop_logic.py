"""Pure pieces of the closed loop: status transitions, at-risk ranking, forecast, outcomes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from interventions.at_risk import AtRiskQuery, AtRiskQueryError, rank_at_risk, scored_frame
from interventions.forecast import forecast_nps, measured_nps, simulate_nps
from interventions.outcomes import join_outcomes, outcome_report
from interventions.states import TRANSITIONS, TransitionError, check_transition


@pytest.mark.parametrize(
    ("current", "wanted", "ok"),
    [
        ("planned", "contacted", True),
        ("planned", "dismissed", True),
        ("contacted", "resolved", True),
        ("contacted", "dismissed", True),
        ("snoozed", "contacted", True),
        ("snoozed", "planned", True),
        ("planned", "resolved", False),  # must be contacted first
        ("resolved", "contacted", False),
        ("dismissed", "planned", False),
        ("contacted", "planned", False),
        ("planned", "planned", False),
        ("planned", "exploded", False),
    ],
)
def test_transitions(current, wanted, ok):
    if ok:
        assert check_transition(current, wanted, "ana").status == wanted
    else:
        with pytest.raises(TransitionError) as err:
            check_transition(current, wanted, "ana")
        assert err.value.allowed == TRANSITIONS.get(current, ())


def test_snooze_needs_date_and_reason_and_actor():
    today = date(2025, 7, 1)
    with pytest.raises(ValueError, match="snooze_until"):
        check_transition("planned", "snoozed", "ana", "on holiday", None, today)
    with pytest.raises(ValueError, match="after today"):
        check_transition("planned", "snoozed", "ana", "on holiday", today, today)
    with pytest.raises(ValueError, match="reason"):
        check_transition("planned", "snoozed", "ana", "", date(2025, 7, 9), today)
    with pytest.raises(ValueError, match="actor"):
        check_transition("planned", "contacted", " ")
    with pytest.raises(ValueError, match="only goes with"):
        check_transition("planned", "contacted", "ana", None, date(2025, 7, 9))
    change = check_transition("planned", "snoozed", "ana", "on holiday", date(2025, 7, 9), today)
    assert change.snooze_until == date(2025, 7, 9)


def _scored():
    return scored_frame(
        ["a", "b", "c", "d"],
        np.array([0.5, 0.1, 0.3, 0.05]),
        np.array([0.2, 0.9, 0.4, 0.1]),
        ["high", "low", "high", "low"],
        np.array([100.0, 5000.0, 1000.0, np.nan]),
        {"plan_tier": np.array(["pro", "enterprise", "pro", "starter"], dtype=object)},
    )


@pytest.mark.parametrize(
    ("query", "expected", "total"),
    [
        (AtRiskQuery(), ["a", "c", "b", "d"], 4),
        (AtRiskQuery(sort_by="detractor_probability"), ["b", "c", "a", "d"], 4),
        (AtRiskQuery(sort_by="revenue_at_risk"), ["b", "c", "a", "d"], 4),  # NaN MRR last
        (AtRiskQuery(min_tier="high"), ["a", "c"], 2),
        (AtRiskQuery(segments={"plan_tier": "pro,starter"}), ["a", "c", "d"], 3),
        (AtRiskQuery(offset=1, limit=2), ["c", "b"], 4),
        (AtRiskQuery(owner="ana"), ["a", "b"], 2),
        (AtRiskQuery(intervention_status="none"), ["c", "d"], 2),
        (AtRiskQuery(intervention_status="contacted"), ["a"], 1),
        (AtRiskQuery(newly_at_risk=True), ["c"], 1),
        (AtRiskQuery(descending=False), ["d", "b", "c", "a"], 4),
    ],
)
def test_rank_at_risk(query, expected, total):
    page, n = rank_at_risk(
        _scored(),
        query,
        owners={"a": "ana", "b": "ana", "c": "bo"},
        statuses={"a": "contacted", "b": "planned"},
        previous_tiers={"a": "high", "c": "low", "b": "low"},
        previous_churn={"a": 0.4, "c": 0.1},
    )
    changes = dict(zip(page["customer_id"], page["churn_change"], strict=True))
    if "a" in changes:
        assert changes["a"] == pytest.approx(0.1)
    if "d" in changes:
        assert np.isnan(changes["d"])  # not scored before
    assert page["customer_id"].tolist() == expected
    assert n == total
    assert page["rank"].tolist() == list(range(query.offset + 1, query.offset + 1 + len(page)))


@pytest.mark.parametrize(
    "query",
    [
        AtRiskQuery(sort_by="mrr"),
        AtRiskQuery(min_tier="extreme"),
        AtRiskQuery(segments={"country": "fr"}),
    ],
)
def test_bad_queries(query):
    with pytest.raises(AtRiskQueryError):
        rank_at_risk(_scored(), query)


def test_simulated_nps_matches_expectation_and_respects_response():
    rng = np.random.default_rng(0)
    n = 2000
    probs = np.tile([0.3, 0.3, 0.4], (n, 1))
    est = simulate_nps(probs, None, 400, 0.9, rng)
    assert est.nps == pytest.approx(10.0)
    assert est.low < 10.0 < est.high
    # unhappy customers answer more: the wave's NPS is below the base's
    probs = np.vstack([np.tile([0.8, 0.1, 0.1], (n, 1)), np.tile([0.1, 0.1, 0.8], (n, 1))])
    resp = np.r_[np.full(n, 0.6), np.full(n, 0.2)]
    wave = simulate_nps(probs, resp, 300, 0.9, rng)
    assert wave.nps == pytest.approx(100 * (0.6 * -0.7 + 0.2 * 0.7) / 0.8)
    assert wave.low <= wave.nps <= wave.high
    assert wave.expected_respondents == pytest.approx(0.8 * n)
    assert measured_nps(np.array([10, 9, 7, 3])) == pytest.approx(25.0)


def test_forecast_segments_and_drops():
    n = 1000
    wave = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "p_detractor": np.r_[np.full(n // 2, 0.7), np.full(n // 2, 0.1)],
            "p_passive": 0.2,
            "p_promoter": np.r_[np.full(n // 2, 0.1), np.full(n // 2, 0.7)],
            "region": ["emea"] * (n // 2) + ["na"] * (n // 2),
            "themes": [("pricing_billing_value",)] * (n // 2) + [()] * (n // 2),
        }
    )
    answers = pd.DataFrame(
        {"customer_id": ["x"] * 4, "score": [9, 9, 9, 3], "region": ["emea", "emea", "na", "na"]}
    )
    f = forecast_nps(
        wave, wave, answers, ["region"], samples=200, interval=0.9, seed=1, drop_points=5.0
    )
    assert f.wave.nps == pytest.approx(0.0)
    emea = next(s for s in f.segments if s["value"] == "emea")
    assert emea["wave"]["nps"] == pytest.approx(-60.0)
    assert f.pulling_down[0]["value"] == "emea"
    assert f.themes_pulling_down[0]["theme"] == "pricing_billing_value"
    assert [a["value"] for a in f.alerts] == ["emea"]  # 100 measured -> -60 forecast


def test_outcomes_join_and_report():
    assignments = pd.DataFrame(
        {
            "wave_id": "w",
            "customer_id": ["t1", "t2", "t3", "c1", "c2", "c3"],
            "arm": ["treatment"] * 3 + ["control"] * 3,
            "playbook": "billing_review",
            "planned_on": "2025-07-01",
            "predicted_category": "detractor",
        }
    )
    answers = pd.DataFrame(
        {
            "customer_id": ["t1", "t1", "t2", "c1", "c2", "t3"],
            "responded_at": [
                "2025-06-01",
                "2025-07-10",
                "2025-07-12",
                "2025-07-11",
                "2025-07-15",
                "2026-03-01",
            ],
            "score": [0, 9, 8, 3, 5, 10],
        }
    )
    churn = pd.DataFrame({"customer_id": ["c3"], "churned_at": ["2025-08-01"]})
    joined = join_outcomes(assignments, answers, churn, horizon_days=90)
    by = joined.set_index("customer_id")
    assert by.loc["t1", "score"] == 9  # the answer before planning is not an outcome
    assert not by.loc["t3", "answered"]  # beyond the horizon
    assert by.loc["c3", "churned"] and not by.loc["t1", "churned"]
    report = {(c.metric, c.group): c for c in outcome_report(joined, 200, 0.9)}
    conv = report[("detractor_conversion", "all")]
    assert conv.treated == 1.0 and conv.control == 0.0 and conv.difference == 1.0
    assert report[("churn_rate", "all")].difference == pytest.approx(-1 / 3)
    assert ("nps", "playbook=billing_review") in report
