"""The feature catalogue: words per feature kind, learned ranges, record checks, schema."""

import json

import numpy as np
import pandas as pd
import pytest

from features.attributes import AttributeSchema
from features.build import FeaturePlan
from features.catalog import (
    FeatureCatalog,
    check_records,
    describe_feature,
    learn_catalog,
    plausible_range,
)
from npsrisk.settings import FeatureSettings


@pytest.mark.parametrize(
    ("name", "value", "kind", "text"),
    [
        ("annual_contract", 1.0, "boolean", "on an annual contract"),
        ("annual_contract", 0.0, "boolean", "not on an annual contract"),
        ("annual_contract", True, None, "on an annual contract"),
        ("mrr", 20029.4, None, "MRR of 20,029"),
        ("seats", 161.0, None, "161 seats"),
        ("seats", 1.0, None, "1 seat"),
        ("region", "na", None, "region: NA"),
        ("region", "emea", None, "region: EMEA"),
        ("plan_tier", "pro", None, "on the pro plan"),
        ("industry", "retail", None, "industry: retail"),
        ("acquisition_channel", "partner", None, "acquisition channel: partner"),
        ("is_partner", 1.0, "boolean", "partner"),
        ("is_partner", 0.0, "boolean", "not partner"),
        ("has_sso", 1.0, "boolean", "has SSO"),
        ("newsletter", 0.0, "boolean", "newsletter: no"),
        ("employees", 50.0, None, "employees: 50"),
        ("usage_logins_days_since_active", 4.0, None, "last login 4 days ago"),
        ("usage_logins_days_since_active", 0.0, None, "last login today"),
        ("usage_api_calls_days_since_active", 1.0, None, "last API call yesterday"),
        ("usage_reports_created_days_since_active", 9.0, None, "last report created 9 days ago"),
        (
            "usage_logins_days_since_active",
            None,
            None,
            "no logins recorded in the last 180 days",
        ),
        ("usage_logins_trend", None, None, "no logins in the prior 60 days to compare with"),
        ("tenure_days", 20.0, None, "customer for 20 days"),
        ("tenure_days", 1500.0, None, "customer for 4.1 years"),
        ("tickets_days_since_last", 3.0, None, "last ticket 3 days ago"),
        ("tickets_open", None, None, "open tickets unknown (no ticket data)"),
        (
            "usage_active_users_90d_per_seat",
            0.041666,
            None,
            "active users averaged 0.042 a day per seat over the last 90 days",
        ),
        (
            "usage_reports_created_90d_per_mrr",
            0.0000312,
            None,
            "reports created averaged 0.031 a day per 1,000 of MRR over the last 90 days",
        ),
        ("seats", None, None, "number of seats unknown"),
        ("region", None, "category", "region unknown"),
        (
            "text_negative_share_30d",
            None,
            None,
            "no messages from the customer in the last 30 days",
        ),
    ],
)
def test_driver_descriptions_read_like_a_person_wrote_them(name, value, kind, text):
    assert describe_feature(name, value, kind=kind) == text


def test_no_description_is_a_bare_no_data():
    names = [
        "tenure_days", "usage_logins_7d", "usage_logins_drop", "tickets_30d", "tickets_csat_90d",
        "chat_conversations_30d", "nps_mean", "text_messages_30d", "text_negative_billing_30d",
        "seats", "mrr", "whatever_attribute",
    ]  # fmt: skip
    for name in names:
        text = describe_feature(name, None)
        assert text != "no data" and len(text.split()) >= 2, (name, text)


def _plan() -> FeaturePlan:
    attributes = AttributeSchema(
        numeric=["seats", "mrr"], boolean=["annual_contract"], categorical=["plan_tier", "region"]
    )
    return FeaturePlan(FeatureSettings(), ["tickets", "usage"], {"logins": ["logins"]}, attributes)


def _frame(plan: FeaturePlan) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({name: rng.uniform(0, 10, n) for name in plan.feature_names})
    frame["tenure_days"] = rng.uniform(30, 2900, n)
    frame["seats"] = rng.integers(1, 800, n).astype(float)
    frame["tickets_open"] = rng.integers(0, 13, n).astype(float)
    frame["plan_tier"] = rng.choice(["starter", "pro", "enterprise"], n)
    frame["region"] = rng.choice(["na", "emea"], n)
    frame["annual_contract"] = rng.integers(0, 2, n).astype(float)
    frame.loc[0, "region"] = None
    return frame


@pytest.fixture(scope="module")
def catalog() -> FeatureCatalog:
    plan = _plan()
    return learn_catalog(plan, _frame(plan))


def test_catalog_learns_types_ranges_and_categories(catalog):
    assert catalog.names == _plan().feature_names
    assert catalog["plan_tier"].kind == "category"
    assert catalog["plan_tier"].categories == ("enterprise", "pro", "starter")
    assert catalog["region"].categories == ("emea", "na")
    assert catalog["annual_contract"].kind == "boolean"
    seats = catalog["seats"]
    assert seats.kind == "number" and seats.integer and seats.minimum == 0
    assert seats.maximum >= 4 * seats.observed[1]  # widened, not the raw max
    tenure = catalog["tenure_days"]
    assert tenure.minimum == 0 and 10_000 <= tenure.maximum <= 13_000
    assert catalog["tickets_open"].minimum == 0 and catalog["tickets_open"].maximum == 48
    # Intrinsic bounds win over what the data saw: a share, a score, a bounded look-back.
    assert catalog["usage_logins_days_since_active"].maximum == 40  # seen up to 10
    assert catalog["tickets_csat_90d"].minimum == 1 and catalog["tickets_csat_90d"].maximum == 5
    assert catalog["usage_logins_drop"].kind == "boolean"
    assert catalog["usage_logins_trend"].minimum == -1
    assert catalog["tickets_open"].risk_direction == 1
    assert catalog["tickets_open"].unit == "tickets"
    assert "open" in catalog["tickets_open"].description.lower()


