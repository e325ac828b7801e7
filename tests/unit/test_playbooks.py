"""Playbook loading (errors name the key) and choice, case by case."""

from __future__ import annotations

import pytest

from interventions.playbooks import (
    PlaybookError,
    Situation,
    adverse_drivers,
    choose_playbook,
    load_playbooks,
    parse_playbooks,
    recent_themes,
    situation_of,
)

DEFAULTS = load_playbooks()


def situation(**kw) -> Situation:
    base = dict(
        customer_id="C-1",
        risk_tier="low",
        nps_category="promoter",
        detractor_probability=0.05,
        churn_probability=0.02,
        mrr=100.0,
    )
    return Situation(**{**base, **kw})


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # billing complaints -> billing review
        (dict(risk_tier="medium", themes=("pricing_billing_value",)), "billing_review"),
        (
            dict(
                nps_category="detractor",
                detractor_probability=0.55,
                adverse_drivers=("text_negative_pricing_billing_value_30d",),
            ),
            "billing_review",
        ),
        # falling usage -> adoption session (any metric name: matched by pattern)
        (
            dict(risk_tier="medium", adverse_drivers=("usage_widgets_built_trend",)),
            "adoption_session",
        ),
        (dict(risk_tier="high", adverse_drivers=("usage_logins_drop",)), "adoption_session"),
        # urgent ticket backlog -> support escalation, and it outranks billing
        (
            dict(risk_tier="high", adverse_drivers=("tickets_high_priority_open",)),
            "support_escalation",
        ),
        (
            dict(
                risk_tier="high",
                adverse_drivers=("tickets_open",),
                themes=("pricing_billing_value",),
            ),
            "support_escalation",
        ),
        # a passive drifting down -> value review
        (
            dict(nps_category="passive", detractor_probability=0.3, adverse_drivers=("nps_trend",)),
            "value_review",
        ),
        # competitors mentioned
        (dict(risk_tier="medium", themes=("competitors",)), "competitive_save"),
        # high risk without evidence -> a check-in
        (dict(risk_tier="high"), "check_in"),
        (dict(detractor_probability=0.7, nps_category="detractor"), "check_in"),
        # no risk, or evidence without risk -> nothing
        (dict(), None),
        (dict(themes=("pricing_billing_value",)), None),
        (dict(risk_tier="medium"), None),
        # a passive whose drivers are not about NPS history is not a value review
        (dict(nps_category="passive", detractor_probability=0.3, adverse_drivers=("seats",)), None),
        # a model without NPS: tier only
        (
            dict(
                nps_category=None,
                detractor_probability=None,
                risk_tier="medium",
                themes=("competitors",),
            ),
            "competitive_save",
        ),
    ],
)
def test_choose_playbook(case, expected):
    choice = choose_playbook(situation(**case), DEFAULTS)
    assert (choice.playbook.id if choice else None) == expected


def test_choice_reports_its_evidence():
    s = situation(
        risk_tier="high",
        adverse_drivers=("tickets_open", "usage_logins_trend", "tickets_reopened_30d"),
    )
    choice = choose_playbook(s, DEFAULTS)
    assert choice.playbook.id == "support_escalation"
    assert choice.drivers == ("tickets_open", "tickets_reopened_30d")


def test_priority_then_file_order():
    books = parse_playbooks(
        {
            "playbooks": [
                {"id": "a", "action": "x", "owner_role": "r", "priority": "normal", "when": {}},
                {"id": "b", "action": "x", "owner_role": "r", "priority": "high", "when": {}},
                {"id": "c", "action": "x", "owner_role": "r", "priority": "high", "when": {}},
            ]
        }
    )
    assert choose_playbook(situation(), books).playbook.id == "b"


def test_revenue_at_risk_condition():
    books = parse_playbooks(
        {
            "playbooks": [
                {
                    "id": "big",
                    "action": "x",
                    "owner_role": "r",
                    "when": {"min_revenue_at_risk": 500},
                }
            ]
        }
    )
    assert choose_playbook(situation(mrr=10_000.0, churn_probability=0.06), books) is not None
    assert choose_playbook(situation(mrr=10_000.0, churn_probability=0.04), books) is None
    assert choose_playbook(situation(mrr=None, churn_probability=0.9), books) is None


@pytest.mark.parametrize(
    ("document", "names"),
    [
        (
            {
                "playbooks": [
                    {"id": "x", "action": "a", "owner_role": "r", "when": {"min_tier": "huge"}}
                ]
            },
            "playbooks[0] (x).when[0].min_tier",
        ),
        (
            {"playbooks": [{"id": "x", "action": "a", "owner_role": "r", "when": {}, "due": 3}]},
            "playbooks[0] (x).due",
        ),
        ({"playbooks": [{"id": "x", "action": "a", "when": {}}]}, "playbooks[0] (x).owner_role"),
        (
            {
                "playbooks": [
                    {"id": "x", "action": "a", "owner_role": "r", "priority": "asap", "when": {}}
                ]
            },
            "playbooks[0] (x).priority",
        ),
        (
            {
                "playbooks": [
                    {
                        "id": "x",
                        "action": "a",
                        "owner_role": "r",
                        "when": {"min_detractor_probability": 2},
                    }
                ]
            },
            "min_detractor_probability",
        ),
        ({"playbooks": []}, "playbooks"),
        ({"books": []}, "books"),
    ],
)
def test_bad_files_name_the_key(document, names):
    with pytest.raises(PlaybookError) as err:
        parse_playbooks(document, "my.yaml")
    assert names in str(err.value)
    assert str(err.value).startswith("my.yaml:")


