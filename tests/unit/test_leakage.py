"""A row dated after the as-of date never reaches a feature."""

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, plan_features
from features.validation import ValidatedTables
from training.snapshots import active_customers


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
def test_features_equal_those_of_an_export_taken_on_the_as_of_date(demo_tables, settings, as_of):
    as_of = pd.Timestamp(as_of)
    plan, _ = plan_features(demo_tables, settings.features, settings.data)
    pairs = pd.DataFrame({"customer_id": active_customers(demo_tables, as_of), "as_of": as_of})
    full = build_features(demo_tables, pairs, plan)
    then = build_features(export_as_of(demo_tables, as_of), pairs, plan)
    pd.testing.assert_frame_equal(full, then, check_exact=False, rtol=1e-12)
    # The check has teeth: the future differs, so features of a later date do differ.
    later = build_features(demo_tables, pairs.assign(as_of=as_of + pd.Timedelta(days=45)), plan)
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
