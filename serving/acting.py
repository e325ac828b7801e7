"""What the interventions package needs from a serving state: predictions, context, the base.

One code path for the service's endpoints and the CLI (which builds the same ServingState
from the champion and the current feature store), so a plan is the same whichever asked.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.contract import NPS_CATEGORIES
from interventions.planning import CustomerContext
from interventions.playbooks import recent_themes
from npsrisk.settings import RiskTierSettings
from serving.predictions import risk_tier
from serving.state import ServingState

_cache_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _theme_ids(state: ServingState) -> tuple[str, ...]:
    return tuple(state.champion.bundle.theme_labels)


def _theme_columns(state: ServingState) -> list[str]:
    return [c for c in state.store.columns if c.startswith("text_negative_")]


def context_of(state: ServingState, row: int, segment_columns: Sequence[str]) -> CustomerContext:
    """MRR, segment values and recent negative themes of one store row (no personal data)."""
    store = state.store
    values = {c: store.value(row, c) for c in _theme_columns(state)}
    mrr = store.value(row, "mrr")
    return CustomerContext(
        mrr=None if mrr is None else float(mrr),
        themes=recent_themes(values, _theme_ids(state)),
        segments={c: store.value(row, c) for c in segment_columns if c in store.columns},
    )


def predictions_and_contexts(
    state: ServingState,
    customer_ids: Sequence[str],
    tiers: RiskTierSettings,
    segment_columns: Sequence[str],
    top_k: int = 5,
) -> tuple[dict[str, dict], dict[str, CustomerContext], list[str]]:
    """Predictions with drivers and the planning context of known ids, and the unknown ids."""
    predictions, unknown, _ = state.predict_ids(list(customer_ids), True, top_k, tiers)
    rows, known, _ = state.store.locate(list(customer_ids))
    contexts = {
        cid: context_of(state, row, segment_columns) for cid, row in zip(known, rows, strict=True)
    }
    return {p["customer_id"]: p for p in predictions}, contexts, unknown


def base_frame(
    state: ServingState, tiers: RiskTierSettings, segment_columns: Sequence[str]
) -> pd.DataFrame:
    """Every customer of the store scored without drivers (cached per state and tiers).

    Columns: customer_id, churn_probability, p_detractor/passive/promoter, detractor_probability,
    risk_tier, mrr, revenue_at_risk, p_response (NaN without a response model), themes, and
    the segment columns the store holds.
    """
    key = (id(state), tiers, tuple(segment_columns))
    with _cache_lock:
        hit = _cache.get("base")
        if hit is not None and hit[0] == key and hit[1] is state:
            return hit[2]
    bundle = state.champion.bundle
    scores, _ = bundle.score(state.X, explain=False)
    n = len(state.X)
    churn = scores["churn_probability"]
    probs = np.column_stack([scores[f"p_{c}"] for c in NPS_CATEGORIES])
    frame = pd.DataFrame({"customer_id": state.store.columns["customer_id"]})
    frame["churn_probability"] = churn
    for k, c in enumerate(NPS_CATEGORIES):
        frame[f"p_{c}"] = probs[:, k]
    frame["detractor_probability"] = probs[:, 0]
    frame["risk_tier"] = [risk_tier(float(churn[i]), float(probs[i, 0]), tiers) for i in range(n)]
    mrr = state.store.columns.get("mrr")
    frame["mrr"] = np.asarray(mrr, dtype=float) if mrr is not None else np.nan
    frame["revenue_at_risk"] = frame["mrr"] * frame["churn_probability"]
    response = bundle.response_probability(state.X)
    frame["p_response"] = response if response is not None else np.nan
    themes = _theme_ids(state)
    columns = _theme_columns(state)
    arrays = {c: state.store.columns[c] for c in columns}
    frame["themes"] = (
        [recent_themes({c: arrays[c][i] for c in columns}, themes) for i in range(n)]
        if columns
        else [()] * n
    )
    for c in segment_columns:
        if c in state.store.columns:
            frame[c] = state.store.columns[c]
    with _cache_lock:
        _cache["base"] = (key, state, frame)
    return frame


def drivers_of(
    state: ServingState, customer_ids: Sequence[str], tiers: RiskTierSettings, top_k: int
) -> dict[str, list[dict]]:
    """SHAP drivers of a page of customers (only the page is explained)."""
    if not customer_ids:
        return {}
    predictions, _, _ = state.predict_ids(list(customer_ids), True, top_k, tiers)
    return {p["customer_id"]: p.get("drivers") or [] for p in predictions}
