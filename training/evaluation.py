"""Metrics for both heads, per segment, for the model, the baselines and the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    mean_absolute_error,
    roc_auc_score,
)

from features.contract import NPS_CATEGORIES
from training.models import category_codes

# Higher is better for these; lower for the rest.
HIGHER_IS_BETTER = {"roc_auc", "pr_auc", "lift_top_decile", "detractor_roc_auc", "macro_f1"}
PRIMARY_METRIC = {"churn": "roc_auc", "nps": "mae"}
MIN_SEGMENT_ROWS = 30
TENURE_BANDS = (
    (0, 180, "0-6 months"),
    (180, 365, "6-12 months"),
    (365, 730, "1-2 years"),
    (730, np.inf, "2+ years"),
)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-width probability bins, weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return float(total / len(y))


def lift_at(y: np.ndarray, p: np.ndarray, share: float = 0.1) -> float:
    """Churn rate among the top ``share`` by predicted risk, over the overall rate."""
    if y.mean() == 0:
        return float("nan")
    k = max(1, round(share * len(y)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def churn_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y, p = np.asarray(y, float), np.asarray(p, float)
    ok = ~np.isnan(p) & ~np.isnan(y)
    y, p = y[ok], p[ok]
    out = {"n": float(len(y)), "churn_rate": float(y.mean()) if len(y) else float("nan")}
    two_classes = len(y) > 0 and 0 < y.sum() < len(y)
    out["roc_auc"] = float(roc_auc_score(y, p)) if two_classes else float("nan")
    out["pr_auc"] = float(average_precision_score(y, p)) if two_classes else float("nan")
    out["brier"] = float(brier_score_loss(y, p)) if len(y) else float("nan")
    out["calibration_error"] = expected_calibration_error(y, p) if len(y) else float("nan")
    out["lift_top_decile"] = lift_at(y, p) if two_classes else float("nan")
    return out


def nps_metrics(score: np.ndarray, predicted: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """MAE of the score, detractor ROC-AUC and macro-F1 of the argmax category."""
    score, predicted = np.asarray(score, float), np.asarray(predicted, float)
    ok = ~np.isnan(score) & ~np.isnan(predicted)
    score, predicted, probs = score[ok], predicted[ok], probs[ok]
    out = {"n": float(len(score))}
    if not len(score):
        return out | {"mae": np.nan, "detractor_roc_auc": np.nan, "macro_f1": np.nan}
    codes = category_codes(score)
    is_detractor = (codes == 0).astype(float)
    out["mae"] = float(mean_absolute_error(score, predicted))
    out["detractor_roc_auc"] = (
        float(roc_auc_score(is_detractor, probs[:, 0]))
        if 0 < is_detractor.sum() < len(is_detractor)
        else float("nan")
    )
    out["macro_f1"] = float(
        f1_score(
            codes, np.argmax(probs, axis=1), labels=[0, 1, 2], average="macro", zero_division=0
        )
    )
    return out


def tenure_band(tenure_days: pd.Series) -> pd.Series:
    out = pd.Series("unknown", index=tenure_days.index, dtype=object)
    for low, high, label in TENURE_BANDS:
        out[(tenure_days >= low) & (tenure_days < high)] = label
    return out


def segment_columns(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The segments every metric is broken down by: plan tier (if any) and tenure band."""
    segments: dict[str, pd.Series] = {"all": pd.Series("all", index=frame.index)}
    if "plan_tier" in frame:
        segments["plan_tier"] = frame["plan_tier"].fillna("unknown").astype(str)
    if "tenure_days" in frame:
        segments["tenure_band"] = tenure_band(frame["tenure_days"])
    return segments


def evaluate_predictions(frame: pd.DataFrame, predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Tidy metrics: one row per (model, target, segment, metric).

    ``frame`` holds the validation rows with labels (``churned``, ``nps_score``) and segment
    columns; each prediction frame is aligned with it row for row.
    """
    rows = []
    for seg_name, seg in segment_columns(frame).items():
        for seg_value in sorted(seg.unique()):
            mask = (seg == seg_value).to_numpy()
            if mask.sum() < MIN_SEGMENT_ROWS and seg_name != "all":
                continue
            sub = frame[mask]
            for model, pred in predictions.items():
                p = pred[mask]
                if (
                    "churned" in sub
                    and sub["churned"].notna().any()
                    and p["churn_probability"].notna().any()
                ):
                    for metric, value in churn_metrics(
                        sub["churned"].to_numpy(), p["churn_probability"].to_numpy()
                    ).items():
                        rows.append((model, "churn", seg_name, seg_value, metric, value))
                answered = (
                    sub["nps_score"].notna().to_numpy()
                    if "nps_score" in sub
                    else np.zeros(len(sub), bool)
                )
                if answered.any() and p["predicted_nps"].notna().any():
                    probs = p[[f"p_{c}" for c in NPS_CATEGORIES]].to_numpy()[answered]
                    metrics = nps_metrics(
                        sub["nps_score"].to_numpy()[answered],
                        p["predicted_nps"].to_numpy()[answered],
                        probs,
                    )
                    for metric, value in metrics.items():
                        rows.append((model, "nps", seg_name, seg_value, metric, value))
    return pd.DataFrame(
        rows, columns=["model", "target", "segment", "segment_value", "metric", "value"]
    )


def headline(metrics: pd.DataFrame) -> pd.DataFrame:
    """The overall metrics as a model-by-metric table, for printing."""
    overall = metrics[(metrics["segment"] == "all") & (metrics["metric"] != "n")]
    table = overall.pivot_table(index="model", columns=["target", "metric"], values="value")
    return table.sort_index(axis=1)


def validation_metrics(metrics: pd.DataFrame, model: str) -> dict[str, dict[str, float]]:
    """One model's overall held-out metrics per target: {'churn': {'roc_auc': 0.78, ...}}."""
    overall = metrics[(metrics["model"] == model) & (metrics["segment"] == "all")]
    out: dict[str, dict[str, float]] = {}
    for row in overall.itertuples():
        if not np.isnan(row.value):
            out.setdefault(str(row.target), {})[str(row.metric)] = round(float(row.value), 6)
    return out


def primary_metrics(metrics: pd.DataFrame, model: str) -> dict[str, float]:
    """The promotion metric of each head for one model: {'churn': auc, 'nps': mae}."""
    out = {}
    for target, metric in PRIMARY_METRIC.items():
        hit = metrics[
            (metrics["model"] == model)
            & (metrics["target"] == target)
            & (metrics["segment"] == "all")
            & (metrics["metric"] == metric)
        ]
        if len(hit) and not np.isnan(hit["value"].iloc[0]):
            out[target] = float(hit["value"].iloc[0])
    return out


def oracle_predictions(frame: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame | None:
    """Predictions of the best achievable model, from the demo generator's ground truth."""
    merged = frame[["customer_id", "as_of"]].merge(
        truth.assign(as_of=pd.to_datetime(truth["as_of"]).dt.normalize()),
        on=["customer_id", "as_of"],
        how="left",
    )
    if merged["true_churn_probability"].isna().all():
        return None
    return pd.DataFrame(
        {
            "churn_probability": merged["true_churn_probability"].to_numpy(),
            "predicted_nps": merged["expected_nps"].to_numpy(),
            "p_detractor": merged["p_detractor"].to_numpy(),
            "p_passive": merged["p_passive"].to_numpy(),
            "p_promoter": merged["p_promoter"].to_numpy(),
        }
    )
