"""Down-sampling for the driver: the limit holds exactly, churners are all kept, non-churners
are thinned at the recorded rate and weighted back, held-out rows are thinned uniformly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.sampling import sample_for_driver
from training.snapshots import Split


def _case(n: int, train_share: float, churn_rate: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    train = rng.random(n) < train_share
    snapshots = pd.DataFrame({"churned": (rng.random(n) < churn_rate).astype(float)})
    split = Split("time", train, ~train, [], [])
    calibration = train & (rng.random(n) < 0.2)
    return snapshots, split, calibration


@pytest.mark.parametrize("train_share", [0.2, 0.5, 0.8])  # 0.2: a small window (the old bug)
def test_the_limit_holds_and_the_fit_rows_are_stratified(train_share):
    snapshots, split, calibration = _case(5000, train_share, 0.05)
    limit = 1200
    sample = sample_for_driver(snapshots, split, calibration, limit, seed=1)
    record = sample.record
    assert record["sampled"] and record["rows_kept"] == sample.keep.sum() <= limit
    fit = split.train & ~calibration
    churned = snapshots["churned"].to_numpy() == 1
    assert sample.keep[fit & churned].all()  # every churner kept
    assert record["positive_rate"] == 1.0
    assert 0 < record["negative_rate"] < 1  # non-churners thinned, whatever the window
    kept_negatives = (sample.keep & fit & ~churned).sum()
    assert kept_negatives == pytest.approx(record["negative_rate"] * (fit & ~churned).sum(), abs=1)
    weights = pd.Series(sample.weight, index=np.flatnonzero(sample.keep))
    negative_rows = np.flatnonzero(sample.keep & fit & ~churned)
    assert weights[negative_rows].to_numpy() == pytest.approx(1 / record["negative_rate"], rel=1e-5)
    # Held-out rows: one uniform share, so validation keeps its own churn rate (within noise).
    held_out = ~fit
    share = sample.keep[held_out].mean()
    assert share == pytest.approx(record["calibration_validation_share"], abs=1e-3)
    assert weights[np.flatnonzero(sample.keep & held_out)].eq(1.0).all()


def test_no_sampling_under_the_limit():
    snapshots, split, calibration = _case(500, 0.5, 0.1)
    sample = sample_for_driver(snapshots, split, calibration, 1000, seed=1)
    assert not sample.sampled and sample.keep.all() and (sample.weight == 1).all()
