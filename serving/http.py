"""HTTP edge of the service: one strict request parser, one error envelope, one JSON encoder.

Two pure ASGI layers around the whole BentoML app, verified against BentoML 1.4.39 (whose
own metrics, tracing, access-log, timeout and concurrency middlewares sit outside any user
middleware, so these wrap the app instead; see ``serving.service._FrontedService``):

* ``Front``: every status >= 400, BentoML's and Starlette's included, leaves as
  ``{"error": "<machine code>", "detail": "<what to fix>"}``; oversized or too many headers
  get 431; unknown paths reach BentoML's metrics as one label (``/unknown``) so random paths
  cannot grow ``/metrics``; while a worker drains after SIGTERM answers carry
  ``Connection: close``.
* ``ApiRouter``: answers the probes with small JSON bodies, checks API keys (``/docs.json``
  and every doc route included), sheds load past ``serving.max_concurrency`` with 429 and
  ``Retry-After``, reads the body (JSON content types only, a size limit, a read timeout),
  parses it strictly, validates it with the route's pydantic model (strict types, finite
  numbers, no extra keys), runs the handler on a worker thread (with a timeout), encodes the
  answer with ``encode_json`` (which cannot emit NaN or Infinity) and counts it in
  ``npsrisk_requests_total`` / ``npsrisk_request_duration_seconds``. API routes skip
  BentoML's per-request tracing and access log: that stack cost more than the model's own
  work per request (measured; ``benchmarks/serving_latency.py``). Everything else (metrics,
  doc pages, 404, 405) passes through to BentoML.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

logger = logging.getLogger("bentoml.service.npsrisk")

PROBE_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
PUBLIC_PATHS = PROBE_PATHS | {"/metrics"}
# A route's path parameters, set on the scope by the middleware that matched the path
# (serving.act_routes); the router merges them into the parsed body.
PATH_PARAMS = "npsrisk.path_params"
ADMIN_PATHS = frozenset({"/reload"})
UNKNOWN_PATH = "/unknown"
KEY_FILE_CHECK_SECONDS = 5.0
MAX_INT_DIGITS = 18  # longer integers are parsed as floats, so 400 digits become inf: rejected

STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "request_header_fields_too_large",
    500: "internal_error",
    503: "not_ready",
    504: "timeout",
}
DETAILS = {
    404: "no such route: the API is described at /docs.json",
    405: "this method is not allowed on this route: see /docs.json",
    429: "the service is at capacity: retry after the Retry-After seconds",
    504: "the request took too long to answer: retry, or send fewer ids",
}
CLOSE = (b"connection", b"close")


class ApiError(Exception):
    """A client-facing error: status, machine code, what to fix, extra headers."""

    def __init__(self, status: int, code: str, detail: str, headers: Iterable = ()):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, list(headers)


# --- one JSON encoder --------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _finite(node: Any) -> Any:
    """NaN and ±Infinity (a value that is genuinely missing or unusable) become null."""
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {k: _finite(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_finite(v) for v in node]
    if hasattr(node, "item") and not isinstance(node, str | bytes):
        return _finite(node.item())
    return node


def encode_json(obj: Any) -> bytes:
    """The one JSON encoder of responses and the inference log: never NaN or Infinity.

    The fast path dumps as is with ``allow_nan=False``; only a body that holds a non-finite
    number pays for the walk that maps them to null.
    """
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_default)
    except ValueError:
        text = json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False, default=_default)
    return text.encode()


# --- one strict request parser -----------------------------------------------------------------


def _constant(name: str) -> float:
    # NaN / Infinity are not JSON; parsed as floats so validation names the field they are in.
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def _integer(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else float(text)


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or ApiError 400 saying where it broke (never echoing the body)."""
    if not raw.strip():
        raise ApiError(400, "empty_body", "the body is empty: send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "the body is not UTF-8 encoded JSON") from None
    try:
        return json.loads(text, parse_constant=_constant, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "malformed_json",
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except (ValueError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def _data_path(loc: tuple, data: Any) -> str:
    """The part of a pydantic error location that is a path into the request (union member
    tags such as 'float' or 'str' dropped), as ``records.0.seats``."""
    parts, node = [], data
    for key in loc:
        in_dict = isinstance(node, dict) and key in node
        if in_dict or (isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)):
            node = node[key]
        elif isinstance(node, dict) and isinstance(key, str):
            parts.append(key)  # a missing or forbidden key: name it, stop
            break
        else:
            break
        parts.append(str(key))
    return ".".join(parts) or "body"


def describe_validation(exc: ValidationError, data: Any, limit: int = 10) -> str:
    """'path: message' per field (first message per field), without the input values."""
    seen: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        path = _data_path(tuple(err.get("loc", ())), data)
        seen.setdefault(path, err.get("msg", "invalid"))
    parts = [f"{path}: {msg}" for path, msg in list(seen.items())[:limit]]
    more = len(seen) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate_request(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_error", describe_validation(exc, data)) from None


def is_json_media(value: bytes | None) -> bool:
    if value is None:
        return False
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


# --- the envelope --------------------------------------------------------------------------------


def json_error_body(code: str, detail: str) -> bytes:
    return encode_json({"error": code, "detail": detail})


async def send_json(send, status: int, body: bytes, headers: Iterable = (), head: bool = False):
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
    await send({"type": "http.response.body", "body": b"" if head else body})


async def send_json_error(send, status: int, code: str, detail: str, headers=()) -> None:
    await send_json(send, status, json_error_body(code, detail), headers)


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
    if status in DETAILS:
        return code, DETAILS[status]
    if status >= 500:
        # Never echo server internals (messages, stack traces) to a client.
        return code, "the server could not answer this request; it has been logged"
    if data is None:
        # Never echo a body back (a form-encoded body may hold personal data): plain text
        # errors come from BentoML or Starlette, short and about the request line.
        text = raw.decode("utf-8", "replace").strip()
        return code, text[:200] if text and "=" not in text else code.replace("_", " ")
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):
            if any(isinstance(e, dict) and e.get("type") == "json_invalid" for e in detail):
                return "malformed_json", "the body is not valid JSON: " + _pydantic_errors(detail)
            return "validation_error", _pydantic_errors(detail)
        if isinstance(detail, str):
            return code, detail[:500]
        if isinstance(data.get("error"), str):
            return code, data["error"][:500]
    return code, code.replace("_", " ")


def under(path: str, prefixes: Iterable[str]) -> bool:
    """``path`` is one of ``prefixes`` or below one (``/ui``, ``/ui/...``; not ``/uix``)."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


class Draining:
    """Set once a worker heard SIGTERM: answers carry ``Connection: close``, /readyz is 503."""

    def __init__(self) -> None:
        self.since: float | None = None

    def __bool__(self) -> bool:
        return self.since is not None

    def start(self) -> None:
        if self.since is None:
            self.since = time.monotonic()


DRAINING = Draining()


class Front:
    """Outermost layer around the BentoML app: envelope, header limits, route labels, drain."""

    def __init__(
        self,
        app,
        max_headers: int,
        max_header_bytes: int,
        routes_of=None,
        extra_paths: Iterable[str] = (),
        html_prefixes: Iterable[str] = (),
    ):
        self.app = app
        # Mounted pages (the /ui page) answer their own errors in HTML, for people.
        self.html_prefixes = tuple(html_prefixes)
        # Paths answered by user middleware (GET /model), not BentoML routes: real labels.
        self.extra_paths = frozenset(extra_paths)
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self.routes_of = routes_of if routes_of is not None else app  # the Starlette app
        self._known: set[str] | None = None
        self._prefixes: tuple[str, ...] = ()

    def _route_label(self, path: str) -> str:
        if self._known is None:
            known, prefixes = set(PUBLIC_PATHS) | {"/docs.json"} | self.extra_paths, []
            for route in getattr(self.routes_of, "routes", []):
                route_path = getattr(route, "path", None)
                if route_path is None:
                    continue
                if "{" in route_path or not hasattr(route, "endpoint"):  # mounts, templates
                    prefixes.append(route_path.split("{", 1)[0].rstrip("/") + "/")
                    if "{" not in route_path:
                        known.add(route_path.rstrip("/"))  # the mount's own path (/ui)
                else:
                    known.add(route_path)
            self._known, self._prefixes = known, tuple(p for p in prefixes if p != "/")
        if path in self._known or (self._prefixes and path.startswith(self._prefixes)):
            return path
        return UNKNOWN_PATH

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope["headers"]
        if len(headers) > self.max_headers:
            return await send_json_error(
                send,
                431,
                "request_header_fields_too_large",
                f"{len(headers)} headers sent; send at most {self.max_headers}",
                [CLOSE],
            )
        size = sum(len(k) + len(v) for k, v in headers)
        if size > self.max_header_bytes:
            return await send_json_error(
                send,
                431,
                "request_header_fields_too_large",
                f"the headers are {size} bytes; send at most {self.max_header_bytes}",
                [CLOSE],
            )
        if under(scope["path"], self.html_prefixes):
            return await self.app(scope, receive, send)
        label = self._route_label(scope["path"])
        if label != scope["path"]:
            scope = {**scope, "path": label, "npsrisk.path": scope["path"]}
        state: dict = {"start": None, "chunks": []}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                if DRAINING:
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
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


# --- API keys ------------------------------------------------------------------------------------


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
        return f"{self.env_var} (comma-separated) or {self.file_env_var} (one key per line)"

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
    auth = key = None
    for name, value in headers:
        name = name.lower()
        if name == b"authorization":
            auth = value
        elif name == b"x-api-key":
            key = value
    if auth and auth[:7].lower() == b"bearer ":
        return auth[7:].strip()
    return key.strip() if key else None


def check_key(path: str, headers, keys: KeyRing, admin_keys: KeyRing) -> None:
    """ApiError unless the request carries a key good for ``path`` (an admin key is good for
    every route, an API key for all but the admin ones).

    Without any admin key configured, ``/reload`` is disabled and says which variable turns
    it on (403: no key would help); without any key at all the service is not usable (503).
    """
    admin = path in ADMIN_PATHS
    candidate = presented_key(headers)
    if admin and not admin_keys:
        raise ApiError(
            403,
            "admin_not_configured",
            f"/reload is disabled because no admin key is configured: set {admin_keys.source} "
            "and restart the service (a key file is re-read within seconds)",
        )
    if not admin and not keys and not admin_keys:
        raise ApiError(503, "not_configured", f"no API key is configured: set {keys.source}")
    accepted = admin_keys.accepts(candidate)
    if not admin:
        accepted = keys.accepts(candidate) | accepted  # both compared: no timing hint
    if not accepted:
        raise ApiError(
            401,
            "unauthorized",
            "missing or invalid API key: send 'Authorization: Bearer <key>' or "
            "'X-API-Key: <key>'" + (" with an admin key" if admin else ""),
            [(b"www-authenticate", b'Bearer realm="npsrisk"')],
        )


# --- the API router ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One POST endpoint: its request model (None: no body) and the handler's method name.

    A handler takes the validated request and returns ``(status, body dict)``."""

    request: type[BaseModel] | None
    handler: str


class ServiceSlot:
    """Where the worker's service instance registers itself, for the router to call."""

    def __init__(self) -> None:
        self.instance: Any = None


@dataclass(frozen=True)
class EdgeLimits:
    max_body_bytes: int
    body_timeout_seconds: float
    request_timeout_seconds: float
    max_concurrency: int
    retry_after_seconds: int
    threads: int


class RequestMetrics:
    """``npsrisk_requests_total{route,status}`` and ``npsrisk_request_duration_seconds{route}``
    for the requests ``ApiRouter`` answers itself; created on first use, after the worker set
    its own prometheus folder, and shown by BentoML's /metrics with its own."""

    def __init__(self) -> None:
        self._total = self._seconds = None

    def observe(self, route: str, status: int, seconds: float) -> None:
        if self._total is None:
            try:
                import prometheus_client

                self._total = prometheus_client.Counter(
                    "npsrisk_requests_total", "Requests answered by the API.", ["route", "status"]
                )
                self._seconds = prometheus_client.Histogram(
                    "npsrisk_request_duration_seconds",
                    "Time to answer an API request.",
                    ["route"],
                    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
                )
            except ValueError:  # registered twice in one process (tests): counting is off
                self._total = False
        if self._total:
            self._total.labels(route, str(status)).inc()
            self._seconds.labels(route).observe(seconds)


class ApiRouter:
    """Probes, keys, docs, shedding, body reading, strict parsing and dispatch (see module)."""

    def __init__(
        self,
        app,
        routes: dict[str, Route],
        slot: ServiceSlot,
        limits: EdgeLimits,
        spec: Callable[[], dict[str, Any]],
        keys: KeyRing | None = None,
        spec_key: Callable[[], Any] = lambda: None,
        own_auth_prefixes: Iterable[str] = (),
        admin_keys: KeyRing | None = None,
    ):
        self.app = app
        self.routes = routes
        self.slot = slot
        self.limits = limits
        self.spec = spec
        self.spec_key = spec_key  # the document is rebuilt when this changes (the model)
        # Mounted apps that check their own sessions (the /ui page: a sign-in form, cookies).
        self.own_auth_prefixes = tuple(own_auth_prefixes)
        self._spec_for: Any = None
        self.keys = keys or KeyRing("NPSRISK_API_KEYS", "NPSRISK_API_KEYS_FILE")
        self.admin_keys = admin_keys or KeyRing("NPSRISK_ADMIN_KEYS", "NPSRISK_ADMIN_KEYS_FILE")
        self.inflight = 0
        self._spec_body: bytes | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.metrics = RequestMetrics()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if (path in PUBLIC_PATHS and path not in PROBE_PATHS) or under(
            path, self.own_auth_prefixes
        ):
            return await self.app(scope, receive, send)  # /metrics; /ui checks its sessions
        start = time.perf_counter()
        status = 500
        try:
            if path in PROBE_PATHS and method in ("GET", "HEAD"):
                status = await self._probe(path, send, head=method == "HEAD")
                return None
            check_key(path, scope["headers"], self.keys, self.admin_keys)
            route = self.routes.get(path)
            if path == "/docs.json" and method in ("GET", "HEAD"):
                status = 200
                return await send_json(send, 200, self._spec(), head=method == "HEAD")
            if route is None or method != "POST":
                status = 0  # BentoML answers and counts it (404 / 405 / doc pages)
                return await self.app(scope, receive, send)
            status = await self._api(route, scope, receive, send)
        except ApiError as exc:
            status = exc.status
            await send_json_error(send, exc.status, exc.code, exc.detail, exc.headers)
        finally:
            if status and path not in PROBE_PATHS:
                self.metrics.observe(path, status, time.perf_counter() - start)
        return None

    def _spec(self) -> bytes:
        key = self.spec_key()
        if self._spec_body is None or key != self._spec_for:
            self._spec_for = key
            try:
                self._spec_body = encode_json(self.spec())
            except Exception:
                logger.exception("could not build the OpenAPI document")
                raise ApiError(
                    500, "internal_error", "the OpenAPI document could not be built"
                ) from None
        return self._spec_body

    async def _probe(self, path: str, send, head: bool) -> int:
        if path != "/readyz":
            await send_json(send, 200, b'{"status":"alive"}', head=head)
            return 200
        instance = self.slot.instance
        if DRAINING:
            raise ApiError(503, "draining", "this worker is shutting down")
        if instance is None:
            raise ApiError(503, "not_ready", "the service is starting")
        status, body = instance.readiness()
        await send_json(send, status, encode_json(body), head=head)
        return status

    async def _api(self, route: Route, scope, receive, send) -> int:
        limits = self.limits
        if limits.max_concurrency and self.inflight >= limits.max_concurrency:
            raise ApiError(
                429,
                "too_many_requests",
                f"this worker already holds {self.inflight} requests: retry after "
                f"{limits.retry_after_seconds} s",
                [(b"retry-after", str(limits.retry_after_seconds).encode())],
            )
        self.inflight += 1
        try:
            body = await self._read_body(route, scope, receive)
            if route.request is not None:
                data = parse_json(body)
                params = scope.get(PATH_PARAMS)
                if params:  # a path parameter (/interventions/{id}/status) joins the body
                    if not isinstance(data, dict):
                        raise ApiError(422, "validation_error", "body: send a JSON object")
                    data = {**data, **params}
                request = validate_request(route.request, data)
            elif body.strip():
                if parse_json(body) != {}:
                    raise ApiError(422, "validation_error", "body: this route takes no fields")
                request = None
            else:
                request = None
            instance = self.slot.instance
            if instance is None:
                raise ApiError(503, "not_ready", "the service is starting")
            handler = getattr(instance, route.handler)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(limits.threads, thread_name_prefix="npsrisk-api")
            future = asyncio.get_running_loop().run_in_executor(self._pool, handler, request)
            try:
                async with asyncio.timeout(limits.request_timeout_seconds):
                    status, payload = await future
            except TimeoutError:
                raise ApiError(
                    504,
                    "timeout",
                    f"no answer within {limits.request_timeout_seconds:g} s "
                    "(serving.request_timeout_seconds): retry, or send fewer ids",
                ) from None
            await send_json(send, status, encode_json(payload))
            return status
        except ApiError:
            raise
        except Exception:
            logger.exception("unexpected error answering %s", scope["path"])
            raise ApiError(
                500, "internal_error", "the server could not answer this request; it is logged"
            ) from None
        finally:
            self.inflight -= 1

    async def _read_body(self, route: Route, scope, receive) -> bytes:
        limits = self.limits
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
        needs_json = content_type is not None or route.request is not None
        if needs_json and not is_json_media(content_type):
            got = (
                "no Content-Type"
                if content_type is None
                else repr(content_type.split(b";", 1)[0].decode("latin-1")[:80])
            )
            raise ApiError(
                415,
                "unsupported_media_type",
                f"send the body as JSON with 'Content-Type: application/json' (got {got})",
                [CLOSE],
            )
        if length is not None:
            try:
                expected = int(length)
            except ValueError:
                raise ApiError(400, "invalid_request", "bad Content-Length", [CLOSE]) from None
            if expected > limits.max_body_bytes:
                raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(limits.body_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ApiError(400, "client_disconnected", "the client went away")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limits.max_body_bytes:
                        raise self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            promised = f"Content-Length promised {int(length)} bytes, " if length else ""
            raise ApiError(
                408,
                "request_timeout",
                f"the request body did not arrive within {limits.body_timeout_seconds:g} s "
                f"({promised}{size} arrived): send the whole body",
                [CLOSE],
            ) from None
        return b"".join(chunks)

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            "payload_too_large",
            f"the request body is larger than {self.limits.max_body_bytes} bytes: send fewer "
            "ids or records",
            [CLOSE],
        )
