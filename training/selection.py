"""Candidate models per head, and the honest choice between them.

Each head fits candidates: LightGBM (a small hyperparameter search), a regularised linear
model on transformed features, and a blend of the two. The search and the choice use only
*inner* validation windows, rolling origins inside the training window; the outer held-out
window never informs them. The chosen candidate (and, for the record, every other) is then
refitted on all rows before the outer window, whose metrics are the ones reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from npsrisk.settings import LightGBMSettings, TrainingSettings
from training.calibration import Calibrator, OrdinalLink, expected_score
from training.models import (
    BlendScorer,
    ChurnModel,
    LinearScorer,
    NpsModel,
    TreeScorer,
    lightgbm_params,
    train_booster,
)
from training.snapshots import Split, customer_fold

CANDIDATES = ("lightgbm", "linear", "blend")
BLEND_WEIGHTS = (0.3, 0.5, 0.7)  # share of the trees in the blend's raw score
LINEAR_STRENGTH = {"binary": (0.05, 0.5), "regression": (1.0, 100.0)}  # C / ridge alpha
# Heads whose linear candidate is also fitted without the sign rule, the inner windows choosing.
# Churn keeps it always: churn risk never falls with more unresolved tickets or less usage. The
# NPS score has no such promise, and where its features are correlated the sign rule drops
# columns a ridge needs (served NPS MAE 0.002-0.018 worse in 6 of 9 world/seed runs).
FREE_SIGN_HEADS = ("nps",)
FREE = ",signs=free"
INNER_CUSTOMER_SHARE = 0.25
# A booster that early stopping cuts below this many trees scores customers in few steps (a
# 1,000-customer world stopped at 12 trees: 62% distinct probabilities); it is refitted
# at SLOWER x the learning rate (at most SLOWDOWNS times), which resolves them.
MIN_TREES = 40
SLOWER = 0.4
SLOWDOWNS = 2
MIN_INNER_POSITIVES = 5


@dataclass
class Origin:
    """One inner fold: rows to fit on and later rows to validate on, inside the training window."""

    name: str
    train: np.ndarray
    valid: np.ndarray


def inner_origins(
    frame: pd.DataFrame, split: Split, horizon_days: int, settings: TrainingSettings
) -> list[Origin]:
    """Rolling origins inside the training window, latest first, each validating on the
    ``validation_snapshots`` dates before the previous one with the same label gap as the outer
    split; by customer when the training window has a single date (or too few)."""
    origins: list[Origin] = []
    as_of = frame["as_of"]
    if split.strategy == "temporal":
        dates = sorted(pd.Timestamp(d) for d in split.train_as_of)
        n = settings.validation_snapshots
        for i in range(settings.search_origins):
            end = len(dates) - i * n
            valid_dates = dates[max(end - n, 0) : end]
            if end - n < 1 or not valid_dates:
                break
            last_train = valid_dates[0] - pd.Timedelta(days=horizon_days)
            train_dates = [d for d in dates if d <= last_train]
            if not train_dates:
                break
            origins.append(
                Origin(
                    f"{valid_dates[0].date()}..{valid_dates[-1].date()}",
                    split.train & as_of.isin(train_dates).to_numpy(),
                    split.train & as_of.isin(valid_dates).to_numpy(),
                )
            )
    if not origins:
        fold = customer_fold(frame["customer_id"], INNER_CUSTOMER_SHARE, f"inner:{settings.seed}")
        origins.append(Origin("customers", split.train & ~fold, split.train & fold))
    return origins


def lightgbm_grid(settings: LightGBMSettings, search: bool) -> list[dict]:
    """The configured LightGBM, and with ``search`` a simpler and a richer one around it."""
    base = settings.model_dump()
    if not search:
        return [base]
    simpler = {
        **base,
        "num_leaves": max(3, base["num_leaves"] // 2),
        "min_child_samples": base["min_child_samples"] * 2,
    }
    richer = {
        **base,
        "num_leaves": base["num_leaves"] * 2,
        "min_child_samples": max(5, base["min_child_samples"] // 2),
    }
    return [base, simpler, richer]


@dataclass
class HeadData:
    """One head's labels over all snapshot rows; ``rows`` marks rows with a label."""

    name: str  # "churn" or "nps"
    objective: str  # "binary" or "regression"
    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    categorical: list[int]
    calibration: np.ndarray  # customer fold for early stopping and calibration
    weight: np.ndarray | None = None
    signs: list[int] | None = None  # per feature: monotone direction of the raw score


@dataclass
class HeadChoice:
    """What the search found: the served model, every candidate refitted, and the figures."""

    chosen: str
    models: dict[str, ChurnModel | NpsModel]
    inner: pd.DataFrame  # candidate, config, origin, metric, value
    notes: list[str] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> ChurnModel | NpsModel:
        return self.models[self.chosen]


