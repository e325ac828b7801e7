"""The ranked at-risk list success teams work from: rank, filter, sort and page a scored base.

Pure: a frame of every scored customer in, one page and the total count out. The caller
explains only the page (SHAP for a page, never for the whole base).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from interventions.playbooks import TIERS

SortKey = Literal["churn_probability", "detractor_probability", "revenue_at_risk"]
SORT_KEYS: tuple[str, ...] = ("churn_probability", "detractor_probability", "revenue_at_risk")
NO_INTERVENTION = "none"


class AtRiskQueryError(ValueError):
    """A filter or sort the list cannot apply; the message says what is accepted."""


@dataclass(frozen=True)
class AtRiskQuery:
    sort_by: str = "churn_probability"
    descending: bool = True
    min_tier: str | None = None
    segments: Mapping[str, str] | None = None  # column -> value (several values: comma list)
    owner: str | None = None
    intervention_status: str | None = None  # an intervention status, or "none"
    offset: int = 0
    limit: int = 50
    newly_at_risk: bool = False


def scored_frame(
    customer_ids: list[str],
    churn: np.ndarray,
    p_detractor: np.ndarray,
    tiers: list[str | None],
    mrr: np.ndarray,
    segments: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """The columns ``rank_at_risk`` works on, one row per scored customer."""
    frame = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "churn_probability": churn.astype(float),
            "detractor_probability": p_detractor.astype(float),
            "risk_tier": tiers,
            "mrr": mrr.astype(float),
        }
    )
    frame["revenue_at_risk"] = frame["mrr"] * frame["churn_probability"]
    for column, values in segments.items():
        frame[column] = values
    return frame


def rank_at_risk(
    frame: pd.DataFrame,
    query: AtRiskQuery,
    owners: Mapping[str, str] | None = None,
    statuses: Mapping[str, str] | None = None,
    previous_tiers: Mapping[str, str | None] | None = None,
    previous_churn: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, int]:
    """One page of the ranked list and how many customers pass the filters."""
    if query.sort_by not in SORT_KEYS:
        raise AtRiskQueryError(f"sort must be one of {', '.join(SORT_KEYS)}, not {query.sort_by!r}")
    if query.min_tier is not None and query.min_tier not in TIERS:
        raise AtRiskQueryError(f"min_tier must be one of {', '.join(TIERS)}")
    keep = np.ones(len(frame), dtype=bool)
    if query.min_tier is not None:
        rank = {t: i for i, t in enumerate(TIERS)}
        floor = rank[query.min_tier]
        keep &= frame["risk_tier"].map(lambda t: rank.get(t, -1) >= floor).to_numpy(bool)
    for column, wanted in (query.segments or {}).items():
        if column not in frame.columns:
            raise AtRiskQueryError(
                f"cannot filter on {column!r}: segment columns are "
                f"{', '.join(c for c in frame.columns if c not in _SCORE_COLUMNS) or 'none'}"
            )
        values = {v.strip() for v in str(wanted).split(",")}
        keep &= frame[column].astype(str).isin(values).to_numpy()
    owner_col = frame["customer_id"].map(owners or {})
    status_col = frame["customer_id"].map(statuses or {}).fillna(NO_INTERVENTION)
    if query.owner is not None:
        keep &= (owner_col == query.owner).to_numpy()
    if query.intervention_status is not None:
        keep &= (status_col == query.intervention_status).to_numpy()
    previous = frame["customer_id"].map(previous_tiers or {})
    if query.newly_at_risk:
        rank = {t: i for i, t in enumerate(TIERS)}
        now = frame["risk_tier"].map(lambda t: rank.get(t, -1))
        before = previous.map(lambda t: rank.get(t, -1))
        keep &= ((now >= rank["medium"]) & (now > before)).to_numpy()
    selected = frame[keep].assign(owner=owner_col[keep], intervention_status=status_col[keep])
    change = frame["churn_probability"] - frame["customer_id"].map(previous_churn or {})
    selected = selected.assign(previous_risk_tier=previous[keep], churn_change=change[keep])
    total = len(selected)
    order = selected.sort_values(
        [query.sort_by, "customer_id"],
        ascending=[not query.descending, True],
        na_position="last",
        kind="stable",
    )
    page = order.iloc[query.offset : query.offset + query.limit].copy()
    page.insert(0, "rank", np.arange(query.offset + 1, query.offset + 1 + len(page)))
    return page.reset_index(drop=True), total


_SCORE_COLUMNS = {
    "customer_id",
    "churn_probability",
    "detractor_probability",
    "risk_tier",
    "mrr",
    "revenue_at_risk",
}


def plain_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready values (NaN -> None, numpy scalars -> Python)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, float | np.floating) and np.isnan(value):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
