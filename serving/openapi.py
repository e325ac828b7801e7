"""The published OpenAPI document: BentoML's, made valid (3.1) and true to the real API.

BentoML 1.4.39 emits a 3.0.2 document that does not validate (a non-standard ``root_input``
key, 3.1-style null types) and documents error bodies it does not send. This rewrites it:
OpenAPI 3.1, the API-key security schemes, and the ``{"error", "detail"}`` body on every
error a route can return.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serving.http import PUBLIC_PATHS, send_json_error
from serving.model_card import MODEL_PATH
from serving.schemas import (
    ErrorResponse,
    ModelCardResponse,
    PredictFeaturesRequest,
    PredictRequest,
    PredictResponse,
    ReloadResponse,
)

logger = logging.getLogger(__name__)
REF = "#/components/schemas/{model}"

ERRORS = {
    "400": "Bad input: malformed JSON, wrong types, out-of-range values, too many ids.",
    "401": "Missing or invalid API key.",
    "413": "Request body larger than serving.max_body_bytes.",
    "422": "A /predict_features record with a key that is not a feature, or a value the "
    "model's feature catalogue does not accept (GET /model lists them).",
    "500": "Unexpected server error (never a stack trace).",
    "503": "Not ready: no champion model or no materialized feature store yet.",
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
    models = {m for pair in ROUTES.values() for m in pair if m is not None} | {
        ErrorResponse,
        ModelCardResponse,
    }
    _, top = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    return top["$defs"]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


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
                **{
                    code: {
                        "description": ERRORS[code],
                        "content": {"application/json": {"schema": _ref(ErrorResponse)}},
                    }
                    for code in ("401", "503")
                },
            },
        }
    }


def publishable_spec(raw: dict[str, Any], version: str, catalog: Any = None) -> dict[str, Any]:
    """The document to publish; ``catalog`` (the serving model's features.catalog
    FeatureCatalog) spells out the records of /predict_features."""
    spec = _strip(raw)
    spec["openapi"] = "3.1.0"
    spec.pop("servers", None)
    spec["info"] = {
        "title": "npsrisk prediction service",
        "version": version,
        "description": "Next-NPS and churn-risk predictions with SHAP drivers for CRMs. "
        "Send `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    }
    schemas = _model_schemas()
    _records_schema(schemas, catalog)
    spec["components"] = {
        "schemas": schemas,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
    }
    paths = {p: item for p, item in spec.get("paths", {}).items() if p in PUBLIC_PATHS}
    for path, (request, response) in ROUTES.items():
        operation = dict(spec.get("paths", {}).get(path, {}).get("post", {}))
        operation.pop("requestBody", None)
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(request)}},
            }
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        operation["responses"] = {
            "200": {
                "description": "Successful response",
                "content": {"application/json": {"schema": _ref(response)}},
            },
            **{
                code: {
                    "description": description,
                    "content": {"application/json": {"schema": _ref(ErrorResponse)}},
                }
                for code, description in ERRORS.items()
            },
        }
        paths[path] = {"post": operation}
    paths[MODEL_PATH] = _model_operation()
    spec["paths"] = paths
    return spec


class OpenApiMiddleware:
    """Answers ``GET /docs.json`` with the publishable document."""

    def __init__(
        self, app, spec: Callable[[], dict[str, Any]], key: Callable[[], Any] = lambda: None
    ):
        self.app = app
        self.spec = spec
        self.key = key  # the document is rebuilt when this changes (the serving model)
        self._body: bytes | None = None
        self._key: Any = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/docs.json":
            return await self.app(scope, receive, send)
        key = self.key()
        if self._body is None or key != self._key:
            self._key = key
            try:
                self._body = json.dumps(self.spec()).encode()
            except Exception:
                logger.exception("could not build the OpenAPI document")
                return await send_json_error(
                    send, 500, "internal_error", "the OpenAPI document could not be built"
                )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body})
        return None
