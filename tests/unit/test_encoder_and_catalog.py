import numpy as np
import pandas as pd
import pytest

from features.catalog import describe_feature, risk_direction
from training.models import OTHER, FeatureEncoder


def test_encoder_codes_categories_and_tolerates_missing_and_unseen():
    train = pd.DataFrame({"seats": [1, 2, 3, 4], "tier": ["a", "a", "b", "c"]})
    enc = FeatureEncoder(["seats", "tier", "absent"], ["tier"], max_categories=3).fit(train)
    assert enc.categories_["tier"] == ["a", "b", OTHER]  # 'c' is rarer than the cap allows
    X = enc.transform(pd.DataFrame({"tier": ["b", "zzz", None], "seats": ["5", None, 7]}))
    assert X[0].tolist()[:2] == [5.0, 1.0]
    assert X[1, 1] == 2.0  # unseen -> other
    assert np.isnan(X[2, 1]) and np.isnan(X[:, 2]).all()  # missing value, missing column


def test_record_fast_path_matches_the_frame_path():
    train = pd.DataFrame({"x": [1.0, 2.0], "tier": ["a", "b"]})
    enc = FeatureEncoder(["x", "tier"], ["tier"]).fit(train)
    records = [{"x": 3, "tier": "b", "ignored": 1}, {"tier": None}, {"x": "oops"}]
    np.testing.assert_array_equal(
        enc.transform_records(records),
        enc.transform(pd.DataFrame(records)),
    )


def test_column_path_matches_the_frame_path_without_pandas_objects():
    # A feature store's columns as FeatureStore reads them: floats with NaN, text with None.
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "tier": ["a", "b", "c"], "n": [1, 2, 3]})
    enc = FeatureEncoder(["x", "tier", "n", "absent"], ["tier"], max_categories=2).fit(train)
    columns = {
        "x": np.array([0.5, np.nan, 7.0, 1e9]),
        "tier": np.array(["a", None, "zzz", OTHER], dtype=object),
        "n": np.array([4, 5, 6, 7]),
    }
    got = enc.transform_columns(columns, 4)
    np.testing.assert_array_equal(got, enc.transform(pd.DataFrame(columns)))
    assert np.isnan(got[1, 1]) and got[2, 1] == enc.codes_["tier"][OTHER]
    # A numeric feature held as text is parsed as the frame path parses it.
    texts = {**columns, "x": np.array(["1.5", None, "bad", "2"], dtype=object)}
    np.testing.assert_array_equal(
        enc.transform_columns(texts, 4), enc.transform(pd.DataFrame(texts))
    )


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("tickets_open", 4, "4 open tickets right now"),
        ("tickets_open", 1, "1 open ticket right now"),
        ("usage_logins_trend", -0.6, "logins down 60% versus the prior period"),
        ("usage_active_users_trend", 0.25, "active users up 25% versus the prior period"),
        (
            "usage_reports_created_30d",
            2.5,
            "reports created averaged 2.5 a day over the last 30 days",
        ),
        ("usage_logins_days_since_active", 12.4, "last login 12 days ago"),
        ("tickets_csat_last", 2, "last support CSAT rating was 2/5"),
        ("nps_last_score", None, "never answered an NPS survey"),
        ("nps_trend", -3, "last NPS answer 3.0 points below earlier ones"),
        ("tenure_days", 365, "customer for 12 months"),
        ("plan_tier", "enterprise", "on the enterprise plan"),
        ("seats", 25.0, "25 seats"),
        ("chat_conversations_30d", 3, "3 support chats in the last 30 days"),
        (
            "text_negative_onboarding_30d",
            2,
            "2 negative messages about onboarding in the last 30 days",
        ),
        (
            "text_mean_score_90d",
            6.44,
            "the customer's messages of the last 90 days read like an NPS of 6.4",
        ),
    ],
)
def test_driver_descriptions_are_written_for_feature_definitions(name, value, text):
    assert describe_feature(name, value) == text


def test_risk_directions():
    assert risk_direction("tickets_open") == 1
    assert risk_direction("usage_whatever_metric_30d") == -1
    assert risk_direction("usage_whatever_metric_drop") == 1
    assert risk_direction("plan_tier") == 0
