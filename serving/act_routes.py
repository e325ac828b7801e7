"""The contract's GET and path-parameter routes of the interventions API, over BentoML's POSTs.

BentoML 1.4 routes an ``@bentoml.api`` as POST with a JSON body only. ``GET /at_risk``,
``GET /nps_forecast`` and ``GET /interventions`` take query parameters, and ``POST
/interventions/{id}/status`` a path parameter; this middleware validates the query with the
route's pydantic model (a bad one is a 400 in the error envelope) and hands the service the
same JSON body a POST would carry, so one method serves both forms.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from pydantic import BaseModel, ValidationError

from serving.http import PATH_PARAMS, send_json_error
from serving.schemas import AtRiskRequest, InterventionsRequest, NpsForecastRequest

# GET path -> (the service's POST route, query model, whether unknown keys filter segments)
GET_ROUTES: dict[str, tuple[str, type[BaseModel], bool]] = {
    "/at_risk": ("/at_risk", AtRiskRequest, True),
    "/nps_forecast": ("/nps_forecast", NpsForecastRequest, True),
    "/interventions": ("/interventions", InterventionsRequest, False),
}
STATUS_PATH = re.compile(r"^/interventions/(?P<id>[^/]+)/status$")
STATUS_ROUTE = "/interventions/status"


def query_body(query: str, model: type[BaseModel], segments: bool) -> bytes:
    """The JSON body for a query string; ValidationError or ValueError on bad input."""
    values: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):  # an empty value is refused
        values[key] = f"{values[key]},{value}" if key in values else value  # repeated: any of
    fields = set(model.model_fields)
    data: dict = {k: v for k, v in values.items() if k in fields and k != "segments"}
    for key, value in list(data.items()):  # flags are strict JSON booleans: spell them here
        annotation = model.model_fields[key].annotation
        if annotation is bool:
            data[key] = {"true": True, "false": False}.get(value.lower(), value)
        elif annotation is int and re.fullmatch(r"[+-]?\d{1,18}", value):
            data[key] = int(value)
    extra = {k: v for k, v in values.items() if k not in fields or k == "segments"}
    if segments:
        data["segments"] = extra
    elif extra:
        raise ValueError(
            f"unknown query parameter(s): {', '.join(sorted(extra))}; "
            f"accepted: {', '.join(sorted(fields))}"
        )
    return model.model_validate(data).model_dump_json(exclude_unset=False).encode()


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in exc.errors()
    )


class ActRoutesMiddleware:
    """Rewrites the interventions API's GET and path-parameter forms to the service's POSTs."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if method in ("GET", "HEAD") and path in GET_ROUTES:
            route, model, segments = GET_ROUTES[path]
            try:
                body = query_body(scope.get("query_string", b"").decode("latin-1"), model, segments)
            except ValidationError as exc:
                return await send_json_error(send, 422, "validation_error", _errors(exc))
            except ValueError as exc:
                return await send_json_error(send, 400, "invalid_query", str(exc))
            return await self.app(_as_post(scope, route, body), _body(body, receive), send)
        if path in GET_ROUTES and method != "POST":
            # Both forms of the route, as the document lists them (BentoML would say POST).
            return await send_json_error(
                send,
                405,
                "method_not_allowed",
                f"{path} answers GET (query) and POST (body)",
                headers=[(b"allow", b"GET, POST")],
            )
        match = STATUS_PATH.match(path)
        if method == "POST" and match:
            # Only the path is rewritten: the body is the client's, read by the router with the
            # same limits, timeout, media-type check and key check as every POST (the id joins
            # the parsed body there).
            scope = {
                **scope,
                "path": STATUS_ROUTE,
                "raw_path": STATUS_ROUTE.encode(),
                PATH_PARAMS: {"id": unquote(match["id"])},
            }
        return await self.app(scope, receive, send)


def _as_post(scope, path: str, body: bytes) -> dict:
    headers = [
        (k, v)
        for k, v in scope.get("headers", [])
        if k.lower() not in (b"content-type", b"content-length")
    ]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        **scope,
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }


