"""Risk tiers mean the same probability band in every segment, on held-out later data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_each_tier_churns_alike_in_every_segment(trained, demo_path, tmp_path):
    from features.build import FeaturePlan, build_features
    from serving.predictions import risk_tier
    from serving.state import load_champion
    from training.pipeline import prepare_data

    settings, _ = trained
    bundle = load_champion(settings).bundle
    horizon = settings.training.horizon_days
    data = prepare_data(
        demo_path, settings, horizon, tmp_path, FeaturePlan.from_dict(bundle.plan), bundle.text
    )
    valid = data.snapshots[data.split.valid]  # the latest as-of dates, held out from training
    features = build_features(data.tables, valid[["customer_id", "as_of"]], data.plan)
    frame = valid.merge(features, on=["customer_id", "as_of"], how="inner")
    scored = bundle.predict_frame(frame)
    tiers = settings.serving.risk_tiers
    frame = frame.assign(
        p=scored["churn_probability"].to_numpy(),
        tier=[
            risk_tier(c, d, tiers)
            for c, d in zip(scored["churn_probability"], scored["p_detractor"], strict=True)
        ],
    )
    z = norm.ppf(0.995)  # 99% intervals: a handful of segment x tier cells are compared
    checked = 0
    for column in ("plan_tier", "region"):
        for tier, part in frame.groupby("tier"):
            pooled = part["churned"].mean()
            for value, seg in part.groupby(column):
                if len(seg) < 40:
                    continue
                low, high = wilson(int(seg["churned"].sum()), len(seg), z)
                assert low <= pooled <= high, (
                    f"tier {tier}: {column}={value} churned {seg['churned'].mean():.3f} "
                    f"[{low:.3f}, {high:.3f}] vs {pooled:.3f} over all segments"
                )
                checked += 1
    assert checked >= 6
    # and the bands are ordered: high churns more than medium, medium more than low
    rates = frame.groupby("tier")["churned"].mean()
    assert rates["low"] < rates["medium"] < rates["high"]
    assert isinstance(frame, pd.DataFrame)
