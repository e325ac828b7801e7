"""Resolution and coherence of a trained champion's scores on its own held-out window.

Counts what issue 8 measured: distinct churn probabilities, the largest group of customers
sharing one value, probabilities of exactly 0 or 1, how often ``nps_category`` disagrees with
the category of ``predicted_nps``, and the README's what-if (0 vs 4 open tickets).

    NPSRISK_HOME=HOME uv run python benchmarks/score_resolution.py DATA
"""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from features.loading import load_tables
from features.validation import validate_tables
from npsrisk.settings import load_settings
from training.evaluation import expected_calibration_error, nps_metrics, segment_columns
from training.snapshots import active_customers, build_snapshots


def category_of(score: np.ndarray) -> np.ndarray:
    """The category a predicted score falls in, rounded to the nearest whole score."""
    return np.select([score < 6.5, score < 8.5], ["detractor", "passive"], "promoter")


def main(data: Path) -> None:
    settings = load_settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    name = settings.registry.model_name
    bundle = mlflow.pyfunc.load_model(f"models:/{name}@champion").unwrap_python_model()
    tables = validate_tables(load_tables(data))
    window = [pd.Timestamp(d) for d in bundle.info["validation_window"]]
    pairs = pd.concat(
        [pd.DataFrame({"customer_id": active_customers(tables, d), "as_of": d}) for d in window]
    )
    frame = bundle.features_for(tables, pairs)
    out = bundle.predict_frame(frame)
    p = out["churn_probability"].to_numpy()
    print(f"held-out window {', '.join(str(d.date()) for d in window)}: {len(p):,} rows")
    for d in window:
        at = (frame["as_of"] == d).to_numpy()
        print(
            f"  {d.date()}: {at.sum():,} customers, {len(np.unique(p[at])):,} distinct churn "
            f"probabilities ({len(np.unique(p[at])) / at.sum():.1%})"
        )
    values, counts = np.unique(p, return_counts=True)
    print(
        f"distinct churn probabilities: {len(values):,} of {len(p):,} ({len(values) / len(p):.1%})"
    )
    print(f"largest group sharing one value: {counts.max():,}")
    print(f"exactly 0: {(p == 0).sum()}, exactly 1: {(p == 1).sum()}")
    disagree = out["nps_category"].to_numpy() != category_of(out["predicted_nps"].to_numpy())
    print(
        f"nps_category differs from the category of predicted_nps: {disagree.sum():,} of {len(p):,}"
    )
    probs = out[["p_detractor", "p_passive", "p_promoter"]].to_numpy()
    argmax = np.array(["detractor", "passive", "promoter"])[probs.argmax(axis=1)]
    off = (argmax != out["nps_category"]).sum()
    print(f"nps_category differs from its largest probability: {off}")
    # Labels of the window: NPS quality and calibration of the category probabilities, and the
    # churn calibration error per segment.
    labelled = build_snapshots(tables, window, int(bundle.info["horizon_days"]))
    labelled = frame[["customer_id", "as_of"]].merge(labelled, on=["customer_id", "as_of"])
    answered = labelled["responded"].to_numpy()
    score = labelled["nps_score"].to_numpy(dtype=float)[answered]
    m = nps_metrics(score, out["predicted_nps"].to_numpy()[answered], probs[answered])
    codes = np.select([score <= 6, score <= 8], [0, 1], 2)
    ece = [
        expected_calibration_error((codes == k).astype(float), probs[answered][:, k])
        for k in range(3)
    ]
    print(
        f"NPS on {answered.sum():,} respondents: MAE {m['mae']:.4f}, detractor AUC "
        f"{m['detractor_roc_auc']:.4f}, macro-F1 {m['macro_f1']:.4f}, category calibration "
        f"error detractor/passive/promoter {ece[0]:.4f}/{ece[1]:.4f}/{ece[2]:.4f}"
    )
    y = labelled["churned"].to_numpy(dtype=float)
    print("churn calibration error (ECE, 10 bins) by segment:")
    for name, seg in segment_columns(frame.reset_index(drop=True)).items():
        for value in sorted(seg.unique()):
            at = (seg == value).to_numpy()
            if at.sum() >= 30:
                err = expected_calibration_error(y[at], p[at])
                print(
                    f"  {name}={value}: {err:.4f} (n={at.sum():,}, churn rate {y[at].mean():.3f})"
                )
    what_if = pd.DataFrame([{"plan_tier": "pro", "tickets_open": t} for t in (0, 4, 10)])
    scored = bundle.predict_frame(what_if)
    print("README what-if {plan_tier: pro, tickets_open: 0 / 4 / 10}:")
    print(
        scored[["churn_probability", "predicted_nps", "nps_category"]]
        .assign(tickets_open=[0, 4, 10])
        .to_string(index=False)
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
