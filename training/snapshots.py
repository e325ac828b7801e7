"""As-of dates, labelled snapshots and the train/validation split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contract import TABLES
from features.validation import ValidatedTables
from npsrisk.settings import TrainingSettings


class TrainingDataError(Exception):
    """The data cannot support training as configured; the message says what to change."""


def data_window(tables: ValidatedTables) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last dates seen in any event table (the export's span)."""
    starts, ends = [], []
    for name, spec in TABLES.items():
        span = None if name == "customers" or spec.time_column is None else tables.time_span(name)
        if span is None:
            continue
        starts.append(span[0])
        ends.append(span[1])
    if not ends:  # customers only: the signups are all the history there is
        signup = tables["customers"]["signup_date"]
        starts, ends = [signup.min()], [signup.max()]
    return pd.Timestamp(min(starts)).normalize(), pd.Timestamp(max(ends)).normalize()


def is_one_off_export(tables: ValidatedTables) -> bool:
    """Customers and churn only: a snapshot taken once, with churn recorded after one cut.

    Such a churn table says nothing about who had churned before the cut, so monthly snapshots
    further back would hold survivors only; it gets a single as-of date.
    """
    events = [
        name
        for name, spec in TABLES.items()
        if name not in ("customers", "churn") and spec.time_column and tables.rows(name)
    ]
    return tables.has("churn") and not events


def choose_as_of_dates(
    tables: ValidatedTables,
    settings: TrainingSettings,
    horizon_days: int,
    as_of: pd.Timestamp | None = None,
) -> tuple[list[pd.Timestamp], list[str]]:
    """Month-end as-of dates whose labels are complete, or one date for a one-off export.

    ``as_of`` fixes a single as-of date (``npsrisk train --as-of``); its labels must fit in
    the data. A customers+churn export gets one as-of date: its last date minus the horizon.
    """
    start, end = data_window(tables)
    last_labelled = end - pd.Timedelta(days=horizon_days)
    if as_of is not None:
        as_of = pd.Timestamp(as_of).normalize()
        if as_of > last_labelled:
            raise TrainingDataError(
                f"--as-of {as_of.date()} leaves less than the {horizon_days}-day label horizon "
                f"before the data ends ({end.date()}): use {last_labelled.date()} or earlier, "
                "or lower --horizon-days."
            )
        return [as_of], [f"as-of date fixed at {as_of.date()} (labels to {end.date()})"]
    if is_one_off_export(tables):
        first_signup = pd.Timestamp(tables["customers"]["signup_date"].min()).normalize()
        if last_labelled <= first_signup:
            raise TrainingDataError(
                f"The export ends {end.date()}, and no customer signed up "
                f"{horizon_days} days before that. Lower --horizon-days."
            )
        return [last_labelled], [
            f"one-off export (customers and churn only): one as-of date, {last_labelled.date()}"
            f" = the export's last date minus {horizon_days} days, validated on a held-out share "
            "of customers"
        ]
    first = start + pd.Timedelta(days=settings.min_history_days)
    notes: list[str] = []
    dates = [
        d for d in pd.date_range(first, last_labelled, freq="ME") if first <= d <= last_labelled
    ]
    if len(dates) > settings.max_snapshots:
        notes.append(
            f"using the latest {settings.max_snapshots} of {len(dates)} monthly as-of dates"
        )
        dates = dates[-settings.max_snapshots :]
    if not dates:
        if last_labelled <= start:
            raise TrainingDataError(
                f"The data spans {start.date()} to {end.date()} ({(end - start).days} days), but "
                f"labels need {horizon_days} days after an as-of date. Lower --horizon-days "
                "(or training.horizon_days) or provide a longer history."
            )
        dates = [last_labelled]
        notes.append(
            f"history too short for monthly snapshots: one as-of date ({last_labelled.date()}), "
            "validated on a held-out share of customers"
        )
    return [pd.Timestamp(d).normalize() for d in dates], notes


def active_customers(tables: ValidatedTables, as_of: pd.Timestamp) -> pd.Series:
    """Ids of customers signed up on or before as_of who had not churned by then."""
    customers = tables["customers"]
    cutoff = as_of.normalize() + pd.Timedelta(days=1)
    alive = customers["signup_date"] < cutoff
    if tables.has("churn"):
        churned = tables["churn"].set_index("customer_id")["churned_at"]
        gone = customers["customer_id"].map(churned)
        alive &= ~(gone < cutoff).fillna(False).astype(bool)
    return customers.loc[alive, "customer_id"].reset_index(drop=True)


