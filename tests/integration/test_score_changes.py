"""Why a score moved: a kept earlier materialization where one feature of some customers was
different, explained from the SHAP contributions of both dates, in /predict and /at_risk."""

from __future__ import annotations

import httpx
import pytest

from conftest import EARLIER_CHANGED as CHANGED
from conftest import headers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def earlier(earlier_store):
    return earlier_store


def test_change_names_the_changed_feature_and_converts_through_the_calibrator(earlier):
    from features.store import FeatureStore
    from serving.state import ServingState

    settings, champion, changed, since = earlier
    bundle = champion.bundle
    state = ServingState.build(champion, FeatureStore.open(settings.home_path))
    assert state.previous() is not None and state.previous().store.features_as_of == since
    ids = [*changed, *list(state.store.frame["customer_id"][CHANGED : CHANGED + 20])]
    predictions, _, _ = state.predict_ids(ids, True, 3, settings.serving.risk_tiers)
    calibrate = bundle.churn.calibrator_
    for p in predictions:
        change = p["change"]
        assert change["since"] == since
        churn = change["churn_probability"]
        assert churn["after"] == p["churn_probability"]
        if p["customer_id"] not in changed:
            # nothing changed: same score, nothing listed
            assert churn["before"] == pytest.approx(churn["after"], abs=1e-9)
            assert change["features"] == []
            continue
        feature, value_now, value_then = changed[p["customer_id"]]
        listed = [f for f in change["features"] if f["target"] == "churn"]
        # the only feature whose value changed is the only one listed, with both values
        assert [f["feature"] for f in listed] == [feature]
        (f,) = listed
        assert f["after"] == pytest.approx(value_now) and f["before"] == pytest.approx(value_then)
        raw_after = bundle.score(state.X[[state.store.index[p["customer_id"]]]])[0]["churn_raw"]
        prev = state.previous()
        raw_before = bundle.score(prev.X[[prev.store.index[p["customer_id"]]]])[0]["churn_raw"]
        # its effect goes through the calibrator from the current raw score, like a driver's
        expected = calibrate(raw_after) - calibrate(raw_after - f["contribution_change"])
        assert f["effect"] == pytest.approx(float(expected[0]), abs=1e-6)
        assert churn["before"] == pytest.approx(float(calibrate(raw_before)[0]), abs=1e-6)
        assert (
            change["summary"].startswith("churn risk ")
            and f" since {since}: " in (change["summary"])
        )
        assert "points)" in change["summary"]


def test_predict_and_at_risk_show_the_change_over_http(earlier, service):
    from serving.schemas import AtRiskResponse, PredictResponse

    _, _, changed, since = earlier
    ids = list(changed)[:5]
    r = httpx.post(
        service.url + "/predict",
        json={"customer_ids": ids, "top_k": 3},
        headers=headers(),
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = PredictResponse.model_validate(r.json())  # the published schema, strictly
    for p in body.predictions:
        assert p.change is not None and p.change.since == since
        assert changed[p.customer_id][0] in {f.feature for f in p.change.features}
    quiet = httpx.post(
        service.url + "/predict",
        json={"customer_ids": ids, "explain": False},
        headers=headers(),
        timeout=60,
    ).json()
    assert all("change" not in p for p in quiet["predictions"])
    page = httpx.get(service.url + "/at_risk", params={"limit": 50}, headers=headers(), timeout=60)
    assert page.status_code == 200, page.text
    items = AtRiskResponse.model_validate(page.json()).items
    assert all(i.change is not None and i.change.since == since for i in items)
    for i in items:
        assert i.previous_risk_tier == i.change.previous_risk_tier
        if i.change.churn_probability is not None and i.churn_change is not None:
            move = i.change.churn_probability.after - i.change.churn_probability.before
            assert move == pytest.approx(i.churn_change, abs=1e-5)