def test_plausible_range_widens_and_respects_intrinsic_bounds():
    assert plausible_range(0, 12, 0.0, None, True) == (0, 48)
    assert plausible_range(30, 2900, 0.0, None, False) == (0, 12000)
    assert plausible_range(-0.9, 2.0, -1.0, None, False) == (-1, 11)  # 2 + 3 * 2.9, rounded up


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"tenure_days": 1e308}, "tenure_days", "out of range"),
        ({"tickets_open": -1}, "tickets_open", "from 0 to 48"),
        ({"tickets_open": 2.5}, "tickets_open", "whole number"),
        ({"seats": float("inf")}, "seats", "finite"),
        ({"seats": 10**400}, "seats", "finite"),
        ({"seats": "many"}, "seats", "not a number"),
        ({"seats": True}, "seats", "not a number"),
        ({"plan_tier": "platinum"}, "plan_tier", "'enterprise', 'pro', 'starter'"),
        ({"plan_tier": "Enterprise"}, "plan_tier", "not a known plan tier"),
        ({"annual_contract": 2}, "annual_contract", "true, false, 0 or 1"),
        ({"tickets_opn": 1}, "tickets_opn", "not a feature"),
        ({"customer_id": 12.0}, "customer_id", "not a string"),
    ],
)
def test_bad_record_values_name_the_feature_and_what_is_accepted(catalog, record, field, words):
    _, problems = check_records(catalog, [{"tickets_open": 1}, record])
    assert len(problems) == 1
    assert problems[0].field == f"records[1].{field}"
    assert words in str(problems[0])
    assert problems[0].code == ("unknown_feature" if field == "tickets_opn" else "invalid_value")


def test_good_records_pass_cleaned(catalog):
    record = {
        "customer_id": "what-if",
        "plan_tier": "pro",
        "annual_contract": True,
        "tickets_open": 4,
        "tenure_days": None,
        "seats": 3000,
    }
    clean, problems = check_records(catalog, [record])
    assert problems == []
    assert clean[0] == {**record, "annual_contract": 1.0, "tickets_open": 4.0, "seats": 3000.0}


def test_record_schema_lists_every_feature_with_bounds_and_nothing_else(catalog):
    schema = catalog.record_schema()
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert set(props) == {"customer_id", *catalog.names}
    assert props["tickets_open"]["type"] == ["integer", "null"]
    assert props["tickets_open"]["minimum"] == 0 and props["tickets_open"]["maximum"] == 48
    assert props["plan_tier"]["enum"] == ["enterprise", "pro", "starter", None]
    assert props["annual_contract"]["enum"] == [False, True, 0, 1, None]
    json.dumps(schema)  # plain JSON, no numpy or non-finite values


def test_catalog_round_trips_and_describes_with_the_plans_words(catalog):
    again = FeatureCatalog.from_dict(json.loads(json.dumps(catalog.to_dict())))
    assert again == catalog
    assert again.describe("region", "na") == "region: NA"
    assert again.describe("annual_contract", 1.0) == "on an annual contract"
    assert again.describe("usage_logins_days_since_active", float("nan")) == (
        "no logins recorded in the last 180 days"
    )


@pytest.mark.parametrize("version, short, long, prior", [(3, 28, 84, 56), (2, 30, 90, 60)])
def test_usage_descriptions_name_the_days_the_window_covers(version, short, long, prior):
    """From plan version 3 a usage window is cut to whole weeks (usage_logins_30d sums 28
    days), and every sentence about it says the days it sums; ticket windows are not cut."""
    plan = _plan()
    plan.version = version
    catalog = learn_catalog(plan)
    assert f"last {short} days" in catalog["usage_logins_30d"].description
    assert catalog.describe("usage_logins_30d", 2.5) == (
        f"logins averaged 2.5 a day over the last {short} days"
    )
    assert catalog.describe("usage_logins_90d", float("nan")) == (
        f"no logins recorded in the last {long} days"
    )
    assert catalog.describe("usage_logins_trend", None) == (
        f"no logins in the prior {prior} days to compare with"
    )
    if version >= 2:
        assert catalog.describe("usage_logins_90d_per_seat", 0.042) == (
            f"logins averaged 0.042 a day per seat over the last {long} days"
        )
    assert catalog.describe("tickets_30d", 3) == "3 tickets in the last 30 days"
    # A catalogue shipped before these words existed still describes (its own periods).
    old = catalog.to_dict()
    for key in ("whole_weeks", "usage_recent_days", "usage_prior_days"):
        old["context"].pop(key)
    assert FeatureCatalog.from_dict(old).describe("usage_logins_trend", None) == (
        "no logins in the prior 60 days to compare with"
    )


def test_catalog_without_training_frame_checks_intrinsic_bounds_only():
    catalog = learn_catalog(_plan())
    assert catalog["plan_tier"].categories is None
    assert catalog["usage_logins_days_since_active"].maximum == 180  # the look-back
    assert catalog["tickets_open"].minimum == 0 and catalog["tickets_open"].maximum is None
    _, problems = check_records(catalog, [{"plan_tier": "anything", "tickets_open": -3}])
    assert [p.field for p in problems] == ["records[0].tickets_open"]
