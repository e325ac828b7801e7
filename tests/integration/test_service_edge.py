"""The HTTP edge against the real served service: every bad request a clear 4xx in the
envelope (BentoML's own answers included), nothing non-finite out, doc routes behind a key,
JSON probes, bounded /metrics."""

import socket
import time

import httpx
import pytest

from conftest import ADMIN_KEY, API_KEYS, headers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT = b'{"customer_ids": ["C-1"]}'


def envelope(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code and body["detail"]
    return body["detail"]


@pytest.mark.parametrize("path", ["/predict", "/predict_features", "/reload"])
@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
    ],
)
def test_non_json_bodies_are_415(service, path, content_type):
    key = API_KEYS[0] if path != "/reload" else ADMIN_KEY
    response = httpx.post(
        service.url + path,
        content=PREDICT,
        headers={**headers(key), "Content-Type": content_type},
    )
    envelope(response, 415, "unsupported_media_type")


def test_a_real_multipart_upload_and_a_missing_content_type_are_415(service):
    response = httpx.post(service.url + "/predict", files={"f": PREDICT}, headers=headers())
    envelope(response, 415, "unsupported_media_type")
    # httpx sets no Content-Type for raw content.
    response = httpx.post(service.url + "/predict", content=PREDICT, headers=headers())
    assert "no Content-Type" in envelope(response, 415, "unsupported_media_type")


def test_a_form_body_is_never_echoed(service):
    form = {"email": "jane.doe@example.com", "customer_ids": "C-1"}
    for extra in ({}, {"Content-Type": "application/json"}):
        response = httpx.post(service.url + "/predict", data=form, headers={**headers(), **extra})
        assert 400 <= response.status_code < 500
        assert "jane" not in response.text and "example.com" not in response.text


@pytest.mark.parametrize("number", ["1e309", "Infinity", "-Infinity", "NaN", "1" + "0" * 400])
def test_non_finite_numbers_are_422_naming_the_field(service, number):
    response = httpx.post(
        service.url + "/predict_features",
        content=f'{{"records": [{{"seats": {number}}}]}}'.encode(),
        headers={**headers(), "Content-Type": "application/json"},
    )
    detail = envelope(response, 422, "validation_error")
    assert detail.startswith("records.0.seats") and "finite" in detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_ids": ["a"], "explain": 0}, "explain"),
        ({"customer_ids": ["a"], "explain": "yes"}, "explain"),
        ({"customer_ids": ["a"], "top_k": "5"}, "top_k"),
        ({"customer_ids": [12]}, "customer_ids.0"),
    ],
)
def test_lax_types_are_422(service, body, field):
    response = httpx.post(service.url + "/predict", json=body, headers=headers())
    assert envelope(response, 422, "validation_error").startswith(field)


def test_a_numeric_record_id_is_422_not_twelve_point_zero(service):
    response = httpx.post(
        service.url + "/predict_features",
        json={"records": [{"customer_id": 12}]},
        headers=headers(),
    )
    assert "customer_id must be a string" in envelope(response, 422, "validation_error")


def test_no_response_and_no_log_line_holds_nan_or_infinity(service, trained):
    # Missing values everywhere: drivers show null, never NaN.
    response = httpx.post(
        service.url + "/predict_features",
        json={"records": [{"customer_id": "empty"}], "top_k": 50},
        headers=headers(),
    )
    assert response.status_code == 200
    assert "NaN" not in response.text and "Infinity" not in response.text
    assert any(d["value"] is None for d in response.json()["predictions"][0]["drivers"])
    time.sleep(1.5)  # the log writer flushes every 0.5 s
    settings, _ = trained
    for path in settings.inference_log_path.rglob("*.jsonl"):
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text


def raw_request(service, request: bytes, timeout: float = 30) -> tuple[bytes, float]:
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(request)
        sock.settimeout(timeout)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data, time.perf_counter() - start


def test_a_body_shorter_than_its_content_length_is_408_quickly(service):
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + API_KEYS[0].encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        + b'{"customer_ids": ['
    )
    data, seconds = raw_request(service, request)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert b'"request_timeout"' in body and b"Content-Length promised 500" in body
    assert seconds < 10  # serving.body_timeout_seconds is 2 in the test service


