import numpy as np
import pandas as pd
import pytest

from npsrisk.settings import TrainingSettings
from training.snapshots import (
    TrainingDataError,
    build_snapshots,
    choose_as_of_dates,
    split_snapshots,
)

T = pd.Timestamp("2024-06-30")


def tables_with(validate_frames, churned_at=None, answers=()):
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D", "E"],
            "signup_date": ["2024-01-01", "2024-01-01", "2024-01-01", "2024-06-30", "2024-07-01"],
        }
    )
    frames = {"customers": customers}
    if churned_at:
        frames["churn"] = pd.DataFrame(
            {"customer_id": list(churned_at), "churned_at": list(churned_at.values())}
        )
    if answers:
        frames["nps_responses"] = pd.DataFrame(
            answers, columns=["customer_id", "responded_at", "score"]
        )
    return validate_frames(frames)


def test_churn_label_window_is_after_as_of_up_to_the_horizon(validate_frames):
    tables = tables_with(
        validate_frames,
        churned_at={
            "A": "2024-06-30",  # on T: already gone, not scored at T
            "B": "2024-07-01",  # first day after T: churn
            "C": "2024-09-28",  # T + 90 days: still inside (T, T+90]
            "D": "2024-09-29",  # T + 91 days: outside
        },
    )
    snap = build_snapshots(tables, [T], horizon_days=90).set_index("customer_id")
    assert "A" not in snap.index  # churned on or before T
    assert "E" not in snap.index  # signed up after T
    assert snap.loc["B", "churned"] == 1 and snap.loc["C", "churned"] == 1
    assert snap.loc["D", "churned"] == 0


def test_nps_label_is_the_next_answer_inside_the_window(validate_frames):
    tables = tables_with(
        validate_frames,
        answers=[
            ("A", "2024-06-30T23:00:00", 2),  # on T: history, not a label
            ("A", "2024-07-10", 9),  # first answer after T: the label
            ("A", "2024-08-10", 0),  # a later answer is not the label
            ("B", "2024-10-15", 5),  # after the horizon
            ("C", "2024-07-01T00:00:00", 6),  # first second after T counts
        ],
    )
    snap = build_snapshots(tables, [T], horizon_days=90).set_index("customer_id")
    assert snap.loc["A", "nps_score"] == 9 and snap.loc["A", "responded"]
    assert np.isnan(snap.loc["B", "nps_score"]) and not snap.loc["B", "responded"]
    assert snap.loc["C", "nps_score"] == 6
    assert np.isnan(snap.loc["A", "churned"])  # no churn table: no churn label


def _usage_span(validate_frames, start, end):
    days = pd.date_range(start, end, freq="D")
    usage = pd.DataFrame({"customer_id": "A", "timestamp": days, "metric": "logins", "value": 1.0})
    customers = pd.DataFrame({"customer_id": ["A"], "signup_date": ["2023-01-01"]})
    return validate_frames({"customers": customers, "usage": usage})


def test_monthly_as_of_dates_leave_room_for_history_and_labels(validate_frames):
    tables = _usage_span(validate_frames, "2024-01-01", "2024-12-31")
    dates, notes = choose_as_of_dates(tables, TrainingSettings(), horizon_days=90)
    assert dates[0] == pd.Timestamp("2024-03-31")  # 90 days of history first
    assert dates[-1] == pd.Timestamp("2024-09-30")  # labels complete to 2024-12-29
    assert all(d.is_month_end for d in dates) and not notes


def test_a_one_off_export_gets_a_single_as_of_date(validate_frames):
    tables = _usage_span(validate_frames, "2024-01-01", "2024-05-15")
    dates, notes = choose_as_of_dates(tables, TrainingSettings(), horizon_days=90)
    assert dates == [pd.Timestamp("2024-02-15")]
    assert "one as-of date" in notes[0]


def test_too_short_history_says_what_to_change(validate_frames):
    tables = _usage_span(validate_frames, "2024-01-01", "2024-02-01")
    with pytest.raises(TrainingDataError, match="horizon-days"):
        choose_as_of_dates(tables, TrainingSettings(), horizon_days=90)


def _snapshots(dates, customers=50):
    return pd.DataFrame(
        [(f"C{i}", pd.Timestamp(d)) for d in dates for i in range(customers)],
        columns=["customer_id", "as_of"],
    )


def test_temporal_split_validates_on_the_latest_dates_with_a_label_gap():
    dates = pd.date_range("2024-01-31", "2024-12-31", freq="ME")
    split = split_snapshots(_snapshots(dates), TrainingSettings(validation_snapshots=2), 90)
    assert split.strategy == "temporal"
    assert split.valid_as_of == list(dates[-2:])
    # Training labels (T, T+90] must end before the first validation date.
    assert max(split.train_as_of) + pd.Timedelta(days=90) <= min(split.valid_as_of)
    assert not (split.train & split.valid).any()


def test_single_date_is_split_by_customer_never_sharing_one():
    snap = _snapshots(["2024-06-30"], customers=400)
    split = split_snapshots(snap, TrainingSettings(holdout_fraction=0.25), 90)
    assert split.strategy == "customer"
    train_ids = set(snap.loc[split.train, "customer_id"])
    valid_ids = set(snap.loc[split.valid, "customer_id"])
    assert not train_ids & valid_ids
    assert 0.15 < len(valid_ids) / 400 < 0.35
    # Deterministic: the same customers are held out every time.
    again = split_snapshots(snap, TrainingSettings(holdout_fraction=0.25), 90)
    assert (again.valid == split.valid).all()


