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
