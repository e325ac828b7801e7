"""The prediction service over HTTP: a real `bentoml serve` process on 127.0.0.1."""

import json

import bentoml
import httpx
import numpy as np
import pytest
from openapi_spec_validator import validate as validate_openapi

from conftest import ADMIN_KEY, API_KEYS, headers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def known_ids(service, trained):
    from features.store import FeatureStore

    return list(FeatureStore.open(trained[0].home_path).frame["customer_id"][:5])


def post(service, path, body, key=API_KEYS[0], **kwargs):
    return httpx.post(service.url + path, json=body, headers=headers(key), timeout=30, **kwargs)


def test_predict_known_and_unknown_ids(service, known_ids):
    response = post(service, "/predict", {"customer_ids": [known_ids[0], "nobody", known_ids[1]]})
    assert response.status_code == 200
    body = response.json()
    assert body["unknown_customer_ids"] == ["nobody"]
    assert [p["customer_id"] for p in body["predictions"]] == known_ids[:2]
    assert body["model"]["name"] == "npsrisk" and body["model"]["version"] == "1"
    assert body["model"]["predicts"] == ["churn", "nps"] and body["model"]["trained_at"]
    assert body["features_as_of"] == "2025-12-31"
    first = body["predictions"][0]
    assert 0 <= first["churn_probability"] <= 1 and 0 <= first["predicted_nps"] <= 10
    probs = first["category_probabilities"]
    assert sum(probs.values()) == pytest.approx(1, abs=1e-5)
    assert first["nps_category"] == max(probs, key=probs.get)
    assert first["risk_tier"] in ("low", "medium", "high")


def test_drivers_follow_top_k_and_explain(service, known_ids):
    body = post(service, "/predict", {"customer_ids": known_ids[:1], "top_k": 3}).json()
    drivers = body["predictions"][0]["drivers"]
    for target in ("churn", "nps"):
        group = [d for d in drivers if d["target"] == target]
        assert 1 <= len(group) <= 3
        sizes = [abs(d["contribution"]) for d in group]
        assert sizes == sorted(sizes, reverse=True)
        assert all(d["description"] and d["feature"] for d in group)
    quiet = post(service, "/predict", {"customer_ids": known_ids[:1], "explain": False}).json()
    assert "drivers" not in quiet["predictions"][0]
    # The same prediction with or without explanations.
    assert quiet["predictions"][0]["churn_probability"] == pytest.approx(
        body["predictions"][0]["churn_probability"], abs=1e-6
    )


def test_predict_features_scores_inline_records(service):
    base = {
        "customer_id": "what-if",
        "plan_tier": "starter",
        "seats": 5,
        "tickets_open": 0,
        "usage_logins_30d": 2.0,
    }
    worse = {
        **base,
        "customer_id": "what-if-worse",
        "tickets_open": 6,
        "tickets_high_priority_open": 3,
    }
    response = post(service, "/predict_features", {"records": [base, worse, {}], "top_k": 50})
    assert response.status_code == 200
    body = response.json()
    first, second, empty = body["predictions"]
    assert first["customer_id"] == "what-if" and empty["customer_id"] is None
    assert second["churn_probability"] >= first["churn_probability"]
    assert body["features_as_of"] is None and body["unknown_customer_ids"] == []
    # Each driver shows the record's own value (null for a feature the record left out).
    assert second["drivers"]
    for driver in second["drivers"]:
        assert driver["value"] == worse.get(driver["feature"])


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic " + API_KEYS[0]}, 401),
        ({"Authorization": f"Bearer {API_KEYS[0]}"}, 200),
        ({"Authorization": f"Bearer {API_KEYS[1]}"}, 200),  # a second key: rotation
        ({"X-API-Key": API_KEYS[1]}, 200),
    ],
)
def test_api_keys(service, known_ids, header, status):
    response = httpx.post(
        service.url + "/predict", json={"customer_ids": known_ids[:1]}, headers=header, timeout=30
    )
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"] == "unauthorized"


def test_reload_needs_an_admin_key(service):
    assert post(service, "/reload", None).status_code == 401
    response = post(service, "/reload", None, key=ADMIN_KEY)
    assert response.status_code == 200
    assert response.json()["detail"] == "already up to date"


def test_health_probes_need_no_key(service):
    assert httpx.get(service.url + "/healthz").status_code == 200
    assert httpx.get(service.url + "/readyz").status_code == 200
    assert "bentoml_service_request" in httpx.get(service.url + "/metrics").text


TOO_MANY = {"customer_ids": [f"id-{i}" for i in range(1001)]}


