"""The interventions API over HTTP: /presurvey, /at_risk, /nps_forecast, /interventions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from conftest import API_KEYS, headers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def store_ids(service, trained):
    from db import Database, upgrade_database
    from features.store import FeatureStore

    settings = trained[0]
    database = Database.from_settings(settings)
    upgrade_database(database)  # what `npsrisk serve` does before its workers start
    database.dispose()
    return list(FeatureStore.open(settings.home_path).frame["customer_id"])


def post(service, path, body, key=API_KEYS[0]):
    return httpx.post(service.url + path, json=body, headers=headers(key), timeout=60)


def get(service, path, params=None):
    return httpx.get(service.url + path, params=params, headers=headers(), timeout=60)


SURVEY = (datetime.now(UTC).date() + timedelta(days=21)).isoformat()


def test_presurvey_lists_everyone_and_plans_once(service, store_ids):
    ids = [*store_ids[:300], "NOBODY", store_ids[0]]
    first = post(service, "/presurvey", {"customer_ids": ids, "survey_date": SURVEY})
    assert first.status_code == 200, first.text
    body = first.json()
    # every scheduled customer, in order, the survey never suppressed; unknown listed too
    assert [i["customer_id"] for i in body["items"]] == ids
    assert all(
        i["survey_suppressed"] is False and i["survey_date"] == SURVEY for i in body["items"]
    )
    assert body["unknown_customer_ids"] == ["NOBODY"]
    assert body["stored"] and isinstance(body["seed"], int)
    treated = [i for i in body["items"] if i["arm"] == "treatment"]
    control = [i for i in body["items"] if i["arm"] == "control"]
    assert treated and all(i["intervene"] and i["intervention_id"] and i["why"] for i in treated)
    assert all(not i["intervene"] and i["playbook"] for i in control)
    assert all(date.fromisoformat(i["due_date"]) < date.fromisoformat(SURVEY) for i in treated)
    second = post(service, "/presurvey", {"customer_ids": ids[:300], "survey_date": SURVEY}).json()
    again = {i["customer_id"]: i for i in second["items"]}
    for item in treated:
        assert again[item["customer_id"]]["arm"] == "open_intervention"
        assert again[item["customer_id"]]["intervention_id"] == item["intervention_id"]
    assert second["counts"].get("treatment", 0) <= len(control)  # only controls can be re-drawn


def test_interventions_list_status_and_reassign(service, store_ids):
    listed = get(service, "/interventions", {"status": "planned", "limit": 5})
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] >= 1 and len(page["interventions"]) <= 5
    iv = page["interventions"][0]
    assert iv["history"][0]["to_status"] == "planned"
    url = f"/interventions/{iv['id']}/status"
    moved = post(service, url, {"status": "contacted", "actor": "ana", "note": "called"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["history"][-1]["actor"] == "ana"
    illegal = post(service, url, {"status": "planned", "actor": "ana"})
    assert illegal.status_code == 409
    assert illegal.json()["error"] == "illegal_transition"
    assert "resolved, snoozed, dismissed" in illegal.json()["detail"]
    snooze = post(service, url, {"status": "snoozed", "actor": "ana"})
    assert snooze.status_code == 400 and "snooze_until" in snooze.json()["detail"]
    assert (
        post(
            service, "/interventions/iv-nope/status", {"status": "contacted", "actor": "a"}
        ).status_code
        == 404
    )
    assert get(service, "/interventions", {"colour": "red"}).status_code == 400
    mine = get(service, "/interventions", {"customer_id": iv["customer_id"]}).json()
    assert mine["total"] == 1 and mine["interventions"][0]["status"] == "contacted"
    moved = post(
        service,
        "/interventions/reassign",
        {"to_owner": "cy@example.com", "actor": "lead", "intervention_ids": [iv["id"]]},
    )
    assert moved.json() == {"moved": 1}
    assert get(service, "/interventions", {"owner": "cy@example.com"}).json()["total"] == 1


def test_at_risk_ranks_filters_and_pages(service, store_ids):
    response = get(service, "/at_risk", {"limit": 10, "min_tier": "medium"})
    assert response.status_code == 200, response.text
    body = response.json()
    churn = [i["churn_probability"] for i in body["items"]]
    assert churn == sorted(churn, reverse=True) and body["total"] >= len(churn)
    assert all(i["risk_tier"] in ("medium", "high") and i["drivers"] for i in body["items"])
    page2 = get(service, "/at_risk", {"limit": 10, "offset": 10, "min_tier": "medium"}).json()
    assert page2["items"][0]["rank"] == 11 if page2["items"] else True
    by_rev = get(service, "/at_risk", {"sort": "revenue_at_risk", "limit": 20}).json()["items"]
    rar = [i["revenue_at_risk"] for i in by_rev]
    assert rar == sorted(rar, reverse=True)
    enterprise = get(service, "/at_risk", {"plan_tier": "enterprise", "limit": 50}).json()
    assert enterprise["items"] and all(
        i["segments"]["plan_tier"] == "enterprise" for i in enterprise["items"]
    )
    contacted = get(service, "/at_risk", {"intervention_status": "contacted"}).json()
    assert contacted["total"] >= 1
    # A value the schema refuses is a 422 naming the field; a filter on no column is a 400.
    for bad, status in (
        ({"sort": "bogus"}, 422),
        ({"min_tier": "extreme"}, 422),
        ({"limit": 0}, 422),
        ({"intervention_status": ""}, 422),
        ({"country": "fr"}, 400),
    ):
        r = get(service, "/at_risk", bad)
        assert r.status_code == status, (bad, r.text)
        assert set(r.json()) >= {"error", "detail"}


def test_nps_forecast_for_the_planned_wave(service, store_ids):
    response = get(service, "/nps_forecast", {"survey_date": SURVEY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["wave"]["customers"] == 300  # the stored wave (NOBODY has no features)
    assert body["wave"]["low"] <= body["wave"]["nps"] <= body["wave"]["high"]
    assert body["base"]["customers"] == len(store_ids)
    assert "response model" in body["response_model"]
    assert {s["column"] for s in body["segments"]} >= {"plan_tier"}
    missing = get(service, "/nps_forecast", {"survey_date": "2001-01-01"})
    assert missing.status_code == 404 and missing.json()["error"] == "wave_not_found"
    inline = post(service, "/nps_forecast", {"customer_ids": store_ids[:100]}).json()
    assert inline["wave"]["customers"] == 100


def test_openapi_documents_the_contract_routes(service):
    spec = get(service, "/docs.json").json()
    assert "get" in spec["paths"]["/at_risk"] and "post" in spec["paths"]["/presurvey"]
    assert "get" in spec["paths"]["/nps_forecast"] and "get" in spec["paths"]["/interventions"]
    assert "post" in spec["paths"]["/interventions/{id}/status"]
    names = {p["name"] for p in spec["paths"]["/at_risk"]["get"]["parameters"]}
    assert {"limit", "offset", "min_tier", "sort", "owner"} <= names


def test_the_status_route_reads_its_body_at_the_edge_like_predict(service):
    """/interventions/{id}/status is read by the same strict body reader as /predict: key
    first, size limit, JSON media type, a body that never arrives times out."""
    import socket

    url = service.url + "/interventions/iv-any/status"
    body = {"status": "contacted", "actor": "ana"}
    # no key: 401 before the body is even parsed (a malformed one included)
    assert httpx.post(url, content=b"{not json", timeout=30).status_code == 401
    huge = httpx.post(
        url,
        content=b'{"actor": "' + b"a" * 2_000_000 + b'"}',
        headers={**headers(), "content-type": "application/json"},
        timeout=30,
    )
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    text = httpx.post(
        url, content=b"status=contacted", headers={**headers(), "content-type": "text/plain"}
    )
    assert text.status_code == 415 and text.json()["error"] == "unsupported_media_type"
    assert post(service, "/interventions/iv-any/status", [body]).status_code == 422
    # the id comes from the path and wins over one in the body
    missing = post(service, "/interventions/iv-nope/status", {**body, "id": "other"})
    assert missing.status_code == 404 and "iv-nope" in missing.json()["detail"]
    # a body promised but never sent: 408 within serving.body_timeout_seconds (2 s here)
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /interventions/iv-any/status HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {API_KEYS[0]}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
