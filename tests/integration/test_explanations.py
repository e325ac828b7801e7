"""Drivers are exact SHAP values: LightGBM's pred_contrib agrees with shap.TreeExplainer and
adds up to the raw prediction."""

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


@pytest.mark.parametrize("target", ["churn", "nps"])
def test_pred_contrib_equals_tree_shap_and_adds_up(bundle_and_rows, target):
    bundle, X = bundle_and_rows
    booster = bundle.churn.booster_ if target == "churn" else bundle.nps.regressor_
    native = bundle.contributions(X, target)
    explainer = shap.TreeExplainer(booster)
    reference = explainer.shap_values(X)
    reference = reference[1] if isinstance(reference, list) else reference
    diff = np.abs(native[:, :-1] - reference).max()
    assert diff < 1e-6, diff
    assert native[0, -1] == pytest.approx(float(np.ravel(explainer.expected_value)[-1]), abs=1e-6)
    raw = booster.predict(X, raw_score=True)
    np.testing.assert_allclose(native.sum(axis=1), raw, atol=1e-9)


def test_scoring_with_explanations_gives_the_same_numbers(bundle_and_rows):
    bundle, X = bundle_and_rows
    plain, _ = bundle.score(X, explain=False)
    explained, contributions = bundle.score(X, explain=True, threads=1)
    for column, values in plain.items():
        np.testing.assert_allclose(explained[column], values, atol=1e-9, err_msg=column)
    assert set(contributions) == {"churn", "nps"}
