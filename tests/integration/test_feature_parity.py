"""The Ibis feature definitions compute what they claim: they agree with an independent pandas
implementation (features.reference) on demo data, and both agree with hand-computed values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demo.generator import DemoConfig, generate_demo
from features.build import FeaturePlan, build_features, plan_features
from features.loading import RawTables
from features.reference import ambiguous_last_values, build_features_pandas
from features.validation import ValidatedTables, validate_tables
from npsrisk.settings import Settings, load_settings

pytestmark = pytest.mark.integration

AS_OF_DATES = ["2024-01-31", "2024-05-31", "2024-10-31", "2025-03-31", "2025-08-31", "2025-12-31"]
CUSTOM_FEATURES = {
    "windows_days": [14, 60, 200],  # the longest window exceeds the usage look-back
    "trend_recent_days": 21,
    "trend_prior_days": 42,
    "usage_lookback_days": 120,
    "drop_threshold": 0.3,
}


def _validated(frames: dict[str, pd.DataFrame]) -> ValidatedTables:
    raw = RawTables(
        source=Path("mem"),
        source_format="memory",
        frames={name: frame.copy() for name, frame in frames.items()},
    )
    return validate_tables(raw)


def _without_ties(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Nudge exact same-second ties of the keys that pick a "last" value (NPS response time,
    ticket resolution time) a few seconds apart: the engine breaks such ties arbitrarily."""
    out = dict(frames)
    for table, column in (("nps_responses", "responded_at"), ("tickets", "resolved_at")):
        frame = frames[table].copy()
        rank = frame.groupby([frame["customer_id"].astype(str), frame[column]]).cumcount()
        known = frame[column].notna()
        frame.loc[known, column] += pd.to_timedelta(rank[known] * 7, unit="s")
        out[table] = frame
    return out


def _settings(tmp_path: Path, custom: bool) -> Settings:
    overrides = {"features": CUSTOM_FEATURES} if custom else {}
    return load_settings(home=tmp_path / "home", **overrides)


