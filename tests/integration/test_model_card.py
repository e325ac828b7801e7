"""The feature catalogue over HTTP: GET /model, /predict_features checks, the records schema."""

import re

import httpx
import pytest
from openapi_spec_validator import validate as validate_openapi

from conftest import headers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def bundle(trained):
    from serving.state import load_champion

    return load_champion(trained[0]).bundle


def post(service, body):
    return httpx.post(service.url + "/predict_features", json=body, headers=headers(), timeout=30)


def test_get_model_publishes_the_card_and_every_feature(service, bundle):
    assert httpx.get(service.url + "/model").status_code == 401
    response = httpx.get(service.url + "/model", headers=headers(), timeout=30)
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["name"] == "npsrisk" and card["version"] == "1" and card["trained_at"]
    assert card["heads"] == ["churn", "nps"]
    metrics = card["validation"]["metrics"]
    assert 0.5 < metrics["churn"]["roc_auc"] <= 1 and 0 < metrics["nps"]["mae"] < 10
    assert card["validation"]["window"] and card["features_as_of"] == "2025-12-31"
    features = {f["name"]: f for f in card["features"]}
    assert list(features) == bundle.features
    assert features["plan_tier"]["type"] == "category"
    assert set(features["plan_tier"]["categories"]) == {"starter", "pro", "enterprise"}
    assert features["annual_contract"]["type"] == "boolean"
    tenure = features["tenure_days"]
    assert tenure["type"] == "number" and tenure["unit"] == "days" and tenure["minimum"] == 0
    assert 1_000 < tenure["maximum"] < 50_000
    assert features["tickets_open"]["integer"] and features["tickets_open"]["minimum"] == 0
    assert all(f["description"] and f["when_missing"] != "no data" for f in features.values())


@pytest.mark.parametrize(
    ("record", "code", "words"),
    [
        ({"tenure_days": 1e308}, "invalid_value", ["records[0].tenure_days", "out of range"]),
        ({"tickets_open": -2}, "invalid_value", ["records[0].tickets_open", "from 0"]),
        ({"seats": 2.5}, "invalid_value", ["records[0].seats", "whole number"]),
        ({"plan_tier": "platinum"}, "invalid_value", ["plan_tier", "'enterprise', 'pro'"]),
        ({"annual_contract": 3}, "invalid_value", ["annual_contract", "true, false, 0 or 1"]),
        ({"tickets_opn": 1}, "unknown_feature", ["records[0].tickets_opn", "GET /model"]),
    ],
)
def test_predict_features_rejects_values_the_catalogue_does_not_accept(
    service, record, code, words
):
    response = post(service, {"records": [record]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == code
    for word in words:
        assert word in body["detail"]


def test_predict_features_describes_values_in_words(service):
    record = {
        "annual_contract": 1,
        "mrr": 20029.0,
        "seats": 161,
        "region": "na",
        "plan_tier": "enterprise",
        "tickets_open": 4,
        "usage_logins_days_since_active": 4,
    }
    body = post(service, {"records": [record], "top_k": 50}).json()
    words = {d["feature"]: d["description"] for d in body["predictions"][0]["drivers"]}
    expected = {
        "annual_contract": "on an annual contract",
        "mrr": "MRR of 20,029",
        "seats": "161 seats",
        "region": "region: NA",
        "plan_tier": "on the enterprise plan",
        "tickets_open": "4 open tickets right now",
        "usage_logins_days_since_active": "last login 4 days ago",
    }
    shown = {k: v for k, v in expected.items() if k in words}
    assert len(shown) >= 3, words  # the drivers the model actually uses
    assert {k: words[k] for k in shown} == shown
    assert not any(re.search(r" is [\d.,]+$| is 1$|^no data$", w) for w in words.values())


def test_openapi_records_list_every_feature_with_bounds(service, bundle):
    spec = httpx.get(service.url + "/docs.json", headers=headers(), timeout=30).json()
    validate_openapi(spec)
    request = spec["components"]["schemas"]["PredictFeaturesRequest"]
    record = request["properties"]["records"]["items"]
    assert record["additionalProperties"] is False
    assert set(record["properties"]) == {"customer_id", *bundle.features}
    tickets = record["properties"]["tickets_open"]
    assert tickets["type"] == ["integer", "null"] and tickets["minimum"] == 0
    assert "maximum" in tickets
    assert None in record["properties"]["plan_tier"]["enum"]
    model = spec["paths"]["/model"]["get"]
    assert model["security"] and "200" in model["responses"]
    assert "ModelCardResponse" in spec["components"]["schemas"]
