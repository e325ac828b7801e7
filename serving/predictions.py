"""Prediction objects of the API contract from a model bundle and feature rows.

One code path serves `/predict`, `/predict_features` and batch scoring, so a customer's
prediction is the same whichever way it was asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.catalog import describe_feature
from features.contract import NPS_CATEGORIES
from npsrisk.settings import RiskTierSettings
from training.bundle import NpsRiskModel

ValueOf = Callable[[int, str], Any]  # (row, feature) -> the raw value to show


@dataclass(frozen=True)
class ModelCard:
    """What a response says about the model that produced it."""

    name: str
    version: str
    trained_at: str | None
    predicts: tuple[str, ...]

    @classmethod
    def of(cls, name: str, version: str, bundle: NpsRiskModel) -> ModelCard:
        return cls(name, str(version), bundle.info.get("trained_at"), tuple(bundle.heads))

    def to_dict(self) -> dict[str, Any]:
        missing = [t for t in ("churn", "nps") if t not in self.predicts]
        note = None
        if missing:
            labels = {"churn": "churn labels", "nps": "NPS labels"}
            fields = {"churn": "churn_probability", "nps": "the NPS fields"}
            note = "; ".join(f"trained without {labels[t]}: {fields[t]} are null" for t in missing)
        return {
            "name": self.name,
            "version": self.version,
            "trained_at": self.trained_at,
            "predicts": list(self.predicts),
            "note": note,
        }


def risk_tier(churn: float, detractor: float, tiers: RiskTierSettings) -> str | None:
    """'high' / 'medium' / 'low' from churn probability, else from detractor probability."""
    if not math.isnan(churn):
        return (
            "high"
            if churn >= tiers.churn_high
            else "medium"
            if churn >= tiers.churn_medium
            else "low"
        )
    if not math.isnan(detractor):
        return (
            "high"
            if detractor >= tiers.detractor_high
            else "medium"
            if detractor >= tiers.detractor_medium
            else "low"
        )
    return None


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def top_drivers(
    contributions: np.ndarray,
    features: Sequence[str],
    value_of: Callable[[str], Any],
    target: str,
    top_k: int,
    describe: Callable[[str, Any], str] = describe_feature,
    effect_of: Callable[[float], float] | None = None,
) -> list[dict[str, Any]]:
    """The ``top_k`` largest |contributions| of one row (last column is the base value).

    ``describe`` says a value in words (a model's ``catalog.describe``); ``effect_of
    (contribution)`` gives the driver's effect in the output's own units (churn probability
    or expected NPS), computed through the head's calibration.
    """
    values = contributions[:-1]
    k = min(top_k, len(values))
    if k == 0:
        return []
    magnitude = np.abs(values)
    picked = np.argpartition(-magnitude, k - 1)[:k] if k < len(values) else np.arange(len(values))
    # Largest first; ties broken by feature order so the output is deterministic.
    picked = sorted(picked, key=lambda i: (-magnitude[i], i))
    drivers = []
    for i in picked:
        if magnitude[i] == 0.0:
            break  # a feature the model never split on explains nothing
        feature = features[i]
        value = _plain(value_of(feature))
        effect = None if effect_of is None else effect_of(float(values[i]))
        drivers.append(
            {
                "feature": feature,
                "value": value,
                "contribution": round(float(values[i]), 6),
                "effect": None if effect is None or math.isnan(effect) else round(effect, 6),
                "target": target,
                "description": describe(feature, value),
            }
        )
    return drivers


def predict_rows(
    bundle: NpsRiskModel,
    X: np.ndarray,
    customer_ids: Sequence[str | None],
    value_of: ValueOf,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
    threads: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Prediction dicts for encoded rows, and the raw scores (for the inference log)."""
    scores, contributions = bundle.score(X, explain=explain, threads=threads)
    churn, nps = scores["churn_probability"], scores["predicted_nps"]
    probs = np.column_stack([scores[f"p_{c}"] for c in NPS_CATEGORIES])
    features = bundle.features
    describe = bundle.catalog.describe
    out = []
    for r, customer_id in enumerate(customer_ids):
        has_nps = not math.isnan(nps[r])
        row = {
            "customer_id": customer_id,
            "churn_probability": None if math.isnan(churn[r]) else round(float(churn[r]), 6),
            "predicted_nps": round(float(nps[r]), 4) if has_nps else None,
            "nps_category": NPS_CATEGORIES[int(np.argmax(probs[r]))] if has_nps else None,
            "category_probabilities": (
                {c: round(float(probs[r, k]), 6) for k, c in enumerate(NPS_CATEGORIES)}
                if has_nps
                else None
            ),
            "risk_tier": risk_tier(float(churn[r]), float(probs[r, 0]), tiers),
        }
        if explain:
            row["score_distribution"] = (
                [round(float(p), 6) for p in scores["nps_distribution"][r]] if has_nps else None
            )
            row["drivers"] = [
                driver
                for target, contrib in contributions.items()
                for driver in top_drivers(
                    contrib[r],
                    features,
                    lambda f, r=r: value_of(r, f),
                    target,
                    top_k,
                    describe,
                    lambda c, t=target, raw=float(scores[f"{target}_raw"][r]): bundle.effect(
                        t, raw, c
                    ),
                )
            ]
        out.append(row)
    return out, scores
