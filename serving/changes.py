"""Why a score moved: a customer's change since the previous materialization, from SHAP.

Both dates are scored by the same model, so the change is the data's, not a model swap's: the
raw score (churn log-odds, NPS raw points) moved by exactly the sum of the features' changes in
contribution. A feature's change is turned into the output's units the way a driver's
``effect`` is (``ModelBundle.effects``): the output now minus the output with only this
feature's change undone, through the calibrator (or the score distribution), never by adding
probabilities. Such effects do not add up to the total move; the totals are given as they are.
Only features whose value changed are listed: a feature whose contribution moved only because
its neighbours changed (a tree's interactions) is not what a person can act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.catalog import label, say_amount
from training.bundle import ModelBundle

ValueOf = Callable[[int, str], Any]  # (row, feature) -> the raw value to show


@dataclass(frozen=True)
class Earlier:
    """The same customers at an earlier materialization: encoded rows aligned with the current
    ones (``present`` False where a customer was not in that store) and their raw values, by
    the current row."""

    since: str
    X: np.ndarray
    present: np.ndarray
    value_of: ValueOf


def pct(p: float) -> str:
    """A probability in words; the model never returns a certainty, so neither does this."""
    if p < 0.005:
        return "< 1%"
    if p > 0.995:
        return "> 99%"
    return f"{p:.0%}"


def value_words(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.integer | np.floating):
        return say_amount(float(value))
    return str(value)


def _unchanged(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    return (now == before) | (np.isnan(now) & np.isnan(before))


def plain_value(value: Any) -> Any:
    """A feature value as plain Python (NumPy scalars unwrapped), NaN as None: what a driver's
    ``value`` holds and what its description is written from."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# (score key, how the summary names it, how a total and one feature's effect read)
_OUTPUTS = {
    "churn": ("churn_probability", "churn risk", pct, lambda e: f"{e * 100:+.0f} points"),
    "nps": ("predicted_nps", "predicted score", lambda v: f"{v:.1f}", lambda e: f"{e:+.1f}"),
}


def explain_changes(
    bundle: ModelBundle,
    X: np.ndarray,
    scores: dict[str, np.ndarray],
    contributions: dict[str, np.ndarray],
    value_of: ValueOf,
    earlier: Earlier,
    top_k: int,
    tier_of: Callable[[float, float], str | None],
    threads: int | None = None,
) -> list[dict[str, Any] | None]:
    """The ``change`` object of each row (None where the customer was not scored then)."""
    from serving.predictions import pick_drivers  # predictions calls this module: no cycle

    out: list[dict[str, Any] | None] = [None] * len(X)
    rows = np.flatnonzero(earlier.present)
    if len(rows) == 0:
        return out
    before_scores, before_contrib = bundle.score(earlier.X[rows], explain=True, threads=threads)
    same = _unchanged(np.asarray(X[rows], dtype=float), np.asarray(earlier.X[rows], dtype=float))
    picks = {}
    for target, now_c in contributions.items():
        delta = now_c[rows] - before_contrib[target]
        delta[:, :-1][same] = 0.0  # only the features whose value changed are listed
        index = pick_drivers(delta, top_k)
        picked = np.take_along_axis(delta, np.maximum(index, 0), axis=1)
        raw = scores[f"{target}_raw"][rows]
        picks[target] = (index, picked, bundle.effects(target, raw, picked))
    features = bundle.features
    describe = bundle.catalog.describe
    p_detractor_before = before_scores["p_detractor"]
    for j, r in enumerate(rows):
        totals, items, clauses = {}, [], []
        for target, (index, picked, effect) in picks.items():
            key, name, show, points = _OUTPUTS[target]
            after, before = float(scores[key][r]), float(before_scores[key][j])
            totals[key] = {"before": round(before, 6), "after": round(after, 6)}
            parts = []
            for k in range(index.shape[1]):
                i = int(index[j, k])
                if i < 0:
                    break
                feature = features[i]
                now_v, then_v = (
                    plain_value(value_of(r, feature)),
                    plain_value(earlier.value_of(r, feature)),
                )
                e = float(effect[j, k])
                items.append(
                    {
                        "feature": feature,
                        "target": target,
                        "before": then_v,
                        "after": now_v,
                        "contribution_change": round(float(picked[j, k]), 6),
                        "effect": None if math.isnan(e) else round(e, 6),
                        "description": describe(feature, now_v),
                    }
                )
                moved = "" if math.isnan(e) else f" ({points(e)})"
                parts.append(
                    f"{label(feature)} {value_words(then_v)} → {value_words(now_v)}{moved}"
                )
            since = f" since {earlier.since}" if not clauses else ""
            head = f"{name} {show(before)} → {show(after)}{since}"
            clauses.append(f"{head}: {', '.join(parts)}" if parts else head)
        churn_before = totals.get("churn_probability", {}).get("before", math.nan)
        out[r] = {
            "since": earlier.since,
            "churn_probability": totals.get("churn_probability"),
            "predicted_nps": totals.get("predicted_nps"),
            "previous_risk_tier": tier_of(float(churn_before), float(p_detractor_before[j])),
            "features": items,
            "summary": "; ".join(clauses),
        }
    return out
