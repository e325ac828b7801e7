"""Candidate heads on small frames: exact linear and blend SHAP, smooth calibration, one
coherent NPS distribution, and the choice made on inner windows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npsrisk.settings import LightGBMSettings, TrainingSettings
from training.calibration import (
    Calibrator,
    OrdinalLink,
    category_probabilities,
    expected_score,
)
from training.models import BlendScorer, LinearScorer, TreeScorer, lightgbm_params, train_booster


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    tickets = rng.poisson(1.5, n).astype(float)
    logins = rng.lognormal(2, 1, n)
    logins[rng.random(n) < 0.1] = np.nan  # missing values get an indicator
    tier = rng.integers(0, 3, n).astype(float)
    X = np.column_stack([tickets, logins, tier])
    margin = 0.6 * tickets - 0.8 * np.log1p(np.nan_to_num(logins, nan=3.0)) + 0.3 * tier - 1
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(float)
    return X, y


def test_linear_shap_is_exact_and_attributed_to_raw_features():
    X, y = _data()
    scorer = LinearScorer("binary", 1.0).fit(X, y, categorical=[2])
    contrib = scorer.contributions(X[:50])
    assert contrib.shape == (50, 4)
    np.testing.assert_allclose(contrib.sum(axis=1), scorer.raw(X[:50]), atol=1e-9)
    # Mean contribution over the training rows is zero per feature (SHAP's baseline).
    np.testing.assert_allclose(scorer.contributions(X).mean(axis=0)[:-1], 0, atol=1e-9)
    # More tickets: more risk, through the tickets column only.
    a, b = X[:1].copy(), X[:1].copy()
    a[0, 0], b[0, 0] = 0, 4
    ca, cb = scorer.contributions(a)[0], scorer.contributions(b)[0]
    assert cb[0] > ca[0]
    np.testing.assert_allclose(ca[1:], cb[1:])


def test_linear_sign_constraints_hold_the_declared_direction():
    X, y = _data()
    # Declare logins as risk-raising although the data says the opposite: its value
    # columns are dropped, never given a wrong-signed coefficient.
    scorer = LinearScorer("binary", 1.0, signs=[1, 1, 0]).fit(X, y, categorical=[2])
    logins_value = (scorer.design_.owner_ == 1) & scorer.design_.value_columns()
    assert (scorer.coef_[logins_value] >= 0).all()
    assert scorer.coef_[(scorer.design_.owner_ == 0) & scorer.design_.value_columns()][0] > 0


def test_blend_contributions_are_the_weighted_sum_of_its_parts():
    X, y = _data()
    params = lightgbm_params(LightGBMSettings(n_estimators=50), "binary", 0)
    booster = train_booster(params, X[:2000], y[:2000], X[2000:], y[2000:], [2], 50, 10)
    trees, linear = TreeScorer(booster), LinearScorer("binary", 1.0).fit(X, y, [2])
    blend = BlendScorer([trees, linear], [0.3, 0.7])
    c = blend.contributions(X[:20])
    np.testing.assert_allclose(
        c, 0.3 * trees.contributions(X[:20]) + 0.7 * linear.contributions(X[:20])
    )
    np.testing.assert_allclose(c.sum(axis=1), blend.raw(X[:20]), atol=1e-9)


@pytest.mark.parametrize("shape", ["linear", "curved", "few_positives"])
def test_calibration_is_smooth_increasing_and_never_0_or_1(shape):
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, 5000)
    truth = {"linear": raw, "curved": raw**3 / 4, "few_positives": raw - 6}[shape]
    y = (rng.random(len(raw)) < 1 / (1 + np.exp(-truth))).astype(float)
    cal = Calibrator().fit(raw, y)
    assert cal.method_ in ("platt", "beta", "isotonic") and cal.scores_
    grid = np.linspace(-40, 40, 4001)
    p = cal(grid)
    assert (np.diff(p) >= 0).all()  # a raw-score change moves the probability the same way
    assert (p > 0).all() and (p < 1).all()
    dense = cal(np.sort(raw))
    assert len(np.unique(dense)) >= 0.95 * len(dense)  # no steps: nearly every row distinct
    np.testing.assert_array_equal(cal(raw[:100]), cal(raw[:100].copy()))  # no jitter


def test_validation_log_loss_picks_isotonic_for_a_step_and_a_sigmoid_for_a_line():
    rng = np.random.default_rng(2)
    raw = rng.normal(0, 2, 20000)
    step = (rng.random(len(raw)) < np.where(raw > 1, 0.6, 0.05)).astype(float)
    cal = Calibrator().fit(raw, step)
    assert cal.method_ == "isotonic"
    assert len(np.unique(cal(raw))) > 0.95 * len(raw)  # interpolated: no steps
    line = (rng.random(len(raw)) < 1 / (1 + np.exp(-raw))).astype(float)
    assert Calibrator().fit(raw, line).method_ in ("platt", "beta")


def test_one_nps_distribution_gives_every_output_and_honours_weights():
    rng = np.random.default_rng(3)
    raw = rng.normal(7, 1.5, 6000)
    score = np.clip(np.round(raw + rng.normal(0, 1.5, len(raw))), 0, 10)
    link = OrdinalLink().fit(raw, score)
    dist = link.distribution(np.array([3.0, 7.0, 9.5]))
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    exp = expected_score(dist)
    cats = category_probabilities(dist)
    assert (np.diff(exp) > 0).all()  # higher raw score, higher expected score
    assert cats[0, 0] > cats[2, 0] and cats[2, 2] > cats[0, 2]
    np.testing.assert_allclose(cats.sum(axis=1), 1.0)
    # Weights move the distribution towards the heavily weighted answers.
    weight = np.where(score >= 9, 5.0, 1.0)
    heavy = OrdinalLink().fit(raw, score, weight)
    mid = np.array([7.0])
    assert expected_score(heavy.distribution(mid)) > expected_score(link.distribution(mid))


def test_the_nps_distribution_has_the_raw_scores_calibrated_mean():
    # Scores whose spread is not the cumulative logit's: a proportional-odds location alone
    # compresses the mean (the S-curve), which cost MAE against a ridge on the same score.
    rng = np.random.default_rng(5)
    raw = rng.normal(7, 1.5, 8000)
    noise = np.where(
        rng.random(len(raw)) < 0.2, rng.normal(0, 4, len(raw)), rng.normal(0, 1, len(raw))
    )
    score = np.clip(np.round(raw + noise), 0, 10)
    link = OrdinalLink().fit(raw, score)
    b0, b1 = np.polyfit(raw, score, 1)[::-1]
    middle = np.linspace(4, 9, 11)
    np.testing.assert_allclose(
        expected_score(link.distribution(middle)), b0 + b1 * middle, atol=0.02
    )
    mean_mae = np.mean(np.abs(expected_score(link.distribution(raw)) - score))
    line_mae = np.mean(np.abs(np.clip(b0 + b1 * raw, 0, 10) - score))
    assert mean_mae <= line_mae + 0.005
    grid = np.linspace(-5, 20, 5001)  # far outside the data: still never decreasing, inside 0-10
    exp = expected_score(link.distribution(grid))
    assert (np.diff(exp) >= -1e-12).all() and (exp > 0).all() and (exp < 10).all()
    assert (np.diff(expected_score(link.distribution(np.sort(raw)))) > 0).mean() > 0.99


def test_the_choice_never_sees_the_outer_window():
    from training.selection import HeadData, choose_head, inner_origins
    from training.snapshots import Split

    rng = np.random.default_rng(4)
    dates = pd.date_range("2024-01-31", periods=12, freq="ME")
    n = 400
    frame = pd.DataFrame(
        {
            "customer_id": np.tile([f"c{i}" for i in range(n)], len(dates)),
            "as_of": np.repeat(dates, n),
        }
    )
    X = np.column_stack([rng.poisson(2, len(frame)), rng.normal(size=len(frame))]).astype(float)
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-(X[:, 0] - 3)))).astype(float)
    outer = frame["as_of"].isin(dates[-3:]).to_numpy()
    train = frame["as_of"].isin(dates[:6]).to_numpy()
    y_outer_scrambled = y.copy()
    y_outer_scrambled[outer] = rng.permutation(y[outer])
    split = Split("temporal", train, outer, list(dates[:6]), list(dates[-3:]))
    settings = TrainingSettings(search_origins=2, lightgbm={"n_estimators": 40})
    origins = inner_origins(frame, split, 90, settings)
    assert origins and all(not (o.train | o.valid)[outer].any() for o in origins)
    assert all(
        frame.loc[o.train, "as_of"].max() + pd.Timedelta(days=90)
        <= frame.loc[o.valid, "as_of"].min()
        for o in origins
    )
    cal = frame["customer_id"].str[1:].astype(int).to_numpy() % 5 == 0
    results = []
    for labels in (y, y_outer_scrambled):
        head = HeadData("churn", "binary", X, labels, np.ones(len(X), bool), [], cal)
        choice = choose_head(head, origins, train, settings)
        results.append((choice.chosen, choice.inner["value"].round(12).tolist()))
        assert set(choice.models) == {"lightgbm", "linear", "blend"}
    assert results[0] == results[1]  # scrambling the outer labels changes nothing chosen


def test_a_booster_stopped_after_few_trees_is_refitted_slower_for_resolution():
    """Early stopping that leaves a handful of trees scores customers in few steps (ties);
    the candidate is refitted at a lower learning rate until it has MIN_TREES trees or the
    slowdowns run out. A deliberately tiny model (n_estimators below MIN_TREES) is kept."""
    from training.selection import MIN_TREES, SLOWER, HeadData, _fit_tree

    X, y = _data(n=1500, seed=5)
    cal = np.arange(len(X)) % 5 == 0
    head = HeadData("churn", "binary", X, y, np.ones(len(X), bool), [], cal)
    fast = {**LightGBMSettings().model_dump(), "learning_rate": 0.5, "early_stopping_rounds": 5}
    scorer = _fit_tree(head, ~cal, cal, fast, 0)
    assert scorer.params["learning_rate"] < fast["learning_rate"]
    assert scorer.params["learning_rate"] in (0.5 * SLOWER, 0.5 * SLOWER**2)
    slow_enough = scorer.booster.num_trees() >= MIN_TREES
    assert slow_enough or scorer.params["learning_rate"] == 0.5 * SLOWER**2
    tiny = _fit_tree(head, ~cal, cal, {**fast, "n_estimators": 3}, 0)
    assert tiny.params["learning_rate"] == 0.5 and tiny.booster.num_trees() == 3


def _monthly(n: int, months: int = 12) -> tuple[pd.DataFrame, object]:
    from training.snapshots import Split

    dates = pd.date_range("2024-01-31", periods=months, freq="ME")
    frame = pd.DataFrame(
        {
            "customer_id": np.tile([f"c{i}" for i in range(n)], len(dates)),
            "as_of": np.repeat(dates, n),
        }
    )
    train = frame["as_of"].isin(dates[:-3]).to_numpy()
    split = Split("temporal", train, ~train, list(dates[:-3]), list(dates[-3:]))
    return frame, split


def test_the_nps_linear_part_may_drop_the_sign_rule_and_churn_keeps_it():
    """Two correlated features whose partial effect runs against the declared direction: the
    sign rule drops the second one. For NPS the inner windows may choose the free fit (it
    predicts better here); churn keeps its promised directions whatever they say."""
    from training.selection import FREE, HeadData, choose_head, inner_origins

    rng = np.random.default_rng(7)
    frame, split = _monthly(500)
    a = rng.normal(size=len(frame))
    b = a + 0.5 * rng.normal(size=len(frame))  # correlated with a; marginally "good"
    X = np.column_stack([a, b])
    settings = TrainingSettings(search_origins=2, lightgbm={"n_estimators": 40})
    origins = inner_origins(frame, split, 90, settings)
    cal = frame["customer_id"].str[1:].astype(int).to_numpy() % 5 == 0
    rows = np.ones(len(X), bool)

    score = np.clip(np.round(7 + 2.0 * a - 1.2 * b + rng.normal(0, 1, len(X))), 0, 10)
    nps = HeadData("nps", "regression", X, score, rows, [], cal, signs=[1, 1])
    choice = choose_head(nps, origins, split.train, settings)
    assert choice.configs["linear"].endswith(FREE)
    assert choice.models["linear"].scorer.signs is None
    assert choice.models["linear"].scorer.coef_[-1] < 0  # b's partial effect, kept

    margin = -2.0 * a + 1.2 * b - 2
    churned = (rng.random(len(X)) < 1 / (1 + np.exp(-margin))).astype(float)
    churn = HeadData("churn", "binary", X, churned, rows, [], cal, signs=[-1, -1])
    choice = choose_head(churn, origins, split.train, settings)
    assert not choice.configs["linear"].endswith(FREE)
    assert choice.models["linear"].scorer.signs == [-1, -1]
    assert (choice.models["linear"].scorer.coef_ <= 0).all()