def _pairs(tables: ValidatedTables, seed: int) -> pd.DataFrame:
    """Every customer at several month ends (many with no events yet, or not signed up yet),
    plus an unknown customer and a duplicate pair given with a time of day, shuffled."""
    ids = tables["customers"]["customer_id"]
    pairs = pd.concat(
        [pd.DataFrame({"customer_id": ids, "as_of": pd.Timestamp(d)}) for d in AS_OF_DATES],
        ignore_index=True,
    )
    extra = pd.DataFrame(
        {
            "customer_id": ["NOT-A-CUSTOMER", ids.iloc[0]],
            "as_of": [pd.Timestamp("2025-03-31"), pd.Timestamp("2025-03-31 15:30")],
        }
    )
    pairs = pd.concat([pairs, extra], ignore_index=True)
    return pairs.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _assert_same(tables: ValidatedTables, pairs: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    engine = build_features(tables, pairs, plan)
    reference = build_features_pandas(tables, pairs, plan)
    assert list(reference.columns) == ["customer_id", "as_of", *plan.feature_names]
    assert list(engine.columns) == list(reference.columns)
    for column in reference.columns:  # column by column, for a readable failure
        pd.testing.assert_series_equal(
            engine[column], reference[column], check_dtype=False, rtol=1e-9, atol=1e-12
        )
    pd.testing.assert_frame_equal(engine, reference, check_dtype=False, rtol=1e-9, atol=1e-12)
    for column in plan.categorical:
        assert all(v is None or isinstance(v, str) for v in reference[column])
    numeric = [c for c in plan.feature_names if c not in plan.categorical]
    assert all(reference[c].dtype == float for c in numeric)
    return reference


@pytest.fixture(scope="module")
def demo_frames() -> dict[int, dict[str, pd.DataFrame]]:
    return {
        seed: _without_ties(generate_demo(DemoConfig(customers=300, seed=seed)).tables)
        for seed in (11, 23, 37)
    }


@pytest.mark.parametrize("custom", [False, True], ids=["default-settings", "custom-settings"])
@pytest.mark.parametrize("seed", [11, 23, 37])
def test_ibis_definitions_match_the_pandas_reference(demo_frames, tmp_path, seed, custom):
    tables = _validated(demo_frames[seed])
    settings = _settings(tmp_path, custom)
    plan, _ = plan_features(tables, settings.features, settings.data)
    pairs = _pairs(tables, seed)
    assert not ambiguous_last_values(tables, pairs, plan).to_numpy().any()
    frame = _assert_same(tables, pairs, plan)

    # The comparison has teeth: the data exercise every kind of value.
    assert len(frame) == len(pairs) - 1  # the duplicate pair is dropped
    assert frame["tenure_days"].lt(0).any()  # some customers had not signed up yet
    unknown = frame[frame["customer_id"] == "NOT-A-CUSTOMER"]
    assert len(unknown) == 1 and unknown[plan.zero_when_absent()].eq(0).all().all()
    for column in plan.feature_names:
        if column not in plan.categorical:
            assert frame[column].notna().any(), column
    assert frame["tickets_open"].gt(0).any() and frame["nps_trend"].notna().any()
    assert frame.filter(like="_drop").eq(1.0).any().any()


def test_tables_absent_at_scoring_time(demo_frames, tmp_path):
    full = _validated(demo_frames[11])
    settings = _settings(tmp_path, False)
    plan, _ = plan_features(full, settings.features, settings.data)
    frames = {k: v for k, v in full.frames.items() if k not in ("chats", "nps_responses")}
    scoring = ValidatedTables(frames, full.quarantine, full.report)
    frame = _assert_same(scoring, _pairs(full, 11), plan)
    assert frame.filter(regex="^(chat|nps)_").isna().all().all()  # counts too: unknown


def test_a_callers_duckdb_connection_gives_the_same_features_and_keeps_no_spine(
    demo_frames, tmp_path
):
    """On a caller's connection the spine and attributes are temporary tables of it (DuckDB
    then knows their sizes): the frame is the same, and they are dropped afterwards."""
    from features.build import connect

    tables = _validated(demo_frames[23])
    settings = _settings(tmp_path, False)
    plan, _ = plan_features(tables, settings.features, settings.data)
    pairs = _pairs(tables, 23)
    con = connect("duckdb")
    on_caller = build_features(tables, pairs, plan, con=con)
    assert not [name for name in con.list_tables() if "npsrisk" in name]
    pd.testing.assert_frame_equal(on_caller, build_features(tables, pairs, plan))
    pd.testing.assert_frame_equal(
        on_caller, build_features_pandas(tables, pairs, plan), check_dtype=False, rtol=1e-9
    )


# --- a tiny world computed by hand ------------------------------------------------------

AS_OF = pd.Timestamp("2024-06-30")  # cutoff 2024-07-01 00:00:00


def _tiny_tables() -> ValidatedTables:
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "signup_date": ["2023-06-01", "2024-01-01", "2024-03-01", "2024-08-01"],
            "plan_tier": ["pro", "starter", " ", "pro"],
            "seats": [10, 3, None, 5],
        }
    )
    usage = pd.DataFrame(
        [
            # A: logins fell from a prior level of 600/56 a day to 120/28 (-60%): the periods
            # are cut to whole weeks (28 and 56 days).
            ("A", "2024-05-01", "logins", 600.0),
            ("A", "2024-06-15", "logins", 120.0),
            ("A", "2024-06-29", "logins", 0.0),  # zero: not activity
            ("A", "2024-07-01", "logins", 1e6),  # the day after: the future
            ("A", "2023-10-01", "logins", 5e5),  # before the 180-day look-back
            # B: api calls only recently: no prior level, so no trend and no drop.
            ("B", "2024-06-10", "api_calls", 300.0),
        ],
        columns=["customer_id", "timestamp", "metric", "value"],
    )
    tickets = pd.DataFrame(
        [
            # T1 created before the as-of date, resolved after it: open, no CSAT/reopens yet.
            ("T1", "A", "2024-06-20T10:00:00", "2024-07-02T09:00:00", "High", 1.0, 2.0),
            ("T2", "A", "2024-06-01T00:00:00", "2024-06-01T06:00:00", "low", 4.0, 1.0),
            ("T3", "A", "2024-01-10T00:00:00", "2024-01-11T12:00:00", "normal", 2.0, 0.0),
            ("T4", "A", "2024-06-30T23:59:59.500", None, "URGENT", None, None),
            ("T5", "A", "2024-07-01T00:00:00", None, "urgent", None, None),  # the future
            # T6 resolved exactly at the cutoff: still open on the as-of date.
            ("T6", "A", "2024-06-25T00:00:00", "2024-07-01T00:00:00", "normal", 5.0, 3.0),
        ],
        columns=[
            "ticket_id",
            "customer_id",
            "created_at",
            "resolved_at",
            "priority",
            "csat",
            "reopened",
        ],
    )
    chats = pd.DataFrame(
        [
            ("X", "A", "2024-06-28T10:00:00", "customer"),
            ("X", "A", "2024-06-28T10:05:00", "agent"),
            ("Y", "A", "2024-05-15T08:00:00", "customer"),
            ("Y", "A", "2024-05-15T08:01:00", "customer"),
            ("Z", "A", "2023-12-01T08:00:00", "customer"),  # before the 180-day look-back
            ("W", "A", "2024-07-01T08:00:00", "customer"),  # the future
        ],
        columns=["conversation_id", "customer_id", "sent_at", "author"],
    ).assign(text="hello")
    nps = pd.DataFrame(
        [
            ("R1", "A", "2024-01-15T10:00:00", 9),
            ("R2", "A", "2024-04-10T10:00:00", 5),
            ("R3", "A", "2024-06-30T12:00:00", 3),
            ("R4", "A", "2024-07-02T10:00:00", 10),  # the future
            ("R5", "B", "2023-03-01T00:00:00", 8),
        ],
        columns=["response_id", "customer_id", "responded_at", "score"],
    )
    return _validated(
        {
            "customers": customers,
            "usage": usage,
            "tickets": tickets,
            "chats": chats,
            "nps_responses": nps,
        }
    )


