"""HTTP edge of the service: API keys, body size limit, and one JSON error shape.

Pure ASGI middlewares (no BaseHTTPMiddleware), verified against BentoML 1.4.39: its own
validation errors come out as 400 with a pydantic error list, ``BentoMLException``s as a
one-element list, and unknown routes as plain text; ``ErrorEnvelopeMiddleware`` rewrites all
of them to ``{"error": "<machine code>", "detail": "<what to fix>"}``.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})
ADMIN_PATHS = frozenset({"/reload"})
KEY_FILE_CHECK_SECONDS = 5.0

STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "not_ready",
    504: "timeout",
}


def json_error_body(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


async def send_json_error(send, status: int, code: str, detail: str, headers=()) -> None:
    body = json_error_body(code, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _pydantic_errors(errors: list) -> str:
    parts = []
    for err in errors:
        if not isinstance(err, dict):
            continue
        loc = ".".join(str(p) for p in err.get("loc", []) if p not in ("body",)) or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def normalize_error(status: int, raw: bytes) -> tuple[str, str]:
    """Whatever BentoML, Starlette or FastAPI produced, as (machine code, detail)."""
    code = STATUS_CODES.get(status, "internal_error" if status >= 500 else "invalid_request")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if (
        isinstance(data, dict)
        and set(data) == {"error", "detail"}
        and all(isinstance(v, str) for v in data.values())
    ):
        return data["error"], data["detail"]  # already ours (e.g. 503 not_ready)
    if status >= 500:
        # Never echo server internals (messages, stack traces) to a client.
        return code, "the server could not answer this request; it has been logged"
    if data is None:
        return code, raw.decode("utf-8", "replace").strip() or code
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):
            if any(isinstance(e, dict) and e.get("type") == "json_invalid" for e in detail):
                return "malformed_json", "the body is not valid JSON: " + _pydantic_errors(detail)
            return "validation_error", _pydantic_errors(detail)
        if isinstance(detail, str):
            return code, detail
        if isinstance(data.get("error"), str):
            return code, data["error"]
    return code, json.dumps(data)[:500]


class ErrorEnvelopeMiddleware:
    """Every response with status >= 400 becomes ``{"error": code, "detail": text}``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state: dict = {"start": None, "chunks": []}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    state["start"] = False
                    return await send(message)
                state["start"] = message
                return None
            if message["type"] == "http.response.body" and state["start"]:
                state["chunks"].append(message.get("body", b""))
                if message.get("more_body"):
                    return None
                start = state["start"]
                state["start"] = False
                code, detail = normalize_error(start["status"], b"".join(state["chunks"]))
                keep = [
                    (k, v)
                    for k, v in start["headers"]
                    if k.lower() not in (b"content-type", b"content-length")
                ]
                return await send_json_error(send, start["status"], code, detail, keep)
            return await send(message)

        return await self.app(scope, receive, wrapped)


def _split_keys(text: str) -> list[str]:
    return [
        k.strip() for k in text.replace("\n", ",").split(",") if k.strip() and not k.startswith("#")
    ]


class KeyRing:
    """API keys from an environment variable and/or a file (one per line), several at once.

    The file is re-read when it changes, so a key can be rotated without a restart.
    Keys are compared in constant time and never logged.
    """

    def __init__(self, env_var: str, file_env_var: str):
        self.env_var = env_var
        self.file_env_var = file_env_var
        self._lock = threading.Lock()
        self._file_mtime: float | None = None
        self._checked = 0.0
        self._keys: tuple[bytes, ...] = ()
        self._load()

    @property
    def source(self) -> str:
        return f"{self.env_var} or {self.file_env_var}"

    def _load(self) -> None:
        keys = _split_keys(os.environ.get(self.env_var, ""))
        path = os.environ.get(self.file_env_var)
        if path and Path(path).is_file():
            self._file_mtime = Path(path).stat().st_mtime
            keys += _split_keys(Path(path).read_text())
        self._keys = tuple(k.encode() for k in dict.fromkeys(keys))

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < KEY_FILE_CHECK_SECONDS:
            return
        with self._lock:
            self._checked = now
            path = os.environ.get(self.file_env_var)
            mtime = Path(path).stat().st_mtime if path and Path(path).is_file() else None
            if mtime != self._file_mtime:
                self._load()

    def __bool__(self) -> bool:
        self._refresh()
        return bool(self._keys)

    def accepts(self, candidate: bytes | None) -> bool:
        self._refresh()
        if not candidate:
            return False
        # Compare with every key (no early exit) so timing does not reveal which one matched.
        matches = [hmac.compare_digest(candidate, key) for key in self._keys]
        return any(matches)


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    lookup = {k.lower(): v for k, v in headers}
    auth = lookup.get(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        return auth[7:].strip()
    key = lookup.get(b"x-api-key")
    return key.strip() if key else None


class ApiKeyMiddleware:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` on everything but the probes.

    Admin paths (``/reload``) need an admin key. With no key configured the service answers
    503 saying which variable to set, rather than running open.
    """

    def __init__(self, app, keys: KeyRing | None = None, admin_keys: KeyRing | None = None):
        self.app = app
        self.keys = keys or KeyRing("NPSRISK_API_KEYS", "NPSRISK_API_KEYS_FILE")
        self.admin_keys = admin_keys or KeyRing("NPSRISK_ADMIN_KEYS", "NPSRISK_ADMIN_KEYS_FILE")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        ring = self.admin_keys if scope["path"] in ADMIN_PATHS else self.keys
        if not ring:
            return await send_json_error(
                send, 503, "not_configured", f"no API key is configured: set {ring.source}"
            )
        if not ring.accepts(presented_key(scope["headers"])):
            return await send_json_error(
                send,
                401,
                "unauthorized",
                "missing or invalid API key: send 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>'" + (" with an admin key" if ring is self.admin_keys else ""),
                [(b"www-authenticate", b'Bearer realm="npsrisk"')],
            )
        return await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """413 for bodies over ``max_bytes``: by Content-Length, or counted for chunked bodies."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send) -> None:
        await send_json_error(
            send,
            413,
            "payload_too_large",
            f"the request body is larger than {self.max_bytes} bytes: send fewer ids or records",
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope["headers"]}
        length = headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_bytes:
                    return await self._too_large(send)
            except ValueError:
                return await send_json_error(send, 400, "invalid_request", "bad Content-Length")
            return await self.app(scope, receive, send)
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await self._too_large(send)
            chunks.append(body)
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        return await self.app(scope, replayed, send)