def build_snapshots(
    tables: ValidatedTables, as_of_dates: list[pd.Timestamp], horizon_days: int
) -> pd.DataFrame:
    """One row per active customer and as-of date with the labels from (T, T + horizon].

    ``churned`` is 1/0 (NaN without a churn table); ``nps_score`` is the first survey answer
    in the window (NaN when the customer did not answer); ``responded`` says whether they did;
    ``invited`` whether a survey invitation went out in the window (the optional ``surveys``
    table; an answer counts as one) — True for everyone without that table, since then every
    customer could have been asked.
    """
    frames = [
        pd.DataFrame({"customer_id": active_customers(tables, d), "as_of": d}) for d in as_of_dates
    ]
    snap = pd.concat(frames, ignore_index=True)
    cutoff = snap["as_of"] + pd.Timedelta(days=1)
    horizon_end = cutoff + pd.Timedelta(days=horizon_days)

    if tables.has("churn"):
        churned_at = snap["customer_id"].map(tables["churn"].set_index("customer_id")["churned_at"])
        snap["churned"] = ((churned_at >= cutoff) & (churned_at < horizon_end)).astype(float)
    else:
        snap["churned"] = np.nan

    snap["nps_score"] = np.nan
    snap["responded"] = False
    if tables.has("nps_responses") and len(tables["nps_responses"]):
        answers = tables["nps_responses"][["customer_id", "responded_at", "score"]].sort_values(
            "responded_at", kind="stable"
        )
        left = snap.assign(_cutoff=cutoff.astype("datetime64[ns]"), _row=np.arange(len(snap)))
        left = left.sort_values("_cutoff", kind="stable")
        nxt = pd.merge_asof(
            left,
            answers.astype({"responded_at": "datetime64[ns]"}),
            left_on="_cutoff",
            right_on="responded_at",
            by="customer_id",
            direction="forward",
            allow_exact_matches=True,
        ).sort_values("_row")
        in_window = (nxt["responded_at"] < horizon_end.to_numpy()).to_numpy()
        snap["nps_score"] = np.where(in_window, nxt["score"].to_numpy(), np.nan)
        snap["responded"] = in_window
    snap["invited"] = True
    if tables.has("surveys") and len(tables["surveys"]):
        sent = tables["surveys"][["customer_id", "sent_at"]].sort_values("sent_at", kind="stable")
        left = snap.assign(_cutoff=cutoff.astype("datetime64[ns]"), _row=np.arange(len(snap)))
        left = left.sort_values("_cutoff", kind="stable")
        nxt = pd.merge_asof(
            left,
            sent.astype({"sent_at": "datetime64[ns]"}),
            left_on="_cutoff",
            right_on="sent_at",
            by="customer_id",
            direction="forward",
            allow_exact_matches=True,
        ).sort_values("_row")
        asked = (nxt["sent_at"] < horizon_end.to_numpy()).to_numpy()
        snap["invited"] = asked | snap["responded"].to_numpy(dtype=bool)
    return snap


def customer_fold(customer_ids: pd.Series, share: float, salt: str) -> np.ndarray:
    """A stable pseudo-random choice of about ``share`` of customers (the same ids always)."""

    def bucket(cid: str) -> float:
        digest = hashlib.blake2b(f"{salt}:{cid}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    uniques = pd.Series(customer_ids.unique())
    chosen = set(uniques[uniques.map(bucket) < share])
    return customer_ids.isin(chosen).to_numpy()


@dataclass
class Split:
    """Which snapshot rows train and which validate, and how that was decided."""

    strategy: str
    train: np.ndarray
    valid: np.ndarray
    train_as_of: list[pd.Timestamp]
    valid_as_of: list[pd.Timestamp]
    notes: list[str] = field(default_factory=list)
    train_customers: list[str] | None = None  # set for a customer split

    def describe(self) -> str:
        def span(dates: list[pd.Timestamp]) -> str:
            return f"{min(dates).date()}..{max(dates).date()}" if dates else "none"

        return (
            f"{self.strategy}: train {int(self.train.sum())} rows ({span(self.train_as_of)}), "
            f"validate {int(self.valid.sum())} rows ({span(self.valid_as_of)})"
        )


def split_snapshots(
    snapshots: pd.DataFrame, settings: TrainingSettings, horizon_days: int
) -> Split:
    """Validate on the latest as-of dates; train only on dates whose labels end before them.

    With a single as-of date (or when no earlier date has labels that end in time) the split
    is by customer instead, so one customer never sits on both sides.
    """
    dates = sorted(snapshots["as_of"].unique())
    dates = [pd.Timestamp(d) for d in dates]
    notes: list[str] = []
    if len(dates) > 1:
        n_valid = min(settings.validation_snapshots, len(dates) - 1)
        valid_dates = dates[-n_valid:]
        # Training labels look horizon_days ahead; they must not see the validation period.
        last_train = valid_dates[0] - pd.Timedelta(days=horizon_days)
        train_dates = [d for d in dates if d <= last_train]
        if train_dates:
            as_of = snapshots["as_of"]
            return Split(
                "temporal",
                as_of.isin(train_dates).to_numpy(),
                as_of.isin(valid_dates).to_numpy(),
                train_dates,
                valid_dates,
                notes,
            )
        notes.append(
            f"no as-of date ends its {horizon_days}-day labels before the validation dates: "
            "split by customer instead"
        )
    valid = customer_fold(
        snapshots["customer_id"], settings.holdout_fraction, f"holdout:{settings.seed}"
    )
    train_ids = snapshots.loc[~valid, "customer_id"].unique().tolist()
    return Split("customer", ~valid, valid, dates, dates, notes, train_ids)
