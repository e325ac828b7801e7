"""Text features stay on only where they do not hurt: the decision rule and the plan change."""

import math

from features.attributes import AttributeSchema
from features.build import FeaturePlan
from npsrisk.settings import FeatureSettings
from training.text_selection import hurt_heads, without_text


def test_a_head_is_hurt_only_beyond_the_tolerance():
    assert hurt_heads({"churn": -0.001, "nps": 0.01}, 0.002) == []
    assert hurt_heads({"churn": -0.003, "nps": 0.01}, 0.002) == ["churn"]
    assert hurt_heads({"churn": 0.004, "nps": -0.02}, 0.002) == ["nps"]
    assert hurt_heads({"churn": math.nan, "nps": 0.0}, 0.0) == []  # nothing measured


def test_dropping_text_removes_every_text_feature_and_nothing_else():
    plan = FeaturePlan(
        FeatureSettings(),
        ["tickets", "chats"],
        {},
        AttributeSchema(numeric=[], boolean=[], categorical=[]),
        text_themes={"budget_cuts": "budget cuts", "support_experience": "support"},
        text_intents=["budget_cuts"],
    )
    names = plan.feature_names
    assert (
        "text_intent_budget_cuts_90d" in names and "text_negative_support_experience_30d" in names
    )
    plain = without_text(plan)
    assert not plain.text_themes and not plain.text_intents
    assert plain.feature_names == [n for n in names if not n.startswith("text_")]
    assert plan.text_intents == ["budget_cuts"]  # the original plan is unchanged
