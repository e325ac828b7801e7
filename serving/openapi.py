"""The published OpenAPI document: BentoML's, made valid (3.1) and true to the real API.

BentoML 1.4.39 emits a 3.0.2 document that does not validate (a non-standard ``root_input``
key, 3.1-style null types) and documents error bodies it does not send. This rewrites it:
OpenAPI 3.1, the API-key security schemes, every bound the service enforces (the maxima that
are settings included), and the ``{"error", "detail"}`` body on every error a route can return.
The document itself is served by ``serving.http.ApiRouter`` at ``/docs.json`` (key required).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from npsrisk.settings import ServingSettings
from serving.model_card import MODEL_PATH
from serving.schemas import (
    ErrorResponse,
    HealthResponse,
    ModelCardResponse,
    PredictFeaturesRequest,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
    ReloadResponse,
)

REF = "#/components/schemas/{model}"

ERRORS = {
    "400": "Bad input: malformed JSON, an empty body, too many ids or records, top_k too large.",
    "401": "Missing or invalid API key.",
    "403": "/reload without any admin key configured (set NPSRISK_ADMIN_KEYS).",
    "408": "The body did not arrive within serving.body_timeout_seconds.",
    "413": "Request body larger than serving.max_body_bytes.",
    "415": "The body is not sent as JSON (Content-Type: application/json).",
    "422": "The body is JSON but breaks the schema (wrong types, non-finite numbers, unknown "
    "keys, out-of-range values), or a /predict_features record holds a key that is not a "
    "feature or a value the model's feature catalogue does not accept (GET /model lists them).",
    "429": "Shed under load (serving.max_concurrency): retry after the Retry-After seconds.",
    "431": "Too many or too large request headers.",
    "500": "Unexpected server error (never a stack trace).",
    "503": "Not ready: no champion model or no materialized feature store yet.",
    "504": "No answer within serving.request_timeout_seconds.",
}
PROBES = {
    "/healthz": (HealthResponse, "The process is alive."),
    "/livez": (HealthResponse, "The process is alive."),
    "/readyz": (ReadyResponse, "A model and a feature store are loaded."),
}


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "root_input"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


# Each route's request and response models; their pydantic schemas replace BentoML's
# (which drops nullability, e.g. features_as_of becomes a plain string).
ROUTES: dict[str, tuple[type[BaseModel] | None, type[BaseModel]]] = {
    "/predict": (PredictRequest, PredictResponse),
    "/predict_features": (PredictFeaturesRequest, PredictResponse),
    "/reload": (None, ReloadResponse),
}


def _model_schemas() -> dict[str, Any]:
    models = {m for pair in ROUTES.values() for m in pair if m is not None}
    models |= {ErrorResponse, HealthResponse, ReadyResponse, ModelCardResponse}
    _, top = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    return top["$defs"]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _publish_bounds(schemas: dict[str, Any], serving: ServingSettings) -> None:
    """The maxima that are settings, so a client (or a fuzzer) knows every bound."""
    for name, items, most in (
        ("PredictRequest", "customer_ids", serving.max_ids_per_request),
        ("PredictFeaturesRequest", "records", serving.max_records_per_request),
    ):
        props = schemas[name]["properties"]
        props[items]["maxItems"] = most
        props["top_k"]["maximum"] = serving.max_top_k


def _records_schema(schemas: dict[str, Any], catalog: Any) -> None:
    """The records of /predict_features as the serving model's catalogue accepts them:
    every feature with its type and bounds, and no other key."""
    records = schemas["PredictFeaturesRequest"]["properties"]["records"]
    if catalog is None:
        records["description"] += " The accepted names are listed by GET /model."
        return
    records["items"] = catalog.record_schema()


def _model_operation() -> dict[str, Any]:
    return {
        "get": {
            "summary": "The serving model's card and its features",
            "description": "Name, version, trained_at, heads, validation metrics, and every "
            "feature with its type, unit, accepted range or categories and description.",
            "operationId": "model_card",
            "security": [{"bearer": []}, {"apiKey": []}],
            "responses": {
                "200": {
                    "description": "Successful response",
                    "content": {"application/json": {"schema": _ref(ModelCardResponse)}},
                },
                **_error_responses(["401", "503"]),
            },
        }
    }


def _error_responses(codes) -> dict[str, Any]:
    return {
        code: {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": _ref(ErrorResponse)}},
        }
        for code in codes
    }


def publishable_spec(
    raw: dict[str, Any],
    version: str,
    serving: ServingSettings | None = None,
    catalog: Any = None,
) -> dict[str, Any]:
    """The document to publish; ``catalog`` (the serving model's features.catalog
    FeatureCatalog) spells out the records of /predict_features."""
    spec = _strip(copy.deepcopy(raw))
    spec["openapi"] = "3.1.0"
    spec.pop("servers", None)
    spec["info"] = {
        "title": "npsrisk prediction service",
        "version": version,
        "description": "Next-NPS and churn-risk predictions with SHAP drivers for CRMs. "
        "Send `Authorization: Bearer <key>` or `X-API-Key: <key>` on every route but the "
        "health probes and /metrics.",
    }
    schemas = _model_schemas()
    _publish_bounds(schemas, serving or ServingSettings())
    _records_schema(schemas, catalog)
    spec["components"] = {
        "schemas": schemas,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
    }
    paths: dict[str, Any] = {}
    for path, (model, description) in PROBES.items():
        responses = {
            "200": {
                "description": description,
                "content": {"application/json": {"schema": _ref(model)}},
            }
        }
        if path == "/readyz":
            responses |= _error_responses(["503"])
        paths[path] = {"get": {"summary": description, "security": [], "responses": responses}}
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics of this instance.",
            "security": [],
            "responses": {
                "200": {
                    "description": "Prometheus text format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    for path, (request, response) in ROUTES.items():
        operation = dict(spec.get("paths", {}).get(path, {}).get("post", {}))
        operation.pop("requestBody", None)
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(request)}},
            }
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        codes = list(ERRORS)
        operation["responses"] = {
            "200": {
                "description": "Successful response",
                "content": {"application/json": {"schema": _ref(response)}},
            },
            **_error_responses(codes),
        }
        paths[path] = {"post": operation}
    paths[MODEL_PATH] = _model_operation()
    spec["paths"] = paths
    spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec
