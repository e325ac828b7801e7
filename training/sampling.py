"""Which training snapshot rows come to the driver when there are more than it should hold.

Above ``spark.driver_row_limit`` rows, the budget is shared in proportion to the rows: the
rows models are fitted on get their share and are down-sampled with stratification on the
churn label (every churner is kept while they fit in half of that share, non-churners are
sampled at a known rate and weighted back by its inverse, so the fitted booster sees the true
class balance); calibration, validation and the other rows get the rest and are thinned
uniformly, never stratified, so calibrated probabilities and held-out metrics are computed on
the data's own rates.

(A fixed half of the budget for the calibration and validation rows left a small training
window whole while its held-out rows were thinned: the stratification, the point of it, never
ran; see tests/integration/test_spark_engine.py's low-row-limit test.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from training.snapshots import Split


@dataclass
class DriverSample:
    """Rows kept (a mask over the snapshot rows), each kept row's weight, and the record."""

    keep: np.ndarray
    weight: np.ndarray
    record: dict = field(default_factory=dict)

    @property
    def sampled(self) -> bool:
        return bool(self.record.get("sampled"))


def sample_for_driver(
    snapshots: pd.DataFrame, split: Split, calibration: np.ndarray, limit: int, seed: int
) -> DriverSample:
    """Decide which rows to bring to the driver (all of them when they fit)."""
    n = len(snapshots)
    record: dict = {"driver_row_limit": limit, "snapshot_rows": n, "sampled": n > limit}
    if n <= limit:
        return DriverSample(np.ones(n, dtype=bool), np.ones(n), record)
    rng = np.random.default_rng(seed)
    draw = rng.random(n)
    fit = split.train & ~calibration
    keep = np.ones(n, dtype=bool)
    weight = np.ones(n)
    others = ~fit
    budget = int(limit * fit.sum() / n)  # the fit rows' share of the limit
    room = limit - budget
    if others.sum() > room:  # uniform thinning keeps every rate as it was
        share = room / others.sum()
        _keep_only(keep, others, room, draw)
        record["calibration_validation_share"] = round(float(share), 6)
    churned = np.nan_to_num(snapshots["churned"].to_numpy(dtype=float)) == 1
    strata = {"positive": fit & churned, "negative": fit & ~churned}
    size = {k: int(v.sum()) for k, v in strata.items()}
    take = {"positive": min(size["positive"], budget // 2)}
    take["negative"] = min(size["negative"], budget - take["positive"])
    for name, rows in strata.items():
        rate = take[name] / size[name] if size[name] else 1.0
        _keep_only(keep, rows, take[name], draw)
        weight[rows] = 1.0 / rate if rate > 0 else 0.0
        record[f"{name}_rate"] = round(float(rate), 6)
    record["rows_kept"] = int(keep.sum())
    return DriverSample(keep, weight[keep], record)


def _keep_only(keep: np.ndarray, rows: np.ndarray, count: int, draw: np.ndarray) -> None:
    """Keep exactly ``count`` of ``rows`` (those with the lowest draws): the kept rate is
    then exactly the rate the weights undo, and the limit holds exactly, not on average."""
    members = np.flatnonzero(rows)
    keep[members[np.argsort(draw[members], kind="stable")[count:]]] = False


def subset(snapshots: pd.DataFrame, split: Split, keep: np.ndarray) -> tuple[pd.DataFrame, Split]:
    """The kept snapshot rows and the split restricted to them."""
    return (
        snapshots[keep].reset_index(drop=True),
        replace(split, train=split.train[keep], valid=split.valid[keep]),
    )