EXPECTED = {
    "A": {
        "tenure_days": 396.0,  # 2023-06-01 .. 2024-07-01
        "seats": 10.0,
        "plan_tier": "pro",
        "usage_logins_7d": 0.0,
        "usage_logins_30d": 120 / 28,  # whole weeks: the last 28 days
        "usage_logins_90d": 720 / 84,  # (600 + 120) over 12 whole weeks
        "usage_logins_trend": -0.6,
        "usage_logins_drop": 1.0,
        "usage_logins_days_since_active": 16.0,
        # Whole weeks back from the cutoff: 600 in week 8, 120 in week 2, 0 in week 0. The
        # earlier weeks 4..8 average 120 (sd 240: 600 once, then four zero weeks); the last
        # four weeks average 30.
        "usage_logins_vs_history": 0.25,
        "usage_logins_history_z": (30 - 120) / 240,
        "usage_logins_90d_per_seat": 72 / 84,  # 720 / 84 a day over 10 seats
        "usage_api_calls_90d_per_seat": 0.0,
        "tickets_90d_per_seat": 0.4,
        "chat_conversations_90d_per_seat": 0.2,
        "usage_api_calls_30d": 0.0,
        "usage_api_calls_trend": np.nan,
        "usage_api_calls_days_since_active": np.nan,
        "tickets_7d": 2.0,  # T4, T6
        "tickets_30d": 4.0,  # T1, T2 (exactly 30 days before the cutoff), T4, T6
        "tickets_90d": 4.0,
        "tickets_open": 3.0,  # T1, T4, T6
        "tickets_high_priority_open": 2.0,  # T1, T4
        "tickets_high_priority_90d": 2.0,
        "tickets_resolution_hours_90d": 6.0,  # T2 only
        "tickets_reopened_90d": 1.0,  # T2 only: T1's and T6's reopens are not known yet
        "tickets_csat_90d": 4.0,
        "tickets_csat_last": 4.0,  # T2, resolved after T3; T1 and T6 are not resolved yet
        "tickets_days_since_last": 0.5 / 86400,  # T4, half a second before the cutoff
        "chat_conversations_7d": 1.0,
        "chat_customer_messages_7d": 1.0,
        "chat_conversations_90d": 2.0,
        "chat_customer_messages_90d": 3.0,
        "chat_days_since_last": 2 + (13 + 55 / 60) / 24,  # the agent's reply at 10:05
        "nps_last_score": 3.0,
        "nps_last_age_days": 0.5,
        "nps_mean": 17 / 3,
        "nps_trend": 3 - 7.0,  # the last score minus the mean of the earlier ones
        "nps_responses": 3.0,
    },
    "B": {
        "tenure_days": 182.0,
        "plan_tier": "starter",
        "usage_api_calls_7d": 0.0,
        "usage_api_calls_30d": 300 / 28,
        "usage_api_calls_trend": np.nan,
        "usage_api_calls_drop": 0.0,
        "usage_api_calls_days_since_active": 21.0,
        "usage_api_calls_vs_history": np.nan,  # history starts 3 weeks back: too short
        "usage_api_calls_history_z": np.nan,
        "tickets_90d_per_seat": 0.0,
        "usage_logins_30d": 0.0,
        "tickets_open": 0.0,
        "tickets_csat_last": np.nan,
        "tickets_days_since_last": np.nan,
        "chat_conversations_90d": 0.0,
        "chat_days_since_last": np.nan,
        "nps_last_score": 8.0,
        "nps_trend": np.nan,  # one answer: no trend
        "nps_responses": 1.0,
    },
    "C": {
        "tenure_days": 122.0,
        "seats": np.nan,
        "tickets_90d_per_seat": np.nan,  # seats unknown
        "plan_tier": None,  # a blank category is missing
        "usage_logins_90d": 0.0,
        "usage_logins_drop": 0.0,
        "usage_logins_trend": np.nan,
        "tickets_30d": 0.0,
        "tickets_resolution_hours_90d": np.nan,
        "chat_customer_messages_30d": 0.0,
        "nps_responses": 0.0,
        "nps_mean": np.nan,
    },
    "D": {"tenure_days": -31.0, "nps_responses": 0.0},  # signs up a month after the as-of date
}


