"""The steps before the features (window, as-of dates, labels, feature plan) read the event
tables only through their row counts, time spans and usage rows per metric: a copy holding the
per-customer tables and summaries of the rest, as the Spark engine gives the driver, yields
what the full tables yield."""

import pandas as pd
import pytest

from features.build import TEXT_SIGNALS, plan_features
from features.validation import TableSummary, ValidatedTables
from npsrisk.settings import DataSettings, FeatureSettings, TrainingSettings
from training.snapshots import build_snapshots, choose_as_of_dates, data_window

ON_CLUSTER = ("usage", "tickets", "chats")


@pytest.fixture
def full(validate_frames) -> ValidatedTables:
    days = pd.date_range("2024-01-01", "2024-12-31", freq="D")
    usage = pd.concat(
        [
            pd.DataFrame({"customer_id": "A", "timestamp": days, "metric": "logins", "value": 1.0}),
            pd.DataFrame(
                {"customer_id": "B", "timestamp": days[::7], "metric": "API calls", "value": 2.0}
            ),
        ]
    )
    return validate_frames(
        {
            "customers": pd.DataFrame(
                {
                    "customer_id": ["A", "B", "C"],
                    "signup_date": ["2023-06-01", "2023-07-01", "2024-02-01"],
                    "plan_tier": ["pro", "starter", "pro"],
                    "seats": [10, 3, 5],
                }
            ),
            "churn": pd.DataFrame({"customer_id": ["C"], "churned_at": ["2024-08-15"]}),
            "nps_responses": pd.DataFrame(
                {
                    "customer_id": ["A", "B"],
                    "responded_at": ["2024-05-02", "2024-07-20"],
                    "score": [9, 4],
                }
            ),
            "usage": usage,
            "tickets": pd.DataFrame(
                {"ticket_id": ["T1"], "customer_id": ["B"], "created_at": ["2024-03-05"]}
            ),
        }
    )


def summarised(full: ValidatedTables) -> ValidatedTables:
    """The per-customer tables as they are, the others as the cluster summarises them."""
    summaries = {}
    for name in ON_CLUSTER:
        if not full.has(name):
            continue
        frame = full[name]
        column = {"usage": "timestamp", "tickets": "created_at", "chats": "sent_at"}[name]
        summaries[name] = TableSummary(len(frame), frame[column].min(), frame[column].max())
    summaries["usage"].metric_rows = pd.Series({"logins": 366, "API calls": 53})
    frames = {k: v for k, v in full.frames.items() if k not in ON_CLUSTER}
    return ValidatedTables(frames, {}, full.report, summaries=summaries)


def test_window_as_of_dates_and_labels_come_out_the_same(full):
    driver = summarised(full)
    assert not driver.has("usage") and driver.rows("usage") == 366 + 53
    # The window's end is usage's last day, known only from its summary.
    window = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31")
    assert data_window(driver) == data_window(full) == window
    dates, notes = choose_as_of_dates(driver, TrainingSettings(), horizon_days=90)
    assert (dates, notes) == choose_as_of_dates(full, TrainingSettings(), horizon_days=90)
    pd.testing.assert_frame_equal(
        build_snapshots(driver, dates, 90), build_snapshots(full, dates, 90)
    )


@pytest.mark.parametrize("texts", [0, 4])
def test_the_feature_plan_comes_out_the_same(full, texts):
    themes = {"billing": "Billing", "bugs": "Bugs"}
    driver = summarised(full)
    driver.summaries[TEXT_SIGNALS] = TableSummary(texts)
    full.derived[TEXT_SIGNALS] = pd.DataFrame({"customer_id": ["A"] * texts})
    settings = FeatureSettings(), DataSettings()
    plan, notes = plan_features(driver, *settings, themes)
    expected, expected_notes = plan_features(full, *settings, themes)
    assert plan.to_dict() == expected.to_dict() and notes == expected_notes
    assert plan.tables == ["usage", "tickets", "nps_responses"]
    assert plan.metrics == {"api_calls": ["API calls"], "logins": ["logins"]}
    assert bool(plan.text_themes) == bool(texts)
