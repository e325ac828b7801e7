"""`GET /model`: the serving model's card and its feature catalogue (API contract)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from serving.http import send_json_error

MODEL_PATH = "/model"


def model_card(state: Any) -> dict[str, Any]:
    """The card of a ``serving.state.ServingState``: the model, how it was validated, and
    every feature ``/predict_features`` accepts, with its type, unit and accepted values."""
    bundle = state.champion.bundle
    info = bundle.info
    card = state.champion.card.to_dict()
    return {
        **card,
        "heads": list(bundle.heads),
        "horizon_days": info.get("horizon_days"),
        "validation": {
            "window": info.get("validation_window"),
            "metrics": info.get("validation_metrics"),
        },
        "features_as_of": state.store.features_as_of,
        "features": [
            {
                "name": spec.name,
                "type": spec.kind,
                "unit": spec.unit,
                "minimum": spec.minimum,
                "maximum": spec.maximum,
                "integer": spec.integer,
                "categories": list(spec.categories) if spec.categories is not None else None,
                "description": spec.description,
                "when_missing": spec.missing,
                "risk_direction": spec.risk_direction,
            }
            for spec in bundle.catalog.features.values()
        ],
    }


class ModelCardMiddleware:
    """Answers ``GET /model`` from the current serving state (behind the API key check)."""

    def __init__(self, app, state: Callable[[], Any]):
        self.app = app
        self.state = state
        self._cache: tuple[int, bytes] | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != MODEL_PATH:
            return await self.app(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            return await send_json_error(
                send, 405, "method_not_allowed", "use GET /model", [(b"allow", b"GET, HEAD")]
            )
        state = self.state()
        if state is None:
            return await send_json_error(send, 503, "not_ready", "no model is loaded yet")
        if self._cache is None or self._cache[0] != id(state):
            # One state is immutable: its card is encoded once, until the next swap.
            self._cache = (id(state), json.dumps(model_card(state)).encode())
        body = self._cache[1]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": body if scope["method"] == "GET" else b""}
        )
        return None
