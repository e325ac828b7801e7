"""Drivers are exact SHAP values whichever candidate is served: the trees' pred_contrib agrees
with shap.TreeExplainer, the linear part with shap.LinearExplainer (interventional, training
means), a blend is the weighted sum of both, and every row adds up to the raw score."""

import numpy as np
import pytest
import shap

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def bundle_and_rows(trained, demo_tables):
    import pandas as pd

    from serving.state import load_champion
    from training.snapshots import active_customers

    settings, _ = trained
    bundle = load_champion(settings).bundle
    as_of = pd.Timestamp("2025-09-30")
    pairs = pd.DataFrame(
        {"customer_id": active_customers(demo_tables, as_of)[:300], "as_of": as_of}
    )
    frame = bundle.features_for(demo_tables, pairs)
    return bundle, bundle.encoder.transform(frame)


def _parts(scorer):
    from training.models import BlendScorer

    if isinstance(scorer, BlendScorer):
        return list(zip(scorer.parts, scorer.weights, strict=True))
    return [(scorer, 1.0)]


@pytest.mark.parametrize("target", ["churn", "nps"])
def test_drivers_equal_shap_and_add_up(bundle_and_rows, target):
    from training.models import LinearScorer, TreeScorer

    bundle, X = bundle_and_rows
    head = bundle.churn if target == "churn" else bundle.nps
    native = bundle.contributions(X, target)
    expected = np.zeros_like(native)
    for part, weight in _parts(head.scorer):
        if isinstance(part, TreeScorer):
            explainer = shap.TreeExplainer(part.booster)
            values = explainer.shap_values(X)
            values = values[1] if isinstance(values, list) else values
            base = float(np.ravel(explainer.expected_value)[-1])
        else:
            assert isinstance(part, LinearScorer)
            Z = part.design_.transform(X)
            explainer = shap.LinearExplainer((part.coef_, part.intercept_), part.mean_[None, :])
            per_column = explainer.shap_values(Z)
            values = np.zeros((len(X), X.shape[1]))
            np.add.at(values.T, part.design_.owner_, per_column.T)
            base = float(np.ravel(explainer.expected_value)[0])
        expected[:, :-1] += weight * values
        expected[:, -1] += weight * base
    assert np.abs(native - expected).max() < 1e-6
    np.testing.assert_allclose(native.sum(axis=1), head.raw(X), atol=1e-9)


def test_scoring_with_explanations_gives_the_same_numbers(bundle_and_rows):
    bundle, X = bundle_and_rows
    plain, _ = bundle.score(X, explain=False)
    explained, contributions = bundle.score(X, explain=True, threads=1)
    for column, values in plain.items():
        np.testing.assert_allclose(explained[column], values, atol=1e-8, err_msg=column)
    assert set(contributions) == {"churn", "nps"}