def _one_off_export(validate_frames, customers=400, seed=0):
    """A telecom-CRM-style export: customers and churn only, churn recorded for the 120 days
    before the export's last date (nothing is known about churn before that cut)."""
    rng = np.random.default_rng(seed)
    ids = [f"K{i}" for i in range(customers)]
    signup = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, customers), "D")
    end = pd.Timestamp("2024-12-31")
    churners = rng.random(customers) < 0.3
    churned_at = end - pd.to_timedelta(rng.integers(0, 120, churners.sum()), "D")
    frames = {
        "customers": pd.DataFrame(
            {
                "customer_id": ids,
                "signup_date": signup,
                "plan_tier": rng.choice(["basic", "pro"], customers),
                "seats": rng.integers(1, 50, customers),
            }
        ),
        "churn": pd.DataFrame({"customer_id": np.array(ids)[churners], "churned_at": churned_at}),
    }
    return validate_frames(frames), frames, end


@pytest.mark.parametrize("horizon", [30, 90])
def test_a_customers_and_churn_export_has_one_as_of_date_and_its_churners(validate_frames, horizon):
    tables, frames, end = _one_off_export(validate_frames)
    dates, notes = choose_as_of_dates(tables, TrainingSettings(), horizon_days=horizon)
    T = end - pd.Timedelta(days=horizon)
    assert dates == [T]  # never monthly snapshots back to the signups
    assert "one-off export" in notes[0]
    snap = build_snapshots(tables, dates, horizon)
    churn = frames["churn"].set_index("customer_id")["churned_at"]
    expected = set(churn[(churn > T) & (churn <= T + pd.Timedelta(days=horizon))].index)
    assert set(snap.loc[snap["churned"] == 1, "customer_id"]) == expected
    # Customers gone by T are not scored; everyone else signed up by T is.
    gone = set(churn[churn <= T].index)
    signed = set(frames["customers"].loc[frames["customers"]["signup_date"] <= T, "customer_id"])
    assert set(snap["customer_id"]) == signed - gone


def test_as_of_fixes_the_single_date_and_refuses_one_without_room_for_labels(validate_frames):
    tables = _usage_span(validate_frames, "2024-01-01", "2024-12-31")
    dates, notes = choose_as_of_dates(
        tables, TrainingSettings(), 30, as_of=pd.Timestamp("2024-10-15")
    )
    assert dates == [pd.Timestamp("2024-10-15")] and "fixed" in notes[0]
    with pytest.raises(TrainingDataError, match="2024-12-01 or earlier"):
        choose_as_of_dates(tables, TrainingSettings(), 30, as_of=pd.Timestamp("2024-12-15"))


# --- the optional surveys table (invitations sent) --------------------------------------------


def test_invitations_in_the_window_mark_who_was_asked(validate_frames):
    customers = pd.DataFrame(
        {"customer_id": ["A", "B", "C", "D"], "signup_date": ["2024-01-01"] * 4}
    )
    answers = pd.DataFrame(
        [("A", "2024-07-12", 9), ("D", "2024-07-20", 3)],
        columns=["customer_id", "responded_at", "score"],
    )
    surveys = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "C", "X"],
            "sent_at": ["2024-07-10", "2024-07-11", "2024-06-01", "not a date", "2024-07-10"],
        }
    )
    tables = validate_frames({"customers": customers, "nps_responses": answers, "surveys": surveys})
    report = tables.report.tables["surveys"]
    assert report.rows_set_aside == 2  # an unparsable sent_at and an unknown customer
    snap = build_snapshots(tables, [T], horizon_days=90).set_index("customer_id")
    # A invited and answered; B invited, no answer (the non-response the model learns from);
    # C invited before T only; D answered without a recorded invitation: counted as asked
    assert snap["invited"].to_dict() == {"A": True, "B": True, "C": False, "D": True}
    assert snap["responded"].to_dict() == {"A": True, "B": False, "C": False, "D": True}


def test_without_surveys_everyone_counts_as_asked(validate_frames):
    from training.pipeline import response_rows

    tables = tables_with(validate_frames, answers=[("A", "2024-07-10", 9)])
    snap = build_snapshots(tables, [T], horizon_days=90)
    assert snap["invited"].all()
    fit = np.array([True, True, False])
    frame = pd.DataFrame({"invited": [True, False, True]})
    fit_rows, cal_rows = response_rows(frame, fit, ~fit)
    assert fit_rows.tolist() == [True, False, False] and cal_rows.tolist() == [False, False, True]
    fit_all, _ = response_rows(frame.drop(columns="invited"), fit, ~fit)
    assert fit_all.tolist() == fit.tolist()


def test_a_wave_from_the_surveys_table():
    from datetime import date

    from interventions.schedule import ScheduleError, schedule_from_surveys

    surveys = pd.DataFrame(
        {
            "customer_id": ["A", "B", "A", "C"],
            "sent_at": pd.to_datetime(
                ["2024-07-01T09:00", "2024-07-15T09:00", "2024-07-15T10:00", "2024-07-15T23:59"],
                utc=True,
            ),
        }
    )
    latest = schedule_from_surveys(surveys)
    assert latest.rows == [
        ("B", date(2024, 7, 15)),
        ("A", date(2024, 7, 15)),
        ("C", date(2024, 7, 15)),
    ]
    assert schedule_from_surveys(surveys, date(2024, 7, 1)).customer_ids == ["A"]
    with pytest.raises(ScheduleError, match="2024-07-01 to 2024-07-15"):
        schedule_from_surveys(surveys, date(2024, 8, 1))