def test_duplicate_ids_and_missing_file(tmp_path):
    one = {"id": "x", "action": "a", "owner_role": "r", "when": {}}
    with pytest.raises(PlaybookError, match="used twice"):
        parse_playbooks({"playbooks": [one, one]})
    with pytest.raises(PlaybookError, match=r"interventions\.playbooks_path"):
        load_playbooks(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("playbooks: [\n")
    with pytest.raises(PlaybookError, match="not valid YAML"):
        load_playbooks(bad)


def test_situation_from_a_prediction():
    prediction = {
        "customer_id": "C-9",
        "churn_probability": 0.4,
        "nps_category": "detractor",
        "category_probabilities": {"detractor": 0.6, "passive": 0.3, "promoter": 0.1},
        "risk_tier": "high",
        "drivers": [
            {"feature": "tickets_open", "contribution": 0.3, "target": "churn"},
            {"feature": "tenure_days", "contribution": -0.2, "target": "churn"},
            {"feature": "usage_logins_trend", "contribution": -0.8, "target": "nps"},
            {"feature": "nps_last_score", "contribution": 0.5, "target": "nps"},
        ],
    }
    s = situation_of(prediction, 1000.0, ("competitors",))
    assert s.adverse_drivers == ("tickets_open", "usage_logins_trend")
    assert s.revenue_at_risk == pytest.approx(400.0)
    assert adverse_drivers([]) == ()


def test_recent_themes_use_the_shortest_window():
    values = {
        "text_negative_competitors_30d": 0,
        "text_negative_competitors_90d": 2,
        "text_negative_pricing_billing_value_30d": 1,
        "text_negative_share_30d": 0.9,
    }
    themes = ("competitors", "pricing_billing_value")
    assert recent_themes(values, themes) == ("pricing_billing_value",)


# --- segment playbooks (planned from a segment.dropped forecast) ----------------------------

SEGMENT_DOC = {
    "version": 1,
    "playbooks": [{"id": "p", "action": "a", "owner_role": "csm", "when": {"min_tier": "high"}}],
    "segment_playbooks": [
        {
            "id": "enterprise_exec_review",
            "action": "exec review",
            "owner_role": "vp_success",
            "owner": "vp@example.com",
            "priority": "urgent",
            "when": {"columns": ["plan_tier"], "values": ["enterprise"]},
        },
        {
            "id": "segment_review",
            "action": "review",
            "owner_role": "customer_success_lead",
            "priority": "high",
            "when": {"min_drop_points": 5},
        },
    ],
}


def dropped(column="region", value="emea", drop=6.0):
    return {
        "column": column,
        "value": value,
        "forecast_nps": 10.0,
        "last_measured_nps": 10.0 + drop,
        "drop": drop,
    }


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        (dropped("plan_tier", "enterprise", 1.0), "enterprise_exec_review"),  # any drop
        (dropped("plan_tier", "enterprise", 9.0), "enterprise_exec_review"),  # urgent first
        (dropped("plan_tier", "pro", 6.0), "segment_review"),
        (dropped("region", "emea", 5.0), "segment_review"),  # at the threshold
        (dropped("region", "emea", 4.9), None),  # below it, and not enterprise
    ],
)
def test_choose_segment_playbook(segment, expected):
    from interventions.playbooks import choose_segment_playbook, parse_playbook_file

    playbooks = parse_playbook_file(SEGMENT_DOC).segment_playbooks
    chosen = choose_segment_playbook(segment, playbooks)
    assert (chosen.id if chosen else None) == expected


def test_segment_playbooks_ship_and_errors_name_the_key():
    from interventions.playbooks import load_segment_playbooks, parse_playbook_file

    shipped = load_segment_playbooks()
    assert [p.id for p in shipped] == ["segment_review"]
    bad = {**SEGMENT_DOC, "segment_playbooks": [{**SEGMENT_DOC["segment_playbooks"][1]}]}
    bad["segment_playbooks"][0]["when"] = {"min_drop_points": -1}
    with pytest.raises(PlaybookError, match=r"segment_playbooks\[0\] \(segment_review\)\.when"):
        parse_playbook_file(bad)


def test_plan_segments_due_before_the_survey_and_owner_from_the_segment_rule():
    from datetime import date

    from interventions.owners import OwnerDirectory, _SegmentRule
    from interventions.planning import plan_segments
    from interventions.playbooks import parse_playbook_file

    playbooks = parse_playbook_file(SEGMENT_DOC).segment_playbooks
    directory = OwnerDirectory(segments=(_SegmentRule(column="region", value="emea", owner="eva"),))
    plans = plan_segments(
        [dropped("region", "emea", 8.0), dropped("region", "apac", 1.0)],
        playbooks,
        directory.owner_of,
        planned_on=date(2025, 7, 1),
        survey_date=date(2025, 7, 6),
        lead_time_days=4,
    )
    assert [p.key for p in plans] == ["segment:region=emea"]  # apac: no playbook covers it
    (plan,) = plans
    assert plan.owner == "eva" and plan.playbook == "segment_review"
    assert plan.due_date == date(2025, 7, 2) and not plan.too_soon  # 3 days capped by lead time
    assert "down 8.0 points" in plan.why[0]
