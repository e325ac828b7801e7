"""The NPS programme's routine: the weekly, monthly and quarterly reviews, as tables.

Themes come from text_analytics' theme report (``count_detractor_themes``), so a theme counts
the same here and in `npsrisk report themes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.privacy import mask_personal_data
from text_analytics.report import compute_nps, count_detractor_themes


def _category(scores: pd.Series) -> pd.Series:
    return pd.Series(
        np.select([scores >= 9, scores >= 7], ["promoter", "passive"], "detractor"),
        index=scores.index,
    )


def weekly_review(
    responses: pd.DataFrame,
    messages: pd.DataFrame,
    as_of: pd.Timestamp,
    follow_up_owner: Mapping[str, str],
    days: int = 7,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last ``days`` days' detractor comments with their follow-up owner (or
    'unassigned'), and the themes repeating 3 or more times."""
    when = pd.to_datetime(responses["responded_at"])
    recent = responses[(when > as_of - pd.Timedelta(days=days)) & (when <= as_of)]
    detractors = recent[recent["score"] <= 6].copy()
    detractors["comment"] = [
        mask_personal_data(str(c)) if isinstance(c, str) else None
        for c in detractors.get("comment", pd.Series(index=detractors.index, dtype=object))
    ]
    detractors["follow_up"] = detractors["customer_id"].map(follow_up_owner).fillna("unassigned")
    comments = detractors[["customer_id", "responded_at", "score", "comment", "follow_up"]]
    themes = count_detractor_themes(messages, responses, as_of, windows=(days,))
    return comments.sort_values("responded_at", ascending=False).reset_index(drop=True), themes[
        themes["repeated"]
    ].reset_index(drop=True)


def monthly_review(
    responses: pd.DataFrame,
    messages: pd.DataFrame,
    customers: pd.DataFrame,
    as_of: pd.Timestamp,
    segment_columns: Sequence[str],
    months: int = 6,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NPS by month and segment over ``months`` months, and the top 3 detractor themes of
    the last 30 days."""
    frame = responses.merge(
        customers[["customer_id", *[c for c in segment_columns if c in customers.columns]]],
        on="customer_id",
        how="left",
    )
    when = pd.to_datetime(frame["responded_at"])
    start = (as_of - pd.DateOffset(months=months)).normalize()
    frame = frame[(when > start) & (when <= as_of)].assign(month=when.dt.to_period("M").astype(str))
    rows = []
    for column in ["(all)", *[c for c in segment_columns if c in frame.columns]]:
        groups = frame.groupby("month") if column == "(all)" else frame.groupby(["month", column])
        for key, part in groups:
            month, value = (key, "(all)") if column == "(all)" else key
            month = month[0] if isinstance(month, tuple) else month
            rows.append(
                {
                    "month": month,
                    "segment": column,
                    "value": str(value),
                    "nps": round(compute_nps(part["score"]), 1),
                    "answers": len(part),
                }
            )
    themes = count_detractor_themes(messages, responses, as_of, windows=(30,)).head(3)
    return pd.DataFrame(rows), themes.reset_index(drop=True)


def _rate_interval(values: np.ndarray, samples: int, interval: float, rng) -> tuple[float, float]:
    if len(values) == 0:
        return np.nan, np.nan
    draws = rng.integers(0, len(values), (samples, len(values)))
    means = values[draws].mean(axis=1)
    tail = (1 - interval) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def quarterly_review(
    responses: pd.DataFrame,
    churn: pd.DataFrame,
    customers: pd.DataFrame,
    as_of: pd.Timestamp,
    followed_up: set[str],
    samples: int = 500,
    interval: float = 0.9,
    seed: int = 0,
) -> pd.DataFrame:
    """NPS tied to revenue over the quarter after ``as_of - 91 days``: retention and retained
    MRR by the category of each customer's last answer before it, respondents against
    non-respondents, followed-up detractors against the other detractors, with intervals."""
    rng = np.random.default_rng(seed)
    start = as_of - pd.Timedelta(days=91)
    signed = pd.to_datetime(customers["signup_date"]) <= start
    left = churn.assign(churned_at=pd.to_datetime(churn["churned_at"]))
    gone_before = set(left.loc[left["churned_at"] <= start, "customer_id"])
    base = customers[signed & ~customers["customer_id"].isin(gone_before)][["customer_id"]].copy()
    mrr = customers.set_index("customer_id")["mrr"] if "mrr" in customers else None
    base["mrr"] = base["customer_id"].map(mrr).astype(float) if mrr is not None else np.nan
    churned_in = set(
        left.loc[(left["churned_at"] > start) & (left["churned_at"] <= as_of), "customer_id"]
    )
    base["retained"] = ~base["customer_id"].isin(churned_in)
    answered = responses[pd.to_datetime(responses["responded_at"]) <= start]
    last = answered.sort_values("responded_at").drop_duplicates("customer_id", keep="last")
    category = _category(last.set_index("customer_id")["score"])
    base["category"] = base["customer_id"].map(category).fillna("non-respondent")
    groups = {
        "promoter": base["category"] == "promoter",
        "passive": base["category"] == "passive",
        "detractor": base["category"] == "detractor",
        "respondent": base["category"] != "non-respondent",
        "non-respondent": base["category"] == "non-respondent",
        "detractor, followed up": (base["category"] == "detractor")
        & base["customer_id"].isin(followed_up),
        "detractor, not followed up": (base["category"] == "detractor")
        & ~base["customer_id"].isin(followed_up),
    }
    rows = []
    for name, mask in groups.items():
        part = base[mask]
        retained = part["retained"].to_numpy(float)
        low, high = _rate_interval(retained, samples, interval, rng)
        total = part["mrr"].sum()
        rows.append(
            {
                "group": name,
                "customers": len(part),
                "retention": float(retained.mean()) if len(part) else np.nan,
                "low": low,
                "high": high,
                "mrr_at_start": float(total),
                "retained_mrr_share": float(part.loc[part["retained"], "mrr"].sum() / total)
                if total > 0
                else np.nan,
            }
        )
    return pd.DataFrame(rows)
