"""Realized performance: the predictions that were made, joined with the outcomes that
followed within the horizon, per period and segment, against the model's figures at
training time and against the CBPE estimate; decay flagged with a bootstrap interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.cbpe import estimate
from monitoring.reference import PREDICTION_COLUMNS, PROBABILITY_COLUMNS
from training.evaluation import churn_metrics, nps_metrics, tenure_band

# Metric -> is higher better; the ones decay is judged on carry a threshold setting.
METRICS = {
    "roc_auc": True,
    "pr_auc": True,
    "calibration_error": False,
    "brier": False,
    "mae": False,
    "detractor_recall": True,
    "detractor_precision": True,
}
DECAY_METRICS = {"roc_auc": "decay_auc", "mae": "decay_mae"}
PREDICTED = ["customer_id", *PREDICTION_COLUMNS, *PROBABILITY_COLUMNS]


def realized_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """Churn ROC-AUC, PR-AUC, calibration error and Brier over everyone with a churn label;
    NPS MAE and detractor recall and precision over those who answered a survey."""
    out: dict[str, float] = {}
    if "churned" in frame and frame["churned"].notna().any() and "churn_probability" in frame:
        m = churn_metrics(frame["churned"].to_numpy(), frame["churn_probability"].to_numpy())
        out.update(
            {
                k: m[k]
                for k in ("n", "churn_rate", "roc_auc", "pr_auc", "brier", "calibration_error")
            }
        )
    answered = frame[frame.get("responded", pd.Series(False, index=frame.index)).astype(bool)]
    answered = answered[answered["predicted_nps"].notna()] if "predicted_nps" in answered else []
    if len(answered):
        probs = answered[list(PROBABILITY_COLUMNS)].to_numpy(dtype=float)
        nps = nps_metrics(
            answered["nps_score"].to_numpy(), answered["predicted_nps"].to_numpy(), probs
        )
        out["n_answered"] = nps["n"]
        out["mae"] = nps["mae"]
        actual = answered["nps_score"].to_numpy() <= 6
        predicted = (answered["nps_category"] == "detractor").to_numpy()
        out["detractor_recall"] = (
            float((actual & predicted).sum() / actual.sum()) if actual.any() else float("nan")
        )
        out["detractor_precision"] = (
            float((actual & predicted).sum() / predicted.sum()) if predicted.any() else float("nan")
        )
    return out


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC by ranks (ties averaged): the bootstrap calls it hundreds of times."""
    from scipy.stats import rankdata

    positives = y == 1
    n_pos = int(positives.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_interval(
    frame: pd.DataFrame, metric: str, draws: int, seed: int = 0, level: float = 0.9
) -> tuple[float, float]:
    """Percentile interval of ``metric`` (roc_auc or mae) over customer resamples."""
    if metric == "roc_auc":
        ok = frame["churned"].notna() & frame["churn_probability"].notna()
        a = frame.loc[ok, "churned"].to_numpy(dtype=float)
        b = frame.loc[ok, "churn_probability"].to_numpy(dtype=float)

        def compute(idx):
            return _auc(a[idx], b[idx])
    else:
        ok = frame["nps_score"].notna() & frame["predicted_nps"].notna()
        err = np.abs(
            frame.loc[ok, "nps_score"].to_numpy(dtype=float)
            - frame.loc[ok, "predicted_nps"].to_numpy(dtype=float)
        )

        def compute(idx):
            return float(err[idx].mean())

    n = int(ok.sum())
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.array([compute(rng.integers(0, n, n)) for _ in range(draws)])
    values = values[~np.isnan(values)]
    if len(values) < draws // 2:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def judge_decay(
    metric: str,
    realized: float,
    interval: tuple[float, float],
    training: float,
    threshold: float,
    n: float,
    min_rows: int,
) -> tuple[bool, str]:
    """Decay when the metric moved the wrong way by more than ``threshold`` and the interval
    excludes the training figure: a small or noisy segment cannot raise it."""
    if np.isnan(realized) or np.isnan(training):
        return False, "no figure to compare"
    if n < min_rows:
        return False, f"only {int(n)} labelled rows (need {min_rows}): not judged"
    higher = METRICS[metric]
    lo, hi = interval
    moved = (training - realized) if higher else (realized - training)
    outside = (hi < training) if higher else (lo > training)
    if moved > threshold and outside:
        return (
            True,
            f"{metric} {realized:.3f} vs {training:.3f} at training, interval [{lo:.3f}, {hi:.3f}]",
        )
    return False, "within tolerance"


def segment_frames(frame: pd.DataFrame, segment_columns: list[str]):
    yield "all", "all", frame
    for seg in segment_columns:
        if seg in frame:
            for value, sub in frame.groupby(frame[seg].astype(str), sort=True):
                yield seg, value, sub