def _body(body: bytes, upstream):
    """A receive that yields ``body`` once, then the client's own messages (disconnect)."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        while True:
            message = await upstream()
            if message["type"] != "http.request":
                return message

    return receive


# --- the OpenAPI document's entries for these routes ----------------------------------------


def _error_table() -> dict[str, str]:
    """The service's one table of error answers (serving.openapi.ERRORS), for these routes:
    all but the admin-only 403, with 400 and 503 worded for them."""
    from serving.openapi import ERRORS

    errors = {code: text for code, text in ERRORS.items() if code != "403"}
    errors["400"] = "Bad input: malformed JSON, an empty body, unknown filters."
    errors["503"] = "Not ready: no model or feature store yet, or the database is not migrated."
    return errors


def _query_parameters(model: type[BaseModel], segments: bool) -> list[dict]:
    from pydantic import TypeAdapter

    params = []
    # The model's own schema keeps each field's bounds (ge/le), which a bare type loses.
    properties = model.model_json_schema(ref_template="#/components/schemas/{model}")["properties"]
    for name, field in model.model_fields.items():
        if name in ("segments", "customer_ids"):
            continue
        schema = dict(properties.get(name) or TypeAdapter(field.annotation).json_schema())
        for key in ("title", "description", "default"):
            schema.pop(key, None)
        params.append(
            {
                "name": name,
                "in": "query",
                "required": field.is_required(),
                "description": field.description or "",
                "schema": schema,
            }
        )
    if segments:
        params.append(
            {
                "name": "segment filters",
                "in": "query",
                "required": False,
                "description": "Any other key filters a segment column, e.g. "
                "plan_tier=enterprise (comma-separated or repeated: any of).",
                "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "style": "form",
                "explode": True,
            }
        )
    return params


def document_act_routes(spec: dict) -> dict:
    """Add the interventions API (GET query forms and POST bodies) to a published spec."""
    from pydantic.json_schema import models_json_schema

    from serving import schemas as s

    operations = {
        ("/presurvey", "post"): (
            s.PresurveyRequest,
            s.PresurveyResponse,
            "Plan outreach before a survey; never suppresses or delays it.",
            None,
        ),
        ("/at_risk", "get"): (
            None,
            s.AtRiskResponse,
            "The ranked at-risk list, with drivers.",
            (s.AtRiskRequest, True),
        ),
        ("/at_risk", "post"): (s.AtRiskRequest, s.AtRiskResponse, "Same, query as a body.", None),
        ("/nps_forecast", "get"): (
            None,
            s.NpsForecastResponse,
            "The next wave's NPS, before the survey.",
            (s.NpsForecastRequest, True),
        ),
        ("/nps_forecast", "post"): (
            s.NpsForecastRequest,
            s.NpsForecastResponse,
            "Same, with customer_ids for an unplanned wave.",
            None,
        ),
        ("/interventions", "get"): (
            None,
            s.InterventionsResponse,
            "Interventions with their history.",
            (s.InterventionsRequest, False),
        ),
        ("/interventions", "post"): (
            s.InterventionsRequest,
            s.InterventionsResponse,
            "Same, filters as a body.",
            None,
        ),
        ("/interventions/{id}/status", "post"): (
            s.StatusChangeRequest,
            s.Intervention,
            "Move one intervention; 409 lists the allowed statuses.",
            None,
        ),
        ("/interventions/reassign", "post"): (
            s.ReassignRequest,
            s.ReassignResponse,
            "Reassign interventions in bulk.",
            None,
        ),
    }
    models = {m for req, res, _, q in operations.values() for m in (req, res) if m is not None}
    _, top = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    spec.setdefault("components", {}).setdefault("schemas", {}).update(top.get("$defs", {}))
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for (path, method), (request, response, summary, query) in operations.items():
        op: dict = {
            "summary": summary,
            "security": [{"bearer": []}, {"apiKey": []}],
            "responses": {
                "200": {
                    "description": "Successful response",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{response.__name__}"}
                        }
                    },
                },
                **{
                    code: {"description": d, "content": {"application/json": {"schema": error_ref}}}
                    for code, d in _error_table().items()
                },
            },
        }
        if path == "/interventions/{id}/status":
            op["parameters"] = [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
            op["responses"]["404"] = {
                "description": "No such intervention.",
                "content": {"application/json": {"schema": error_ref}},
            }
            op["responses"]["409"] = {
                "description": "Illegal transition; `allowed` lists the "
                "statuses allowed from the current one.",
                "content": {"application/json": {"schema": error_ref}},
            }
        if path == "/nps_forecast":
            op["responses"]["404"] = {
                "description": "No stored plan has a survey on that date.",
                "content": {"application/json": {"schema": error_ref}},
            }
        if request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{request.__name__}"}
                    }
                },
            }
        if query is not None:
            op["parameters"] = _query_parameters(*query)
        spec.setdefault("paths", {}).setdefault(path, {})[method] = op
    return spec