@pytest.mark.parametrize("implementation", ["ibis", "pandas"])
def test_hand_computed_values(tmp_path, implementation):
    tables = _tiny_tables()
    settings = _settings(tmp_path, False)
    plan, _ = plan_features(tables, settings.features, settings.data)
    pairs = pd.DataFrame({"customer_id": list(EXPECTED), "as_of": AS_OF})
    build = build_features if implementation == "ibis" else build_features_pandas
    frame = build(tables, pairs, plan).set_index("customer_id")
    assert plan.sizes == {"seat": "seats"}  # no MRR column: no per-MRR rates
    assert not [c for c in plan.feature_names if c.endswith("_per_mrr")]
    for customer, expected in EXPECTED.items():
        for column, value in expected.items():
            got = frame.loc[customer, column]
            if value is None:
                assert got is None, (customer, column, got)
            elif isinstance(value, str):
                assert got == value, (customer, column, got)
            elif np.isnan(value):
                assert np.isnan(got), (customer, column, got)
            else:
                assert got == pytest.approx(value, rel=1e-12, abs=1e-12), (customer, column)


def test_hand_computed_world_parity(tmp_path):
    tables = _tiny_tables()
    settings = _settings(tmp_path, False)
    plan, _ = plan_features(tables, settings.features, settings.data)
    dates = pd.date_range("2024-01-01", "2024-09-30", freq="7D")
    pairs = pd.DataFrame(
        [(c, d) for c in EXPECTED for d in dates], columns=["customer_id", "as_of"]
    )
    _assert_same(tables, pairs, plan)


def test_ties_on_last_values_are_flagged(tmp_path):
    """Two answers in the same second: the engine may pick either; the reference takes the
    one last in the table and flags the cell as ambiguous."""
    customers = pd.DataFrame({"customer_id": ["A", "B"], "signup_date": ["2024-01-01"] * 2})
    nps = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B", "B"],
            "responded_at": ["2024-02-01", "2024-03-01", "2024-03-01", "2024-03-01", "2024-03-01"],
            "score": [2, 6, 9, 7, 7],  # B's tie is harmless: the same score
        }
    )
    tables = _validated({"customers": customers, "nps_responses": nps})
    settings = _settings(tmp_path, False)
    plan, _ = plan_features(tables, settings.features, settings.data)
    pairs = pd.DataFrame({"customer_id": ["A", "B"], "as_of": pd.Timestamp("2024-03-31")})
    reference = build_features_pandas(tables, pairs, plan)
    engine = build_features(tables, pairs, plan)
    assert reference["nps_last_score"].tolist() == [9.0, 7.0]
    assert engine.loc[0, "nps_last_score"] in (6.0, 9.0)
    assert engine.loc[1, "nps_last_score"] == 7.0
    assert reference.loc[0, "nps_trend"] == pytest.approx(9 - 4.0)  # (2 + 6) / 2 earlier
    ambiguous = ambiguous_last_values(tables, pairs, plan)
    assert ambiguous.loc[0, ["nps_last_score", "nps_trend"]].all()
    assert not ambiguous.loc[1].any() and ambiguous.to_numpy().sum() == 2