def test_oversized_and_too_many_headers_are_431(service):
    big = httpx.post(
        service.url + "/predict",
        content=PREDICT,
        headers={**headers(), "Content-Type": "application/json", "X-Big": "a" * 20_000},
    )
    assert "bytes" in envelope(big, 431, "request_header_fields_too_large")
    many = {f"x-h{i}": "v" for i in range(150)}
    response = httpx.post(service.url + "/predict", content=PREDICT, headers={**headers(), **many})
    assert "headers sent" in envelope(response, 431, "request_header_fields_too_large")


@pytest.mark.parametrize("path", ["/docs.json", "/", "/docs", "/schema.json"])
def test_doc_routes_need_a_key(service, path):
    envelope(httpx.get(service.url + path), 401, "unauthorized")


def test_docs_json_with_a_key(service):
    response = httpx.get(service.url + "/docs.json", headers=headers())
    assert response.status_code == 200 and response.json()["openapi"] == "3.1.0"


def test_probes_answer_small_json(service):
    assert httpx.get(service.url + "/healthz").json() == {"status": "alive"}
    assert httpx.get(service.url + "/livez").json() == {"status": "alive"}
    ready = httpx.get(service.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["version"] == "1"
    assert ready["features_as_of"] == "2025-12-31"


def test_bentoml_and_starlette_answers_use_the_envelope(service):
    envelope(httpx.get(service.url + "/predict", headers=headers()), 405, "method_not_allowed")
    envelope(
        httpx.put(service.url + "/reload", headers=headers(ADMIN_KEY)), 405, "method_not_allowed"
    )
    envelope(httpx.get(service.url + "/no/such/route", headers=headers()), 404, "not_found")


def test_random_paths_do_not_grow_metrics(service):
    with httpx.Client(base_url=service.url) as client:
        client.get("/warm-up-unknown", headers=headers())
        client.get("/warm-up-unknown")
        before = client.get("/metrics").text
        for i in range(200):
            client.get(f"/random-{i}-{time.time_ns()}", headers=headers() if i % 2 else {})
        after = client.get("/metrics").text
    assert len(after.splitlines()) == len(before.splitlines())
    assert "random-" not in after
    assert 'endpoint="/unknown"' in after


@pytest.fixture(scope="module")
def tight(materialized, tmp_path_factory):
    """The served home under a second instance with our own request timeout at 20 ms and
    BentoML's own concurrency limit at 1 (BENTOML_CONFIG_OVERRIDES), one worker."""
    import json

    from conftest import ServiceProcess

    overrides = {"services": {"npsrisk": {"traffic": {"max_concurrency": 1}}}}
    process = ServiceProcess(
        materialized.home_path,
        tmp_path_factory.mktemp("tight") / "serve.log",
        {
            "NPSRISK_SERVING__REQUEST_TIMEOUT_SECONDS": "0.02",
            "NPSRISK_SERVING__INFERENCE_LOG": "false",
            "NPSRISK_ALERTS__RELAY_POLL_SECONDS": "0",
            "BENTOML_CONFIG_OVERRIDES": json.dumps(overrides),
        },
    )
    try:
        process.wait_until_up()
        yield process
    finally:
        process.stop()


def test_our_504_on_a_slow_request_is_in_the_envelope(tight, materialized):
    from features.store import FeatureStore

    ids = list(FeatureStore.open(materialized.home_path).frame["customer_id"][:1000])
    response = httpx.post(
        tight.url + "/predict",
        json={"customer_ids": ids, "explain": True, "top_k": 50},
        headers=headers(),
        timeout=60,
    )
    assert "serving.request_timeout_seconds" in envelope(response, 504, "timeout")


def test_bentomls_own_429_is_in_the_envelope(tight):
    # A login whose body never arrives holds BentoML's only concurrency slot (the page is
    # inside BentoML's app); GET /model, also inside it, then gets BentoML's own 429.
    held = socket.create_connection(("127.0.0.1", tight.port))
    try:
        held.sendall(
            b"POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nkey="
        )
        time.sleep(0.5)
        response = httpx.get(tight.url + "/model", headers=headers(), timeout=30)
        assert response.status_code == 429, response.text
        detail = envelope(response, 429, "too_many_requests")
        assert "Too many requests" not in response.text and detail
    finally:
        held.close()
    deadline = time.time() + 30
    while httpx.get(tight.url + "/model", headers=headers()).status_code != 200:
        assert time.time() < deadline  # the slot is free again once the login is gone
        time.sleep(0.2)
