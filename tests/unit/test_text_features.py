"""Text features per customer, point in time, for the shipped and a user-added theme."""

import numpy as np
import pandas as pd
import pytest

from features.build import attach_text_signals, build_features, plan_features
from text_analytics.sentiment import SatisfactionModel
from text_analytics.signals import TextScorer
from text_analytics.themes import load_taxonomy


@pytest.fixture(scope="module")
def scorer(demo_tables, tmp_path_factory):
    path = tmp_path_factory.mktemp("taxonomy") / "themes.yaml"
    path.write_text(
        "themes:\n"
        "  security:\n"
        "    label: security and compliance\n"
        "    description: Security reviews and audits.\n"
        "    seed_terms: [security review, audit log, gdpr]\n"
    )
    nps = demo_tables["nps_responses"]
    model = SatisfactionModel().fit(nps["comment"], nps["score"])
    return TextScorer(model, load_taxonomy(path))


def test_text_features_count_negative_messages_per_theme_in_time(validate_frames, settings, scorer):
    customers = pd.DataFrame({"customer_id": ["A", "B"], "signup_date": ["2024-01-01"] * 2})
    chats = pd.DataFrame(
        {
            "conversation_id": ["c1", "c2", "c3", "c4", "c5"],
            "customer_id": ["A", "A", "A", "A", "B"],
            "sent_at": ["2024-05-10", "2024-05-20", "2024-03-15", "2024-06-05", "2024-05-20"],
            "author": "customer",
            "text": [
                "your security review is a nightmare, the audit log is broken and useless",
                "terrible billing, we were double charged again, awful",
                "the gdpr audit log export is wrong and nobody helps, very disappointed",
                "the security review failed again, horrible",  # after the as-of date
                "love the product, great support",
            ],
        }
    )
    tables = validate_frames({"customers": customers, "chats": chats})
    attach_text_signals(tables, scorer)
    plan, _ = plan_features(tables, settings.features, settings.data, scorer.labels)
    assert "text_negative_security_30d" in plan.feature_names
    pairs = pd.DataFrame({"customer_id": ["A", "B"], "as_of": pd.Timestamp("2024-05-31")})
    rows = build_features(tables, pairs, plan).set_index("customer_id")
    a, b = rows.loc["A"], rows.loc["B"]
    assert a["text_messages_30d"] == 2 and a["text_messages_90d"] == 3
    assert a["text_negative_share_30d"] == 1.0
    assert a["text_negative_security_30d"] == 1  # the March message is outside the 30 days
    assert a["text_negative_pricing_billing_value_30d"] == 1
    assert a["text_worst_score_90d"] < 5
    assert a["text_worst_score_90d"] <= a["text_mean_score_90d"] < b["text_mean_score_90d"]
    assert b["text_negative_share_30d"] == 0.0 and b["text_negative_security_30d"] == 0
    assert np.isnan(b["text_negative_share_trend"])  # nothing in the prior period


def test_no_texts_means_no_text_features(validate_frames, settings, scorer):
    customers = pd.DataFrame({"customer_id": ["A"], "signup_date": ["2024-01-01"]})
    tables = validate_frames({"customers": customers})
    plan, notes = plan_features(tables, settings.features, settings.data, scorer.labels)
    assert not plan.text_themes
    assert any("text" in note for note in notes)


def test_stated_intents_become_their_own_point_in_time_features(validate_frames, settings, scorer):
    customers = pd.DataFrame({"customer_id": ["A", "B"], "signup_date": ["2024-01-01"] * 2})
    chats = pd.DataFrame(
        {
            "conversation_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "customer_id": ["A", "A", "A", "A", "B", "B"],
            "sent_at": [
                "2024-03-20",
                "2024-05-21",
                "2024-05-25",
                "2024-06-03",  # after the as-of date: never a feature
                "2024-05-20",
                "2024-05-22",
            ],
            "author": "customer",
            "text": [
                "we are reviewing our renewal with finance",
                "budget cuts are hitting our team",
                "we are evaluating another vendor",
                "we need to reduce our seats",
                "we are not evaluating other vendors",  # a denial: no intent
                "no budget cuts on our side this year",
            ],
        }
    )
    tables = validate_frames({"customers": customers, "chats": chats})
    attach_text_signals(tables, scorer)
    intents = scorer.taxonomy.intent_ids
    plan, _ = plan_features(tables, settings.features, settings.data, scorer.labels, intents)
    assert plan.text_intents == intents
    long = max(settings.features.windows_days)
    names = set(plan.feature_names)
    assert {f"text_intent_mentions_{long}d", "text_intent_days_since"} <= names
    assert {f"text_intent_{t}_{long}d" for t in intents} <= names
    # Intents have their own counts; no tone-filtered copy of them.
    assert not any(n.startswith("text_negative_budget_cuts") for n in names)
    pairs = pd.DataFrame({"customer_id": ["A", "B"], "as_of": pd.Timestamp("2024-05-31")})
    rows = build_features(tables, pairs, plan).set_index("customer_id")
    a, b = rows.loc["A"], rows.loc["B"]
    assert a[f"text_intent_mentions_{long}d"] == 3
    assert a[f"text_intent_budget_cuts_{long}d"] == 1
    assert a[f"text_intent_competitor_evaluation_{long}d"] == 1
    assert a[f"text_intent_renewal_review_{long}d"] == 1
    assert a[f"text_intent_downsizing_{long}d"] == 0  # written after the as-of date
    # Last intent on 2024-05-25 at midnight; the cut-off is the first second after 2024-05-31.
    assert a["text_intent_days_since"] == pytest.approx(7.0)
    assert b[f"text_intent_mentions_{long}d"] == 0
    assert np.isnan(b["text_intent_days_since"])
    # The plan survives its round trip, and every intent feature is in the catalogue in words.
    from features.build import FeaturePlan
    from features.catalog import learn_catalog

    assert FeaturePlan.from_dict(plan.to_dict()).text_intents == intents
    catalog = learn_catalog(plan)
    words = catalog.describe(f"text_intent_budget_cuts_{long}d", 2)
    assert words == f"2 messages about budget cuts in the last {long} days"
    assert "intent" in catalog.describe(f"text_intent_mentions_{long}d", 1)
    assert catalog.describe("text_intent_days_since", 7.0) == (
        "last stated an intent to leave, cut or review 7 days ago"
    )
