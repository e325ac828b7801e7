"""The weekly and quarterly review tables on hand-written cases."""

from __future__ import annotations

import pandas as pd
import pytest

from interventions.review import quarterly_review, weekly_review

AS_OF = pd.Timestamp("2025-07-01")


def test_weekly_lists_detractors_with_follow_up_and_masks_contacts():
    responses = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "responded_at": pd.to_datetime(
                ["2025-06-28", "2025-06-30", "2025-06-01", "2025-06-29"]
            ),
            "score": [3, 5, 2, 9],
            "comment": ["mail me at x@y.com", None, "old", "great"],
            "theme_pricing_billing_value": [True, True, True, False],
        }
    )
    messages = pd.DataFrame(
        {
            "customer_id": ["a"],
            "timestamp": pd.to_datetime(["2025-06-30"]),
            "negative": [True],
            "theme_pricing_billing_value": [True],
        }
    )
    comments, themes = weekly_review(responses, messages, AS_OF, {"a": "ana"})
    assert comments["customer_id"].tolist() == ["b", "a"]  # newest first; c too old, d promoter
    assert comments.set_index("customer_id")["follow_up"].to_dict() == {
        "a": "ana",
        "b": "unassigned",
    }
    assert "x@y.com" not in " ".join(str(c) for c in comments["comment"])
    assert themes["theme"].tolist() == ["pricing_billing_value"]  # 2 comments + 1 message


def test_quarterly_retention_by_category_and_follow_up():
    customers = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "signup_date": pd.to_datetime(["2024-01-01"] * 6),
            "mrr": [100.0, 200, 300, 400, 500, 600],
        }
    )
    responses = pd.DataFrame(
        {
            "customer_id": list("abcd"),
            "responded_at": pd.to_datetime(["2025-03-01"] * 4),
            "score": [10, 8, 3, 2],
        }
    )
    churn = pd.DataFrame(
        {"customer_id": ["d", "f"], "churned_at": pd.to_datetime(["2025-05-01", "2025-01-01"])}
    )
    table = quarterly_review(responses, churn, customers, AS_OF, followed_up={"c"}, samples=100)
    by = table.set_index("group")
    assert by.loc["promoter", "retention"] == 1.0
    assert by.loc["detractor", "customers"] == 2 and by.loc["detractor", "retention"] == 0.5
    assert by.loc["detractor, followed up", "retention"] == 1.0
    assert by.loc["detractor, not followed up", "retention"] == 0.0
    assert by.loc["non-respondent", "customers"] == 1  # f left before the quarter
    assert by.loc["detractor", "retained_mrr_share"] == pytest.approx(300 / 700)
