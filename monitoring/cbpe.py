"""Performance before the labels arrive: confidence-based performance estimation (CBPE, as
NannyML does it, written here because nannyml pins an older LightGBM).

The churn probabilities are calibrated, so each customer churns with probability p_i. Every
expectation below is over labels drawn that way: the expected churn rate is the mean p, the
expected ROC-AUC weighs each (churner, stayer) pair by p_i (1 - p_j), and the expected
calibration error is the error a perfectly calibrated model shows at this sample size (the
floor the realized error is judged against). Pure functions on arrays and frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.evaluation import expected_calibration_error

ECE_DRAWS = 50


def expected_roc_auc(p: np.ndarray) -> float:
    """E[#correctly ordered pairs] / E[#pairs], with the score being p itself (ties: half)."""
    p = np.asarray(p, dtype=float)
    p = p[~np.isnan(p)]
    if len(p) < 2:
        return float("nan")
    _, inverse = np.unique(p, return_inverse=True)
    pos = np.bincount(inverse, weights=p)  # expected churners at each distinct score
    neg = np.bincount(inverse, weights=1 - p)  # expected stayers
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # stayers with a lower score
    ordered = float(np.sum(pos * below))
    # Ties (same score) count half, without pairing a customer with themself.
    tied = float(np.sum(pos * neg) - np.sum(p * (1 - p)))
    pairs = float(p.sum() * (1 - p).sum() - np.sum(p * (1 - p)))
    return (ordered + 0.5 * tied) / pairs if pairs > 0 else float("nan")


def expected_ece(p: np.ndarray, draws: int = ECE_DRAWS, seed: int = 0) -> float:
    """Mean calibration error of a perfectly calibrated model on this many rows."""
    p = np.asarray(p, dtype=float)
    p = p[~np.isnan(p)]
    if not len(p):
        return float("nan")
    rng = np.random.default_rng(seed)
    return float(
        np.mean(
            [
                expected_calibration_error((rng.random(len(p)) < p).astype(float), p)
                for _ in range(draws)
            ]
        )
    )


def estimate(frame: pd.DataFrame, seed: int = 0) -> dict[str, float]:
    """The window's expected churn figures and its predicted NPS."""
    out: dict[str, float] = {"n": float(len(frame))}
    if "churn_probability" in frame and frame["churn_probability"].notna().any():
        p = frame["churn_probability"].to_numpy(dtype=float)
        p = p[~np.isnan(p)]
        out["expected_churn_rate"] = float(p.mean())
        out["expected_roc_auc"] = expected_roc_auc(p)
        out["expected_brier"] = float(np.mean(p * (1 - p)))
        out["expected_calibration_error"] = expected_ece(p, seed=seed)
    if "p_promoter" in frame and frame["p_promoter"].notna().any():
        out["predicted_nps"] = float(
            100 * (frame["p_promoter"].mean() - frame["p_detractor"].mean())
        )
    if "predicted_nps" in frame and frame["predicted_nps"].notna().any():
        out["mean_predicted_score"] = float(frame["predicted_nps"].mean())
    return out


def estimate_by(
    frame: pd.DataFrame, period: str, segment_columns: list[str], min_rows: int = 1
) -> pd.DataFrame:
    """``estimate`` per period, overall and per segment value: tidy rows."""
    rows = []
    for when, group in frame.groupby(period, sort=True):
        rows.append({"period": when, "segment": "all", "value": "all", **estimate(group)})
        for seg in segment_columns:
            if seg not in group:
                continue
            for value, sub in group.groupby(group[seg].astype(str), sort=True):
                if len(sub) >= min_rows:
                    rows.append({"period": when, "segment": seg, "value": value, **estimate(sub)})
    return pd.DataFrame(rows)