def test_usage_does_not_move_with_the_weekday_of_a_weekly_export(tmp_path):
    """Weekly usage rows: every usage level, trend, rate and own-history feature is the same
    on every as-of date between two rows (plan version 3 cuts the windows to whole weeks; a
    version 2 plan's 30-day windows held 4 or 5 weekly rows and moved with the date)."""
    rng = np.random.default_rng(3)
    mondays = pd.date_range("2024-01-01", "2024-06-24", freq="7D")
    usage = pd.DataFrame(
        {
            "customer_id": "A",
            "timestamp": mondays,
            "metric": "logins",
            "value": rng.poisson(50, len(mondays)).astype(float),
        }
    )
    customers = pd.DataFrame({"customer_id": ["A"], "signup_date": ["2023-12-01"], "seats": [4]})
    tables = _validated({"customers": customers, "usage": usage})
    settings = _settings(tmp_path, False)
    plan, _ = plan_features(tables, settings.features, settings.data)
    week = pd.date_range("2024-06-03", "2024-06-09")  # Monday (a row's day) to Sunday
    frame = build_features(tables, pd.DataFrame({"customer_id": "A", "as_of": week}), plan)
    usage = [c for c in frame.columns if c.startswith("usage_") and "days_since" not in c]
    assert {"usage_logins_30d", "usage_logins_90d_per_seat", "usage_logins_trend"} <= set(usage)
    assert {"usage_logins_vs_history", "usage_logins_history_z"} <= set(usage)
    for column in usage:
        assert frame[column].notna().all() and frame[column].nunique() == 1, frame[column]
    older = dataclasses.replace(plan, version=2)
    before = build_features(tables, pd.DataFrame({"customer_id": "A", "as_of": week}), older)
    assert before["usage_logins_30d"].nunique() > 1  # why: a fixed-day window does move
    assert before["usage_logins_vs_history"].nunique() == 1  # version 2's own history did not
    reference = build_features_pandas(
        tables, pd.DataFrame({"customer_id": "A", "as_of": week}), plan
    )
    pd.testing.assert_frame_equal(frame, reference, check_exact=False, rtol=1e-9)


@pytest.mark.parametrize("version", [2, 3])
def test_event_level_usage_matches_the_reference_where_days_share_a_week(tmp_path, version):
    """Usage as events (several a day, days a few apart) beside weekly rows and lone days: the
    engine passes a day with no other day of its customer within 6 days straight through as
    its week's total and groups the others (features.definitions._weekly_totals); both ways
    must give the reference's values, at as-of dates on every weekday."""
    rng = np.random.default_rng(7)
    rows = []
    for customer, step_days in (("daily", 1), ("bursty", 3), ("weekly", 7), ("mixed", 0)):
        if step_days:
            days = pd.date_range("2024-01-01", "2024-07-31", freq=f"{step_days}D")
        else:  # weeks of daily rows, then lone days 8-12 days apart, then a burst
            days = pd.DatetimeIndex(
                [
                    *pd.date_range("2024-01-01", "2024-01-20"),
                    *["2024-02-01", "2024-02-13"],
                    *pd.date_range("2024-03-01", "2024-03-04"),
                    *["2024-05-20", "2024-05-30"],
                ]
            )
        for day in days:
            for _ in range(int(rng.integers(1, 4))):  # 1-3 events a day
                at = day + pd.Timedelta(minutes=int(rng.integers(0, 1440)))
                metric = str(rng.choice(["logins", "api_calls"]))
                rows.append((customer, at, metric, float(rng.poisson(20))))
    usage = pd.DataFrame(rows, columns=["customer_id", "timestamp", "metric", "value"])
    names = ["daily", "bursty", "weekly", "mixed"]
    customers = pd.DataFrame(
        {"customer_id": names, "signup_date": "2023-12-01", "seats": [5, 3, 8, 2]}
    )
    tables = _validated({"customers": customers, "usage": usage})
    settings = _settings(tmp_path, False)
    plan, _ = plan_features(tables, settings.features, settings.data)
    plan = dataclasses.replace(plan, version=version)
    dates = pd.date_range("2024-02-10", "2024-08-20", freq="5D")  # every weekday in turn
    pairs = pd.DataFrame([(c, d) for c in names for d in dates], columns=["customer_id", "as_of"])
    reference = _assert_same(tables, pairs, plan)
    history = reference["usage_logins_history_z"]
    assert history.notna().sum() > 20  # the own-history features were really compared
