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

from features.contract import NPS_CATEGORIES
from npsrisk.settings import RiskTierSettings
from serving.changes import Earlier, explain_changes, plain_value
from training.bundle import ModelBundle

ValueOf = Callable[[int, str], Any]  # (row, feature) -> the raw value to show


@dataclass(frozen=True)
class ModelCard:
    """What a response says about the model that produced it."""

    name: str
    version: str
    trained_at: str | None
    predicts: tuple[str, ...]

    @classmethod
    def of(cls, name: str, version: str, bundle: ModelBundle) -> ModelCard:
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


def risk_tiers(churn: np.ndarray, detractor: np.ndarray, tiers: RiskTierSettings) -> np.ndarray:
    """``risk_tier`` of every row at once (None where neither probability exists)."""
    churn, detractor = np.asarray(churn, float), np.asarray(detractor, float)
    by_churn = np.where(
        churn >= tiers.churn_high, "high", np.where(churn >= tiers.churn_medium, "medium", "low")
    )
    by_detractor = np.where(
        detractor >= tiers.detractor_high,
        "high",
        np.where(detractor >= tiers.detractor_medium, "medium", "low"),
    )
    out = np.where(~np.isnan(churn), by_churn, by_detractor).astype(object)
    out[np.isnan(churn) & np.isnan(detractor)] = None
    return out


def pick_drivers(contributions: np.ndarray, top_k: int) -> np.ndarray:
    """For every row at once, the feature indices of the ``top_k`` largest |contributions|
    (the last column, the base value, is not a feature): largest first, ties broken by
    feature order so the output is deterministic; -1 where the contribution is 0 (a feature
    the model never split on explains nothing)."""
    values = np.abs(contributions[:, :-1])
    k = min(top_k, values.shape[1])
    if k == 0 or len(values) == 0:
        return np.empty((len(values), 0), dtype=np.int64)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(values, order, axis=1) == 0.0, -1, order)


def explain_picks(
    bundle: ModelBundle,
    scores: dict[str, np.ndarray],
    contributions: dict[str, np.ndarray],
    top_k: int,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Drivers for the whole matrix at once, per target (churn first, then NPS): the feature
    indices (n x top_k, -1 past the last driver), their contributions and their effects
    (through each head's calibration, vectorised). ``predict_rows`` and the batch path's
    columns are both made from these."""
    picks = {}
    for target, contrib in contributions.items():
        index = pick_drivers(contrib, top_k)
        picked = np.take_along_axis(contrib, np.maximum(index, 0), axis=1)
        effect = bundle.effects(target, scores[f"{target}_raw"], picked)
        picks[target] = (index, picked, effect)
    return picks


def predict_rows(
    bundle: ModelBundle,
    X: np.ndarray,
    customer_ids: Sequence[str | None],
    value_of: ValueOf,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
    threads: int | None = None,
    earlier: Earlier | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Prediction dicts for encoded rows, and the raw scores (for the inference log).

    With ``explain`` and ``earlier`` (the same customers at the previous materialization),
    each prediction also says why it moved since then (``serving.changes``)."""
    scores, contributions = bundle.score(X, explain=explain, threads=threads)
    churn, nps = scores["churn_probability"], scores["predicted_nps"]
    probs = np.column_stack([scores[f"p_{c}"] for c in NPS_CATEGORIES])
    features = bundle.features
    picks = explain_picks(bundle, scores, contributions, top_k) if explain else {}
    described: dict[tuple[str, Any], str] = {}
    describe = bundle.catalog.describe

    def drivers_of(target: str, r: int) -> list[dict[str, Any]]:
        index, picked, effect = picks[target]
        drivers = []
        for j in range(index.shape[1]):
            i = int(index[r, j])
            if i < 0:
                break
            feature = features[i]
            value = plain_value(value_of(r, feature))
            key = (feature, value)
            if key not in described:
                described[key] = describe(feature, value)
            e = float(effect[r, j])
            drivers.append(
                {
                    "feature": feature,
                    "value": value,
                    "contribution": round(float(picked[r, j]), 6),
                    "effect": None if math.isnan(e) else round(e, 6),
                    "target": target,
                    "description": described[key],
                }
            )
        return drivers

    changes: list[dict[str, Any] | None] | None = None
    if explain and earlier is not None:
        changes = explain_changes(
            bundle,
            X,
            scores,
            contributions,
            value_of,
            earlier,
            top_k,
            lambda churn, detractor: risk_tier(churn, detractor, tiers),
            threads,
        )
    tier_of = risk_tiers(churn, probs[:, 0], tiers)
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
            "risk_tier": tier_of[r],
        }
        if explain:
            row["score_distribution"] = (
                [round(float(p), 6) for p in scores["nps_distribution"][r]] if has_nps else None
            )
            row["drivers"] = [d for target in picks for d in drivers_of(target, r)]
            if changes is not None:
                row["change"] = changes[r]
        out.append(row)
    return out, scores
