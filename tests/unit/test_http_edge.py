"""The edge's pure parts: the strict parser, the one encoder, the envelope, the schema bounds."""

import json
import math

import numpy as np
import pytest

from npsrisk.settings import ServingSettings
from serving.http import (
    ApiError,
    encode_json,
    is_json_media,
    normalize_error,
    parse_json,
    validate_request,
)
from serving.schemas import PredictFeaturesRequest, PredictRequest


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf")],
)
def test_the_encoder_never_emits_non_finite_numbers(value):
    text = encode_json({"a": [1.5, value, {"b": value}], "c": "x"}).decode()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": [1.5, None, {"b": None}], "c": "x"}


def test_the_encoder_keeps_finite_values_and_numpy_scalars():
    body = {"n": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "s": "é"}
    assert json.loads(encode_json(body)) == {"n": 3, "f": 0.5, "b": True, "s": "é"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty_body"),
        (b"   ", "empty_body"),
        (b'{"a": ', "malformed_json"),
        (b"\xff\xfe{}", "malformed_json"),
        (b"[" * 100_000, "malformed_json"),
        (b"email=jane.doe%40example.com&name=Jane", "malformed_json"),
    ],
)
def test_bad_bodies_are_400_without_echoing_them(raw, code):
    with pytest.raises(ApiError) as caught:
        parse_json(raw)
    assert caught.value.status == 400 and caught.value.code == code
    assert "jane" not in caught.value.detail.lower()


@pytest.mark.parametrize(
    "number", ["1e309", "-1e309", "Infinity", "-Infinity", "NaN", "1" + "0" * 400]
)
def test_non_finite_numbers_are_422_naming_the_field(number):
    data = parse_json(f'{{"records": [{{"seats": 2}}, {{"seats": {number}}}]}}'.encode())
    with pytest.raises(ApiError) as caught:
        validate_request(PredictFeaturesRequest, data)
    assert caught.value.status == 422
    assert caught.value.detail.startswith("records.1.seats: ")
    assert "finite" in caught.value.detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_ids": ["a"], "explain": 0}, "explain"),
        ({"customer_ids": ["a"], "explain": "yes"}, "explain"),
        ({"customer_ids": ["a"], "top_k": "5"}, "top_k"),
        ({"customer_ids": ["a"], "top_k": 5.5}, "top_k"),
        ({"customer_ids": ["a"], "top_k": math.inf}, "top_k"),
        ({"customer_ids": ["a"], "top_k": True}, "top_k"),
        ({"customer_ids": [12]}, "customer_ids.0"),
        ({"customer_ids": ["a"], "extra": 1}, "extra"),
        ({}, "customer_ids"),
    ],
)
def test_requests_are_strict(body, field):
    data = parse_json(json.dumps(body).encode())
    with pytest.raises(ApiError) as caught:
        validate_request(PredictRequest, data)
    assert caught.value.status == 422
    assert caught.value.detail.split(":")[0] == field


def test_an_integral_float_is_an_integer_as_json_schema_says():
    assert validate_request(PredictRequest, {"customer_ids": ["a"], "top_k": 5.0}).top_k == 5


def test_a_numeric_record_id_is_refused_not_turned_into_text():
    with pytest.raises(ApiError) as caught:
        validate_request(PredictFeaturesRequest, {"records": [{"customer_id": 12}]})
    assert "customer_id must be a string" in caught.value.detail
    ok = validate_request(PredictFeaturesRequest, {"records": [{"customer_id": "C-1"}]})
    assert ok.records[0]["customer_id"] == "C-1"


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"application/vnd.api+json", True),
        (b"multipart/form-data; boundary=x", False),
        (b"application/x-www-form-urlencoded", False),
        (b"text/plain", False),
        (b"application/xml", False),
        (None, False),
    ],
)
def test_only_json_content_types_are_accepted(header, ok):
    assert is_json_media(header) is ok


def test_foreign_error_bodies_become_the_envelope_without_echoing_input():
    assert normalize_error(504, b'{"error": "Not able to process the request in 60 seconds"}')[
        0
    ] == ("timeout")
    assert normalize_error(429, b'{"error": "Too many requests"}') == (
        "too_many_requests",
        "the service is at capacity: retry after the Retry-After seconds",
    )
    code, detail = normalize_error(400, b"email=jane%40example.com")
    assert code == "invalid_request" and "jane" not in detail
    code, detail = normalize_error(500, b"Traceback (most recent call last): ...")
    assert code == "internal_error" and "Traceback" not in detail


def test_the_published_schema_states_every_bound():
    from serving.openapi import _model_schemas, _publish_bounds

    schemas = _model_schemas()
    _publish_bounds(schemas, ServingSettings(max_top_k=7, max_ids_per_request=9))
    request = schemas["PredictRequest"]
    assert request["additionalProperties"] is False
    assert request["properties"]["top_k"]["maximum"] == 7
    assert request["properties"]["top_k"]["minimum"] == 1
    assert request["properties"]["customer_ids"]["maxItems"] == 9
    assert request["properties"]["customer_ids"]["items"]["maxLength"] == 200
    assert schemas["PredictFeaturesRequest"]["additionalProperties"] is False
    assert schemas["PredictFeaturesRequest"]["properties"]["records"]["maxItems"] == 1000
