"""Whether text features stay on: measured on the inner windows, never on the outer one.

Text features (tone, themes and stated intents of customer messages) are built when
``text.features`` is on. They stay in the plan only where they do not hurt: for each head,
the configured LightGBM is fitted on every usable inner origin (training.selection) with and
without the text columns, and the text features are dropped when they lower a head's mean
inner figure (churn ROC-AUC; NPS minus MAE) by more than ``text.selection_tolerance``. The
outer held-out window never informs the choice, so its figures stay honest.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.build import FeaturePlan
from npsrisk.settings import Settings
from training.calibration import OrdinalLink
from training.models import FeatureEncoder
from training.selection import HeadData, _fit_tree, _metric, _usable, inner_origins
from training.snapshots import Split

TEXT_PREFIX = "text_"


@dataclass
class TextChoice:
    """The inner-window figures with and without text features, and the decision."""

    keep: bool
    inner: pd.DataFrame  # head, origin, text (on/off), metric, value
    deltas: dict[str, float] = field(default_factory=dict)  # head -> mean(on) - mean(off)
    note: str = ""

    def record(self) -> dict:
        """Flat figures for MLflow (metrics) and the run's info."""
        return {
            "text_selection.keep": float(self.keep),
            **{f"text_selection.{head}_delta": d for head, d in self.deltas.items()},
        }


def without_text(plan: FeaturePlan) -> FeaturePlan:
    """The plan with its text features dropped (no text scorer needed to use it)."""
    return replace(plan, text_themes={}, text_intents=[])


def hurt_heads(deltas: dict[str, float], tolerance: float) -> list[str]:
    """Heads whose mean inner figure the text features lower by more than ``tolerance``
    (a head without a usable inner window, NaN, is not counted as hurt)."""
    return [h for h, d in deltas.items() if not np.isnan(d) and d < -tolerance]


def _inner_figures(head: HeadData, origins, settings: Settings) -> list[tuple[str, float]]:
    config = settings.training.lightgbm.model_dump()
    seed = settings.training.seed
    out = []
    for origin in origins:
        if not _usable(head, origin):
            continue
        train = origin.train & head.rows
        fit, stop = train & ~head.calibration, train & head.calibration
        valid = origin.valid & head.rows
        scorer = _fit_tree(head, fit, stop, config, seed)
        link = None
        if head.name == "nps":
            link = OrdinalLink().fit(scorer.raw(head.X[stop]), head.y[stop])
        out.append((origin.name, _metric(head, scorer.raw(head.X[valid]), head.y[valid], link)))
    return out


def choose_text_features(
    settings: Settings,
    plan: FeaturePlan,
    frame: pd.DataFrame,
    split: Split,
    heads: list[str],
    horizon: int,
    calibration: np.ndarray,
) -> TextChoice:
    """Fit each head on the inner origins with and without the text columns; keep text unless
    it lowers some head's mean inner figure by more than ``text.selection_tolerance``."""
    tolerance = settings.text.selection_tolerance
    origins = inner_origins(frame, split, horizon, settings.training)
    records: list[tuple[str, str, str, str, float]] = []
    plans = {"on": plan, "off": without_text(plan)}
    encoded = {}
    for state, p in plans.items():
        encoder = FeatureEncoder(p.feature_names, p.categorical, p.settings.max_categories)
        encoder.fit(frame[split.train])
        encoded[state] = (encoder.transform(frame), encoder.categorical_indices_)
    deltas: dict[str, float] = {}
    for name in heads:
        means = {}
        for state, (X, cats) in encoded.items():
            if name == "churn":
                y = frame["churned"].to_numpy(dtype=float)
                head = HeadData(name, "binary", X, y, ~np.isnan(y), cats, calibration)
            else:
                y = np.nan_to_num(frame["nps_score"].to_numpy(dtype=float))
                head = HeadData(
                    name, "regression", X, y, frame["responded"].to_numpy(), cats, calibration
                )
            figures = _inner_figures(head, origins, settings)
            metric = "roc_auc" if name == "churn" else "neg_mae"
            records += [(name, origin, state, metric, value) for origin, value in figures]
            means[state] = float(np.mean([v for _, v in figures])) if figures else float("nan")
        deltas[name] = means["on"] - means["off"]
    measured = {h: d for h, d in deltas.items() if not np.isnan(d)}
    hurt = hurt_heads(deltas, tolerance)
    keep = not hurt
    table = pd.DataFrame(records, columns=["head", "origin", "text", "metric", "value"])
    words = ", ".join(f"{h} {d:+.4f}" for h, d in measured.items()) or "no usable inner window"
    if not measured:
        note = "text features kept: no inner window to measure them on"
    elif keep:
        note = f"text features kept: on the inner windows, with minus without text: {words}"
    else:
        note = (
            f"text features dropped: they lowered {', '.join(hurt)} on the inner windows by more "
            f"than text.selection_tolerance={tolerance:g} (with minus without text: {words})"
        )
    return TextChoice(keep, table, deltas, note)