def _fit_tree(head: HeadData, fit: np.ndarray, stop: np.ndarray, config: dict, seed: int):
    scorer = _fit_booster(head, fit, stop, config, seed)
    # Stopped early, not capped by n_estimators (a deliberately tiny model stays as it is).
    for _ in range(SLOWDOWNS):
        if scorer.booster.num_trees() >= min(MIN_TREES, config["n_estimators"]):
            break
        config = {**config, "learning_rate": config["learning_rate"] * SLOWER}
        scorer = _fit_booster(head, fit, stop, config, seed)
    return scorer


def _fit_booster(head: HeadData, fit: np.ndarray, stop: np.ndarray, config: dict, seed: int):
    lgbm = LightGBMSettings(**config)
    params = lightgbm_params(lgbm, head.objective, seed)
    if head.signs and any(head.signs):
        params.update(monotone_constraints=head.signs, monotone_constraints_method="advanced")
    w = head.weight
    booster = train_booster(
        params,
        head.X[fit],
        head.y[fit],
        head.X[stop],
        head.y[stop],
        head.categorical,
        lgbm.n_estimators,
        lgbm.early_stopping_rounds,
        None if w is None else w[fit],
        None if w is None else w[stop],
    )
    return TreeScorer(booster, lgbm.model_dump())


def _fit_linear(head: HeadData, fit: np.ndarray, strength: float, signs: bool = True):
    # A regularised linear model needs no early-stopping rows, so it fits on every training
    # row; calibrating it on some of them in-sample costs little with so few parameters.
    w = None if head.weight is None else head.weight[fit]
    return LinearScorer(head.objective, strength, head.signs if signs else None).fit(
        head.X[fit], head.y[fit], head.categorical, w
    )


def _finish(head: HeadData, scorer, cal: np.ndarray, seed: int) -> ChurnModel | NpsModel:
    """Calibrate a raw-score head on the calibration rows."""
    raw = scorer.raw(head.X[cal])
    if head.name == "churn":
        return ChurnModel(scorer, Calibrator().fit(raw, head.y[cal], seed))
    w = None if head.weight is None else head.weight[cal]
    return NpsModel(scorer, OrdinalLink().fit(raw, head.y[cal], w))


def _metric(head: HeadData, raw_valid: np.ndarray, y_valid: np.ndarray, link=None) -> float:
    """Inner-window figure, higher is better: churn ROC-AUC, NPS minus MAE."""
    if head.name == "churn":
        return float(roc_auc_score(y_valid, raw_valid))
    return -float(np.mean(np.abs(expected_score(link.distribution(raw_valid)) - y_valid)))


def _usable(head: HeadData, origin: Origin) -> bool:
    train, valid = origin.train & head.rows, origin.valid & head.rows
    if head.name == "churn":
        y = head.y
        return (
            y[train].sum() >= 2 * MIN_INNER_POSITIVES
            and y[valid].sum() >= MIN_INNER_POSITIVES
            and (1 - y[valid]).sum() >= MIN_INNER_POSITIVES
        )
    return train.sum() >= 50 and valid.sum() >= 20


