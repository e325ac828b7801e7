"""A row dated after the as-of date never reaches a feature."""

import numpy as np
import pandas as pd
import pytest

from features.build import attach_text_signals, build_features, plan_features
from features.validation import ValidatedTables
from text_analytics.sentiment import SatisfactionModel
from text_analytics.signals import TextScorer
from text_analytics.themes import load_taxonomy
from training.snapshots import active_customers


@pytest.fixture(scope="module")
def scorer(demo_tables) -> TextScorer:
    """One fixed text model: the same message always gets the same score."""
    nps = demo_tables["nps_responses"]
    return TextScorer(SatisfactionModel().fit(nps["comment"], nps["score"]), load_taxonomy())


def with_texts(tables: ValidatedTables, scorer: TextScorer) -> ValidatedTables:
    scored = ValidatedTables(dict(tables.frames), tables.quarantine, tables.report)
    attach_text_signals(scored, scorer)
    return scored


def export_as_of(tables: ValidatedTables, as_of: pd.Timestamp) -> ValidatedTables:
    """The tables as an export taken at the end of ``as_of`` would have shown them."""
    cutoff = as_of + pd.Timedelta(days=1)
    frames = {}
    for name, frame in tables.frames.items():
        if name == "usage":
            frame = frame[frame["timestamp"] < cutoff]
        elif name == "chats":
            frame = frame[frame["sent_at"] < cutoff]
        elif name == "nps_responses":
            frame = frame[frame["responded_at"] < cutoff]
        elif name == "churn":
            frame = frame[frame["churned_at"] < cutoff]
        elif name == "tickets":
            frame = frame[frame["created_at"] < cutoff].copy()
            later = frame["resolved_at"] >= cutoff
            # Not resolved yet at the time: no resolution, no rating, no final reopen count.
            frame.loc[later, "resolved_at"] = pd.NaT
            frame.loc[later, ["csat", "reopened"]] = np.nan
        frames[name] = frame.reset_index(drop=True)
    return ValidatedTables(frames, tables.quarantine, tables.report)


@pytest.mark.parametrize("as_of", ["2024-06-30", "2025-03-31", "2025-11-30"])
def test_features_equal_those_of_an_export_taken_on_the_as_of_date(
    demo_tables, settings, scorer, as_of
):
    as_of = pd.Timestamp(as_of)
    everything = with_texts(demo_tables, scorer)
    plan, _ = plan_features(everything, settings.features, settings.data, scorer.labels)
    assert plan.text_themes and "text_negative_share_30d" in plan.feature_names
    pairs = pd.DataFrame({"customer_id": active_customers(demo_tables, as_of), "as_of": as_of})
    full = build_features(everything, pairs, plan)
    then = build_features(with_texts(export_as_of(demo_tables, as_of), scorer), pairs, plan)
    pd.testing.assert_frame_equal(full, then, check_exact=False, rtol=1e-12)
    # The check has teeth: the future differs, so features of a later date do differ.
    later = build_features(everything, pairs.assign(as_of=as_of + pd.Timedelta(days=45)), plan)
    assert not np.allclose(
        later["usage_logins_30d"].to_numpy(), full["usage_logins_30d"].to_numpy()
    )


def test_the_boundary_second(validate_frames, settings):
    as_of = pd.Timestamp("2024-03-31")
    customers = pd.DataFrame({"customer_id": ["A"], "signup_date": ["2024-01-01"]})
    usage = pd.DataFrame(
        {
            "customer_id": "A",
            "timestamp": ["2024-03-31T23:59:59", "2024-04-01T00:00:00", "2024-06-01"],
            "metric": "logins",
            "value": [1.0, 1000.0, 1e9],
        }
    )
    nps = pd.DataFrame(
        {
            "customer_id": "A",
            "responded_at": ["2024-02-01", "2024-04-01T00:00:00"],
            "score": [3, 10],
        }
    )
    tables = validate_frames({"customers": customers, "usage": usage, "nps_responses": nps})
    plan, _ = plan_features(tables, settings.features, settings.data)
    row = build_features(tables, pd.DataFrame({"customer_id": ["A"], "as_of": [as_of]}), plan).iloc[
        0
    ]
    assert row["usage_logins_7d"] == pytest.approx(1 / 7)  # only the last second of the as-of day
    assert row["nps_last_score"] == 3 and row["nps_responses"] == 1
