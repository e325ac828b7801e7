import numpy as np
import pandas as pd
import pytest

from training.evaluation import (
    churn_metrics,
    evaluate_predictions,
    expected_calibration_error,
    lift_at,
    nps_metrics,
    tenure_band,
)


def test_calibration_error_of_known_cases():
    y = np.array([0, 0, 1, 1])
    assert expected_calibration_error(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.array([0.0, 0.0, 0.0, 0.0])) == pytest.approx(0.5)


def test_lift_in_the_top_decile():
    y = np.array([1] + [0] * 19)
    p = np.linspace(1, 0, 20)
    assert lift_at(y, p, 0.1) == pytest.approx(0.5 / 0.05)


def test_churn_metrics_of_a_perfect_and_a_useless_model():
    y = np.array([0, 1] * 50)
    perfect = churn_metrics(y, y.astype(float))
    assert perfect["roc_auc"] == 1.0 and perfect["brier"] == 0.0
    useless = churn_metrics(y, np.full(100, 0.5))
    assert useless["roc_auc"] == 0.5 and useless["calibration_error"] == pytest.approx(0.0)


def test_nps_metrics():
    score = np.array([0, 5, 7, 8, 9, 10])
    probs = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], float)
    out = nps_metrics(score, score.astype(float), probs)
    assert out["mae"] == 0 and out["detractor_roc_auc"] == 1 and out["macro_f1"] == 1


def test_metrics_are_reported_per_segment():
    n = 200
    frame = pd.DataFrame(
        {
            "churned": np.tile([0.0, 1.0], n // 2),
            "nps_score": np.where(np.arange(n) % 3 == 0, 9.0, np.nan),
            "plan_tier": np.repeat(["pro", "starter"], n // 2),
            "tenure_days": np.tile([10.0, 400.0], n // 2),
        }
    )
    preds = pd.DataFrame(
        {
            "churn_probability": frame["churned"] * 0.8 + 0.1,
            "predicted_nps": 8.0,
            "p_detractor": 0.1,
            "p_passive": 0.3,
            "p_promoter": 0.6,
        }
    )
    metrics = evaluate_predictions(frame, {"m": preds})
    segments = set(zip(metrics["segment"], metrics["segment_value"], strict=True))
    assert {
        ("all", "all"),
        ("plan_tier", "pro"),
        ("tenure_band", "0-6 months"),
        ("tenure_band", "1-2 years"),
    } <= segments
    auc = metrics.query("segment == 'plan_tier' and metric == 'roc_auc'")["value"]
    assert (auc == 1.0).all()


def test_tenure_bands():
    assert tenure_band(pd.Series([0, 200, 400, 1000, np.nan])).tolist() == [
        "0-6 months",
        "6-12 months",
        "1-2 years",
        "2+ years",
        "unknown",
    ]