def choose_head(
    head: HeadData,
    origins: list[Origin],
    outer_train: np.ndarray,
    settings: TrainingSettings,
) -> HeadChoice:
    """Search, choose on the inner origins, refit every candidate on ``outer_train``."""
    seed = settings.seed
    wanted = [c for c in CANDIDATES if c in settings.candidates]
    grid = lightgbm_grid(settings.lightgbm, settings.search_lightgbm)
    strengths = LINEAR_STRENGTH[head.objective]
    usable = [o for o in origins if _usable(head, o)]
    notes: list[str] = []
    records: list[tuple[str, str, str, float]] = []
    cal = head.calibration

    # raw scores per (candidate, config) and origin, on the origin's calibration and valid rows
    raws: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for origin in usable:
        train = origin.train & head.rows
        fit, stop = train & ~cal, train & cal
        valid = origin.valid & head.rows
        fitted = []
        if "lightgbm" in wanted or "blend" in wanted:
            for i, config in enumerate(grid):
                fitted.append((("lightgbm", f"grid{i}"), _fit_tree(head, fit, stop, config, seed)))
        if "linear" in wanted or "blend" in wanted:
            for s in strengths:
                fitted.append((("linear", f"strength={s:g}"), _fit_linear(head, train, s)))
                if head.name in FREE_SIGN_HEADS and head.signs and any(head.signs):
                    free = _fit_linear(head, train, s, signs=False)
                    fitted.append((("linear", f"strength={s:g}{FREE}"), free))
        for key, scorer in fitted:
            raws.setdefault(key, []).append((scorer.raw(head.X[stop]), scorer.raw(head.X[valid])))

    def score(key_raws: list[tuple[np.ndarray, np.ndarray]], origin_list) -> list[float]:
        out = []
        for (raw_cal, raw_valid), origin in zip(key_raws, origin_list, strict=True):
            train = origin.train & head.rows
            stop, valid = train & cal, origin.valid & head.rows
            link = None
            if head.name == "nps":
                w = None if head.weight is None else head.weight[stop]
                link = OrdinalLink().fit(raw_cal, head.y[stop], w)
            out.append(_metric(head, raw_valid, head.y[valid], link))
        return out

    best: dict[str, tuple[str, float]] = {}
    for (kind, config), key_raws in raws.items():
        values = score(key_raws, usable)
        for origin, value in zip(usable, values, strict=True):
            records.append((kind, config, origin.name, value))
        mean = float(np.mean(values))
        if kind not in best or mean > best[kind][1]:
            best[kind] = (config, mean)
    if "blend" in wanted and "lightgbm" in best and "linear" in best:
        g = raws[("lightgbm", best["lightgbm"][0])]
        lin = raws[("linear", best["linear"][0])]
        for w in BLEND_WEIGHTS:
            mixed = [
                (w * gc + (1 - w) * lc, w * gv + (1 - w) * lv)
                for (gc, gv), (lc, lv) in zip(g, lin, strict=True)
            ]
            values = score(mixed, usable)
            for origin, value in zip(usable, values, strict=True):
                records.append(("blend", f"weight={w:g}", origin.name, value))
            mean = float(np.mean(values))
            if "blend" not in best or mean > best["blend"][1]:
                best["blend"] = (f"weight={w:g}", mean)

    ranked = [k for k in wanted if k in best]
    if ranked:
        chosen = max(ranked, key=lambda k: (best[k][1], -CANDIDATES.index(k)))
    else:
        chosen = wanted[0] if wanted[0] != "blend" else "lightgbm"
        notes.append(
            f"{head.name}: no inner validation window with enough labels; serving {chosen} "
            "with the configured settings, unselected"
        )

    # Refit on everything before the outer window.
    train = outer_train & head.rows
    fit, stop = train & ~cal, train & cal
    configs = {k: v[0] for k, v in best.items()}
    tree_config = grid[int(configs.get("lightgbm", "grid0")[4:])]
    linear_config = configs.get("linear", f"strength={strengths[0]:g}")
    strength = float(linear_config.removesuffix(FREE).split("=")[1])
    signed = not linear_config.endswith(FREE)
    scorers: dict[str, object] = {}
    need = set(wanted) | ({"lightgbm", "linear"} if "blend" in wanted else set()) | {chosen}
    if "lightgbm" in need or "blend" in need:
        scorers["lightgbm"] = _fit_tree(head, fit, stop, tree_config, seed)
    if "linear" in need or "blend" in need:
        scorers["linear"] = _fit_linear(head, train, strength, signs=signed)
    if "blend" in wanted and "lightgbm" in scorers and "linear" in scorers:
        w = float(configs.get("blend", "weight=0.5").split("=")[1])
        scorers["blend"] = BlendScorer([scorers["lightgbm"], scorers["linear"]], [w, 1 - w])
    models = {k: _finish(head, s, stop, seed) for k, s in scorers.items() if k in need}
    inner = pd.DataFrame(records, columns=["candidate", "config", "origin", "value"])
    inner["metric"] = "roc_auc" if head.name == "churn" else "neg_mae"
    return HeadChoice(chosen, models, inner, notes, configs)


def refit_unweighted(head: HeadData, choice: HeadChoice, outer_train: np.ndarray, seed: int):
    """The chosen NPS candidate refitted without survey weights (a selection check)."""
    plain = HeadData(**{**head.__dict__, "weight": None})
    train = outer_train & plain.rows
    fit, stop = train & ~plain.calibration, train & plain.calibration
    model = choice.model
    scorer = model.scorer
    if isinstance(scorer, BlendScorer):
        parts = [_refit_like(plain, p, fit, stop, seed) for p in scorer.parts]
        new = BlendScorer(parts, list(scorer.weights))
    else:
        new = _refit_like(plain, scorer, fit, stop, seed)
    return _finish(plain, new, stop, seed)


def _refit_like(head: HeadData, scorer, fit, stop, seed):
    if isinstance(scorer, LinearScorer):
        return _fit_linear(head, fit | stop, scorer.strength, signs=scorer.signs is not None)
    return _fit_booster(head, fit, stop, scorer.params, seed)  # its params, slowed or not
