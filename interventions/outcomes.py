"""Outcomes of the program: later NPS answers and churn joined to treated and control customers.

The comparison is intent to treat: a customer assigned to treatment counts as treated whether
or not the owner reached them, so the randomisation alone separates the arms. Intervals are
percentile bootstraps of the treated-minus-control difference, resampling each arm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from interventions.planning import ARM_CONTROL, ARM_TREATMENT


def join_outcomes(
    assignments: pd.DataFrame, answers: pd.DataFrame, churn: pd.DataFrame, horizon_days: int
) -> pd.DataFrame:
    """Per assigned customer: the first answer after planning and whether they churned.

    ``assignments``: wave_id, customer_id, arm, playbook, planned_on, predicted_category, ...
    ``answers``: customer_id, responded_at, score. ``churn``: customer_id, churned_at.
    """
    a = assignments[assignments["arm"].isin([ARM_TREATMENT, ARM_CONTROL])].copy()
    a["planned_on"] = pd.to_datetime(a["planned_on"])
    a["_end"] = a["planned_on"] + pd.Timedelta(days=horizon_days)
    a["_row"] = np.arange(len(a))
    ans = answers[["customer_id", "responded_at", "score"]].copy()
    ans["responded_at"] = pd.to_datetime(ans["responded_at"])
    joined = a[["_row", "customer_id", "planned_on", "_end"]].merge(ans, on="customer_id")
    joined = joined[
        (joined["responded_at"] > joined["planned_on"]) & (joined["responded_at"] <= joined["_end"])
    ]
    first = joined.sort_values(["_row", "responded_at"]).drop_duplicates("_row")
    a = a.merge(first[["_row", "responded_at", "score"]], on="_row", how="left")
    c = churn[["customer_id", "churned_at"]].copy()
    c["churned_at"] = pd.to_datetime(c["churned_at"])
    c = c.groupby("customer_id", as_index=False)["churned_at"].min()
    a = a.merge(c, on="customer_id", how="left")
    a["answered"] = a["score"].notna()
    a["converted"] = np.where(a["answered"], a["score"] >= 7, np.nan)
    a["churned"] = (a["churned_at"] > a["planned_on"]) & (a["churned_at"] <= a["_end"])
    return (
        a.drop(columns=["_row", "_end"])
        .sort_values(["wave_id", "customer_id"])
        .reset_index(drop=True)
    )


def _nps(scores: np.ndarray) -> float:
    return 100.0 * (np.mean(scores >= 9) - np.mean(scores <= 6)) if len(scores) else np.nan


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else np.nan


@dataclass
class Comparison:
    metric: str
    group: str
    treated: float
    control: float
    difference: float
    low: float
    high: float
    n_treated: int
    n_control: int

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for k in ("treated", "control", "difference", "low", "high"):
            v = out[k]
            out[k] = None if v is None or np.isnan(v) else round(float(v), 4)
        return out


def compare(
    metric: str,
    group: str,
    treated: np.ndarray,
    control: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    samples: int,
    interval: float,
    rng: np.random.Generator,
) -> Comparison:
    """Treated minus control with a percentile bootstrap interval."""
    t, c = statistic(treated), statistic(control)
    low = high = np.nan
    if len(treated) and len(control):
        ti = rng.integers(0, len(treated), (samples, len(treated)))
        ci = rng.integers(0, len(control), (samples, len(control)))
        diffs = np.array(
            [statistic(treated[a]) - statistic(control[b]) for a, b in zip(ti, ci, strict=True)]
        )
        diffs = diffs[~np.isnan(diffs)]
        if len(diffs):
            tail = (1 - interval) / 2
            low, high = np.quantile(diffs, [tail, 1 - tail])
    return Comparison(
        metric, group, t, c, t - c, float(low), float(high), len(treated), len(control)
    )


def outcome_report(
    joined: pd.DataFrame, samples: int, interval: float, seed: int = 0
) -> list[Comparison]:
    """Headline conversion, realized NPS and churn, treated vs control, overall and per playbook.

    Conversion: predicted detractors (at planning) who answer the next survey 7-10.
    """
    rng = np.random.default_rng(seed)
    out: list[Comparison] = []
    groups = [("all", joined)] + [
        (f"playbook={pb}", part) for pb, part in joined.groupby("playbook", sort=True)
    ]
    for name, part in groups:
        treated = part[part["arm"] == ARM_TREATMENT]
        control = part[part["arm"] == ARM_CONTROL]

        def conv(frame: pd.DataFrame) -> np.ndarray:
            m = (frame["predicted_category"] == "detractor") & frame["answered"]
            return frame.loc[m, "converted"].to_numpy(float)

        out.append(
            compare(
                "detractor_conversion",
                name,
                conv(treated),
                conv(control),
                _mean,
                samples,
                interval,
                rng,
            )
        )
        scores = lambda f: f.loc[f["answered"], "score"].to_numpy(float)  # noqa: E731
        out.append(
            compare("nps", name, scores(treated), scores(control), _nps, samples, interval, rng)
        )
        churned = lambda f: f["churned"].to_numpy(float)  # noqa: E731
        out.append(
            compare(
                "churn_rate",
                name,
                churned(treated),
                churned(control),
                _mean,
                samples,
                interval,
                rng,
            )
        )
    return out


def report_frame(comparisons: list[Comparison]) -> pd.DataFrame:
    return pd.DataFrame([c.to_dict() for c in comparisons])