@pytest.mark.parametrize(
    ("path", "raw", "code"),
    [
        ("/predict", b'{"customer_ids": [', "malformed_json"),
        ("/predict", b'{"customer_ids": "C-1"}', "validation_error"),
        ("/predict", b'{"customer_ids": []}', "validation_error"),
        ("/predict", b'{"customer_ids": [""]}', "validation_error"),
        ("/predict", b'{"customer_ids": ["a"], "top_k": 0}', "validation_error"),
        ("/predict", b'{"customer_ids": ["a"], "top_k": 51}', "invalid_top_k"),
        ("/predict", b'{"customer_ids": ["a"], "explain": "maybe"}', "validation_error"),
        ("/predict", b'{"customer_ids": ["a"], "surprise": 1}', "validation_error"),
        ("/predict", b"[1, 2]", "validation_error"),
        ("/predict", b"", "empty_body"),
        ("/predict", json.dumps(TOO_MANY).encode(), "too_many_ids"),
        ("/predict", b'{"customer_ids": ["' + b"x" * 2_000_000 + b'"]}', "payload_too_large"),
        ("/predict_features", b'{"records": []}', "validation_error"),
        ("/predict_features", b'{"records": [{"tickets_opn": 1}]}', "unknown_feature"),
        ("/predict_features", b'{"records": [{"tickets_open": "four"}]}', "invalid_value"),
        ("/predict_features", b'{"records": [{"tickets_open": [1]}]}', "validation_error"),
        ("/nowhere", b"{}", "not_found"),
    ],
)
def test_bad_input_gets_a_json_4xx_never_a_500(service, path, raw, code):
    response = httpx.post(
        service.url + path,
        content=raw,
        timeout=30,
        headers={**headers(), "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code and body["detail"]
    assert "Traceback" not in response.text


def test_wrong_method_is_a_json_405(service):
    response = httpx.get(service.url + "/predict", headers=headers())
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_openapi_document_validates_and_describes_every_field(service):
    spec = httpx.get(service.url + "/docs.json", headers=headers()).json()
    validate_openapi(spec)
    assert {"/predict", "/predict_features", "/reload", "/healthz", "/readyz"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    expected = {
        "Prediction": {
            "customer_id",
            "churn_probability",
            "predicted_nps",
            "nps_category",
            "category_probabilities",
            "risk_tier",
            "score_distribution",
            "drivers",
            "change",
        },
        "Driver": {"feature", "value", "contribution", "effect", "target", "description"},
        "PredictResponse": {"model", "features_as_of", "predictions", "unknown_customer_ids"},
        "ModelInfo": {"name", "version", "trained_at", "predicts", "note"},
        "ErrorResponse": {"error", "detail"},
    }
    for name, fields in expected.items():
        assert set(schemas[name]["properties"]) == fields, name
        assert all(
            p.get("description") or "$ref" in p for p in schemas[name]["properties"].values()
        )
    nullable = schemas["PredictResponse"]["properties"]["features_as_of"]["anyOf"]
    assert {"type": "null"} in nullable
    predict = spec["paths"]["/predict"]["post"]
    ref = predict["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schemas[ref.rsplit("/", 1)[-1]]
    assert set(request["properties"]) == {"customer_ids", "explain", "top_k"}
    assert all(p.get("description") for p in request["properties"].values())
    assert {"200", "400", "401", "408", "413", "415", "422", "429", "431", "503", "504"} <= set(
        predict["responses"]
    )
    assert predict["security"]


def test_bentoml_client_sends_its_token_as_a_bearer_header(service, known_ids):
    with bentoml.SyncHTTPClient(service.url, token=API_KEYS[1]) as client:
        body = client.predict({"customer_ids": known_ids[:2], "top_k": 1})
    assert [p["customer_id"] for p in body["predictions"]] == known_ids[:2]


def test_every_prediction_is_logged_without_personal_data(service, known_ids, trained):
    import time

    from serving.inference_log import read_inference_log

    settings, _ = trained
    before = len(read_inference_log(settings.inference_log_path))
    post(service, "/predict", {"customer_ids": known_ids[:3], "explain": False})
    deadline = time.time() + 10
    while time.time() < deadline:
        log = read_inference_log(settings.inference_log_path)
        if len(log) >= before + 3:
            break
        time.sleep(0.2)
    # Other processes (a Bento served in another test) may write to the same home.
    recent = log[log["customer_id"].isin(known_ids[:3])].tail(3)
    assert sorted(recent["customer_id"]) == sorted(known_ids[:3])
    assert recent["request_id"].nunique() == 1
    assert (recent["model_version"] == "1").all() and (
        recent["features_as_of"] == "2025-12-31"
    ).all()
    features = recent["features"].iloc[0]
    assert "tickets_open" in features and "contact_email" not in features
    assert 0 <= recent["outputs"].iloc[0]["churn_probability"] <= 1


def test_keys_and_personal_data_never_reach_the_logs(service, known_ids, demo_data):
    post(service, "/predict", {"customer_ids": known_ids[:2]})
    post(service, "/predict", {"customer_ids": ["jane.doe@example.com"]})  # a mistake, logged?
    httpx.post(
        service.url + "/predict",
        json={"customer_ids": ["x"]},
        headers={"Authorization": "Bearer leaked-guess-999"},
    )
    text = service.log_path.read_text()
    for secret in (*API_KEYS, ADMIN_KEY, "leaked-guess-999", "jane.doe@example.com"):
        assert secret not in text
    emails = demo_data.tables["customers"]["contact_email"].head(200)
    assert not any(email in text for email in emails)


def test_no_request_produced_a_server_error(service):
    text = service.log_path.read_text()
    assert "status=500" not in text and "Traceback" not in text


def test_http_drivers_are_the_models_shap_values(service, known_ids, trained):
    from features.store import FeatureStore
    from serving.state import load_champion

    settings, _ = trained
    bundle = load_champion(settings).bundle
    store = FeatureStore.open(settings.home_path)
    row = store.frame[store.frame["customer_id"] == known_ids[0]]
    contributions = bundle.contributions(bundle.encoder.transform(row), "churn")[0, :-1]
    body = post(service, "/predict", {"customer_ids": known_ids[:1], "top_k": 3}).json()
    churn = [d for d in body["predictions"][0]["drivers"] if d["target"] == "churn"]
    top = np.argsort(-np.abs(contributions))[:3]
    assert [d["feature"] for d in churn] == [bundle.features[i] for i in top]
    assert [d["contribution"] for d in churn] == pytest.approx(contributions[top], abs=1e-6)
