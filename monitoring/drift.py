"""Drift verdicts, pure: per-segment tests with effect sizes, Benjamini-Hochberg over the
column x segment p-values, and the verdict from Evidently's per-column tests plus segments.

A column in a segment moved only when it is both significant after the false-discovery
correction and large (the same effect sizes as Evidently's defaults: normed Wasserstein for
numbers, Jensen-Shannon distance for categories). Significance alone flags trivia at 100k
rows; size alone flags noise in a 200-row segment; together a calm month stays calm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

PREDICTION_FEATURES = ("churn_probability", "predicted_nps", "nps_category")


def is_by_construction(column: str, patterns) -> bool:
    """Whether a column drifts as the calendar moves (names or shell patterns)."""
    return any(fnmatchcase(column, p) for p in patterns)


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift over the whole window (from Evidently's tests)."""

    column: str
    kind: str  # "feature" | "prediction"
    method: str
    threshold: float
    score: float
    drifted: bool
    by_construction: bool = False

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "threshold": self.threshold,
            "score": None if np.isnan(self.score) else round(float(self.score), 6),
            "drifted": self.drifted,
            "by_construction": self.by_construction,
        }


def _clean(values: pd.Series, categorical: bool) -> np.ndarray:
    values = values.dropna()
    return values.astype(str).to_numpy() if categorical else values.to_numpy(dtype=float)


def effect_size(ref: np.ndarray, cur: np.ndarray, categorical: bool) -> float:
    """Evidently's defaults, recomputed: Jensen-Shannon distance of the value frequencies, or
    the Wasserstein distance in reference standard deviations."""
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    if categorical:
        keys = np.union1d(np.unique(ref), np.unique(cur))
        p = pd.Series(ref).value_counts().reindex(keys, fill_value=0).to_numpy() / len(ref)
        q = pd.Series(cur).value_counts().reindex(keys, fill_value=0).to_numpy() / len(cur)
        return float(distance.jensenshannon(p, q))
    norm = max(float(np.std(ref)), 0.001)
    return float(stats.wasserstein_distance(ref, cur) / norm)


def p_value(ref: np.ndarray, cur: np.ndarray, categorical: bool) -> float:
    """Two-sample Kolmogorov-Smirnov for numbers, chi-square of the contingency table for
    categories."""
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    if categorical:
        keys = np.union1d(np.unique(ref), np.unique(cur))
        if len(keys) < 2:
            return 1.0
        table = np.vstack(
            [
                pd.Series(ref).value_counts().reindex(keys, fill_value=0).to_numpy(),
                pd.Series(cur).value_counts().reindex(keys, fill_value=0).to_numpy(),
            ]
        )
        return float(stats.chi2_contingency(table)[1])
    if np.ptp(np.concatenate([ref, cur])) == 0:
        return 1.0
    return float(stats.ks_2samp(ref, cur, method="asymp").pvalue)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Adjusted p-values (q-values) controlling the false discovery rate; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    order = np.argsort(p[ok])
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0, 1)
    q[ok] = out
    return q


def segment_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    categorical: set[str],
    segment_columns: list[str],
    min_rows: int,
    alpha: float,
    num_threshold: float,
    cat_threshold: float,
) -> pd.DataFrame:
    """Every column in every segment present in both windows with ``min_rows`` rows each:
    sizes, effect, p-value, BH q-value over all these tests, and whether it moved."""
    rows = []
    for seg in segment_columns:
        if seg not in reference or seg not in current:
            continue
        ref_seg = reference[seg].astype(str)
        cur_seg = current[seg].astype(str)
        for value in sorted(set(ref_seg.unique()) & set(cur_seg.unique())):
            r_mask, c_mask = (ref_seg == value).to_numpy(), (cur_seg == value).to_numpy()
            if r_mask.sum() < min_rows or c_mask.sum() < min_rows:
                continue
            for column in columns:
                if column == seg or column not in current:
                    continue
                cat = column in categorical
                r = _clean(reference.loc[r_mask, column], cat)
                c = _clean(current.loc[c_mask, column], cat)
                if len(r) < min_rows // 2 or len(c) < min_rows // 2:
                    continue
                rows.append(
                    {
                        "segment": seg,
                        "value": value,
                        "column": column,
                        "n_reference": int(r_mask.sum()),
                        "n_current": int(c_mask.sum()),
                        "effect": effect_size(r, c, cat),
                        "threshold": cat_threshold if cat else num_threshold,
                        "p_value": p_value(r, c, cat),
                    }
                )
    frame = pd.DataFrame(
        rows,
        columns=[
            "segment", "value", "column", "n_reference", "n_current", "effect", "threshold",
            "p_value",
        ],
    )  # fmt: skip
    frame["q_value"] = benjamini_hochberg(frame["p_value"].to_numpy())
    frame["moved"] = (frame["q_value"] < alpha) & (frame["effect"] >= frame["threshold"])
    return frame


@dataclass
class Verdict:
    drift: bool
    reasons: list[str] = field(default_factory=list)
    share_drifted: float = 0.0
    segments_moved: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "drift" if self.drift else "no drift"


def drift_verdict(
    columns: list[ColumnDrift],
    segments: pd.DataFrame,
    drift_share: float,
    by_construction: list[str],
) -> Verdict:
    """Drift when enough features drift, a prediction drifts, or a segment moved; features
    that drift by construction are reported but never count."""
    features = [c for c in columns if c.kind == "feature" and not c.by_construction]
    drifted = [c for c in features if c.drifted]
    share = len(drifted) / len(features) if features else 0.0
    reasons = []
    if features and share >= drift_share:
        reasons.append(
            f"{len(drifted)} of {len(features)} features drifted ({share:.0%} >= {drift_share:.0%})"
        )
    for c in columns:
        if c.kind == "prediction" and c.drifted:
            reasons.append(f"prediction {c.column} drifted ({c.method} {c.score:.3f})")
    moved = []
    if len(segments):
        counted = segments[
            segments["moved"]
            & ~segments["column"].map(lambda c: is_by_construction(c, by_construction))
        ]
        for (seg, value), group in counted.groupby(["segment", "value"], sort=False):
            group = group.sort_values("effect", ascending=False)
            moved.append(
                {
                    "segment": seg,
                    "value": value,
                    "columns": group["column"].tolist(),
                    "top_effect": round(float(group["effect"].iloc[0]), 4),
                    "n_reference": int(group["n_reference"].iloc[0]),
                    "n_current": int(group["n_current"].iloc[0]),
                }
            )
        moved.sort(key=lambda m: (-len(m["columns"]), -m["top_effect"]))
        for m in moved[:3]:
            reasons.append(
                f"segment {m['segment']}={m['value']} moved: {len(m['columns'])} columns, "
                f"largest {m['columns'][0]} ({m['top_effect']:.3f})"
            )
    return Verdict(bool(reasons), reasons, share, moved)