def performance_table(
    joined: pd.DataFrame,
    training: dict[tuple[str, str], dict[str, float]],
    settings,
    period: str = "period",
) -> pd.DataFrame:
    """One row per period x segment: realized figures with intervals, the CBPE estimate,
    the training-time figures, and the decay flags."""
    m = settings.monitoring
    rows = []
    for when, group in joined.groupby(period, sort=True):
        for seg, value, sub in segment_frames(group, m.segment_columns):
            real = realized_metrics(sub)
            est = estimate(sub)
            base = training.get((seg, value), {})
            row = {
                "period": str(pd.Timestamp(when).date()),
                "segment": seg,
                "value": value,
                "model_version": ",".join(sorted(sub["model_version"].astype(str).unique())),
                **real,
                **est,
            }
            for metric in METRICS:
                row[f"training_{metric}"] = base.get(metric, np.nan)
            reasons = []
            for metric, setting in DECAY_METRICS.items():
                if metric not in real:
                    continue
                n = real.get("n" if metric == "roc_auc" else "n_answered", 0)
                labelled = sub if metric == "roc_auc" else sub[sub["responded"].astype(bool)]
                interval = (
                    bootstrap_interval(labelled, metric, m.bootstrap, seed=len(rows))
                    if n >= m.min_labelled_rows
                    else (np.nan, np.nan)
                )
                row[f"{metric}_low"], row[f"{metric}_high"] = interval
                decayed, why = judge_decay(
                    metric,
                    real[metric],
                    interval,
                    base.get(metric, np.nan),
                    getattr(m, setting),
                    n,
                    m.min_labelled_rows,
                )
                row[f"{metric}_decayed"] = decayed
                if decayed:
                    reasons.append(why)
            row["decayed"] = bool(reasons)
            row["decay_reasons"] = "; ".join(reasons)
            rows.append(row)
    return pd.DataFrame(rows)


def training_figures(reference_frame: pd.DataFrame, segment_columns: list[str]):
    """The model's own figures on its validation window, overall and per segment."""
    frame = reference_frame
    if "tenure_days" in frame and "tenure_band" not in frame:
        frame = frame.assign(tenure_band=tenure_band(frame["tenure_days"]).values)
    return {
        (seg, value): realized_metrics(sub)
        for seg, value, sub in segment_frames(frame, segment_columns)
    }


def latest_per_period(
    predictions: pd.DataFrame, periods: list[pd.Timestamp], period_days: int
) -> pd.DataFrame:
    """For each period's as-of date A, each customer's latest prediction made in
    (A - period_days, A]: what the success team was looking at when the window opened."""
    parts = []
    for when in periods:
        inside = (predictions["predicted_at"] <= when) & (
            predictions["predicted_at"] > when - pd.Timedelta(days=period_days)
        )
        latest = (
            predictions[inside]
            .sort_values("predicted_at", kind="stable")
            .drop_duplicates("customer_id", keep="last")
        )
        parts.append(latest.assign(period=when))
    if not parts:
        return predictions.iloc[:0].assign(period=pd.NaT)
    return pd.concat(parts, ignore_index=True)


def predictions_from_batches(paths) -> pd.DataFrame:
    from serving.batch import read_batch_output

    frames = []
    for path in paths:
        frame = read_batch_output(path, [*PREDICTED, "features_as_of", "model_version"])
        frame["predicted_at"] = pd.to_datetime(frame.pop("features_as_of"))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PREDICTED)


def predictions_from_log(log_path) -> pd.DataFrame:
    from serving.inference_log import read_inference_log

    log = read_inference_log(log_path)
    if log.empty:
        return pd.DataFrame(columns=[*PREDICTED, "predicted_at", "model_version"])
    log = log[log["customer_id"].notna()]
    outputs = pd.DataFrame.from_records(log["outputs"].tolist())
    probs = outputs.pop("category_probabilities") if "category_probabilities" in outputs else None
    frame = pd.DataFrame(
        {
            "customer_id": log["customer_id"].to_numpy(),
            "model_version": log["model_version"].astype(str).to_numpy(),
            # The features' date, not the request's: a prediction is as old as its inputs.
            "predicted_at": pd.to_datetime(
                log["features_as_of"].fillna(log["logged_at"].str[:10])
            ).to_numpy(),
        }
    )
    for column in PREDICTION_COLUMNS:
        frame[column] = outputs[column].to_numpy() if column in outputs else np.nan
    for name in ("detractor", "passive", "promoter"):
        frame[f"p_{name}"] = [
            p.get(name) if isinstance(p, dict) else np.nan
            for p in (probs if probs is not None else [None] * len(frame))
        ]
    return frame


def join_outcomes(
    predictions: pd.DataFrame, tables, horizon_days: int
) -> tuple[pd.DataFrame, list[str]]:
    """Each (customer, period) prediction with its outcomes in (period, period + horizon]
    and its segments at the period; periods whose horizon has not passed are left out."""
    from training.snapshots import build_snapshots, data_window

    _, data_end = data_window(tables)
    notes = []
    periods = sorted(predictions["period"].dropna().unique())
    complete = [
        pd.Timestamp(p)
        for p in periods
        if pd.Timestamp(p) + pd.Timedelta(days=horizon_days) <= data_end
    ]
    for p in periods:
        if pd.Timestamp(p) not in complete:
            notes.append(
                f"period {pd.Timestamp(p).date()}: outcomes not yet known (the "
                f"{horizon_days}-day horizon ends after the data, {data_end.date()})"
            )
    if not complete:
        return predictions.iloc[:0], notes
    labels = build_snapshots(tables, complete, horizon_days)
    customers = tables["customers"]
    attributes = [c for c in ("plan_tier", "region") if c in customers]
    labels = labels.merge(
        customers[["customer_id", "signup_date", *attributes]], on="customer_id", how="left"
    )
    labels["tenure_band"] = tenure_band(
        (labels["as_of"] - pd.to_datetime(labels.pop("signup_date"))).dt.days.astype(float)
    ).values
    joined = predictions[predictions["period"].isin(complete)].merge(
        labels.rename(columns={"as_of": "period"}), on=["customer_id", "period"], how="inner"
    )
    dropped = int(predictions["period"].isin(complete).sum() - len(joined))
    if dropped:
        notes.append(f"{dropped:,} predictions of customers not active at their period left out")
    return joined, notes
