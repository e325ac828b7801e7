"""The Bento service CRMs call: `/predict`, `/predict_features`, `/reload`, health probes.

Models and the feature store are loaded once per worker in ``__init__`` and swapped as one
``ServingState`` when the champion alias moves (``/reload``, SIGHUP, or polling) or a new
store is materialized. A request keeps the state it started with, so a swap never fails or
mixes versions. Run with ``npsrisk serve`` or ``bentoml serve serving.service:NpsRiskService``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import threading
import time

import bentoml
from pydantic import ValidationError
from starlette.responses import Response

from features.store import current_store_path
from npsrisk.settings import ConfigError, Settings, load_settings
from serving.act_routes import ActRoutesMiddleware, document_act_routes
from serving.acting import Acting
from serving.http import ApiKeyMiddleware, BodySizeLimitMiddleware, ErrorEnvelopeMiddleware
from serving.inference_log import InferenceLog
from serving.openapi import OpenApiMiddleware, publishable_spec
from serving.schemas import (
    AtRiskRequest,
    AtRiskResponse,
    Intervention,
    InterventionsRequest,
    InterventionsResponse,
    NpsForecastRequest,
    NpsForecastResponse,
    PredictFeaturesRequest,
    PredictRequest,
    PredictResponse,
    PresurveyRequest,
    PresurveyResponse,
    ReassignRequest,
    ReassignResponse,
    ReloadResponse,
    StatusChangeRequest,
)
from serving.state import (
    NotReadyError,
    ServingState,
    champion_version,
    load_champion,
    load_store,
    predict_records,
)

logger = logging.getLogger("bentoml.service.npsrisk")


def _settings_or_defaults() -> Settings:
    # Read (never written) at import for the worker count; a bad config is reported by
    # __init__ with the full message instead of breaking the import.
    try:
        return load_settings()
    except ConfigError:
        return Settings()


_BOOT = _settings_or_defaults()


def _json(status: int, body: dict) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def _error(status: int, code: str, detail: str) -> Response:
    return _json(status, {"error": code, "detail": detail})


def _freeze_heap() -> None:
    """Move the loaded model and store out of the garbage collector's sight.

    A worker holds ~400k long-lived objects; each full collection walked them all (~210 ms,
    measured), stalling requests to 110-410 ms. Frozen, a collection costs ~0 ms.
    """
    gc.collect()
    gc.freeze()


class _QuietClientErrors(logging.Filter):
    """BentoML logs a traceback for every 4xx, including the caller's input values; a client's
    mistake is not a server error, and its input may hold personal data."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if isinstance(exc, ValidationError):
            return False
        code = getattr(getattr(exc, "error_code", None), "value", 500)
        return code >= 500


@bentoml.service(
    name="npsrisk",
    workers=_BOOT.serving.workers,
    threads=_BOOT.serving.threads,
    traffic={"timeout": 60},
)
class NpsRiskService:
    def __init__(self) -> None:
        logging.getLogger("bentoml._internal.server.http_app").addFilter(_QuietClientErrors())
        self.settings = load_settings()
        self.state: ServingState | None = None
        self.problem: str | None = None
        self._swap_lock = threading.Lock()
        s = self.settings.serving
        self.log = InferenceLog(self.settings.inference_log_path) if s.inference_log else None
        # Playbooks, owners and the interventions store open on first use; workers never
        # migrate the database (`npsrisk serve` does, once, before they start).
        self.acting = Acting(self.settings, upgrade=False)
        self._refresh()
        _freeze_heap()
        self._stop = threading.Event()
        self.relay = None
        if self.settings.alerts.relay_poll_seconds > 0:
            # The outbox relay (alerts: SQLAlchemy and httpx only, never monitoring/Evidently).
            from alerts.relay import RelayThread

            self.relay = RelayThread(self.settings).start()
        interval = [x for x in (s.store_poll_seconds, s.champion_poll_seconds) if x > 0]
        if interval:
            threading.Thread(
                target=self._poll, args=(min(interval),), daemon=True, name="npsrisk-refresh"
            ).start()

    # --- lifecycle --------------------------------------------------------------------
    def __is_ready__(self) -> bool:
        return self.state is not None

    @bentoml.on_startup
    async def _install_sighup(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, self._refresh))

    @bentoml.on_shutdown
    def _close(self) -> None:
        self._stop.set()
        if self.relay is not None:
            self.relay.stop()
        if self.log is not None:
            self.log.close()

    def _poll(self, every: float) -> None:
        s = self.settings.serving
        last_champion_check = 0.0
        while not self._stop.wait(every):
            check_champion = s.champion_poll_seconds > 0 and (
                time.monotonic() - last_champion_check >= s.champion_poll_seconds
            )
            if check_champion:
                last_champion_check = time.monotonic()
            try:
                self._refresh(check_champion=check_champion)
            except Exception:  # keep polling; the next attempt may succeed
                logger.exception("background refresh failed")

    def _refresh(self, check_champion: bool = True) -> str:
        """Load a new champion and/or store if either changed; swap them in as one state."""
        with self._swap_lock:
            current = self.state
            try:
                if check_champion or current is None:
                    version = champion_version(self.settings)
                else:
                    version = current.champion.card.version
                store_path = current_store_path(self.settings.home_path)
                same_model = current is not None and current.champion.card.version == version
                same_store = current is not None and current.store.path == store_path
                if same_model and same_store:
                    return "already up to date"
                champion = current.champion if same_model else load_champion(self.settings, version)
                store = current.store if same_store else load_store(self.settings)
                self.state = ServingState.build(champion, store)
                self.problem = None
                _freeze_heap()
            except NotReadyError as exc:
                if current is None:
                    self.problem = str(exc)
                    logger.error("not ready: %s", exc)
                return str(exc)
        changed = ([f"model {champion.card.name} v{version}"] if not same_model else []) + (
            [f"features as of {store.features_as_of}"] if not same_store else []
        )
        message = "loaded " + " and ".join(changed)
        logger.info(message)
        return message

    # --- helpers ----------------------------------------------------------------------
    def _admit(self, items: int, limit: int, noun: str, top_k: int) -> ServingState | Response:
        """The state to score with, or the error to answer: not ready, too many, bad top_k."""
        state = self.state
        if state is None:
            return _error(503, "not_ready", self.problem or "the service is still loading")
        if items > limit:
            return _error(
                400, f"too_many_{noun}", f"{items} {noun} sent; send at most {limit} per request"
            )
        max_top_k = self.settings.serving.max_top_k
        if top_k > max_top_k:
            return _error(400, "invalid_top_k", f"top_k must be between 1 and {max_top_k}")
        return state

    # --- API --------------------------------------------------------------------------
    @bentoml.api(route="/predict")
    def predict(self, request: PredictRequest, /) -> PredictResponse:
        """Predict next NPS and churn risk from each customer's latest materialized features."""
        limit = self.settings.serving.max_ids_per_request
        state = self._admit(len(request.customer_ids), limit, "ids", request.top_k)
        if isinstance(state, Response):
            return state
        predictions, unknown, log_records = state.predict_ids(
            request.customer_ids, request.explain, request.top_k, self.settings.serving.risk_tiers
        )
        if self.log is not None:
            self.log.log(log_records)
        return _json(
            200,
            {
                "model": state.card,
                "features_as_of": state.store.features_as_of,
                "predictions": predictions,
                "unknown_customer_ids": unknown,
            },
        )

    @bentoml.api(route="/predict_features")
    def predict_features(self, request: PredictFeaturesRequest, /) -> PredictResponse:
        """Score feature records supplied inline (missing features allowed)."""
        limit = self.settings.serving.max_records_per_request
        state = self._admit(len(request.records), limit, "records", request.top_k)
        if isinstance(state, Response):
            return state
        bundle = state.champion.bundle
        known = set(bundle.features) | {"customer_id"}
        unknown = sorted({k for r in request.records for k in r} - known)
        if unknown:
            return _error(
                400,
                "unknown_feature",
                f"not features of model v{state.champion.card.version}: {', '.join(unknown[:20])}",
            )
        categorical = set(bundle.encoder.categorical)
        for i, record in enumerate(request.records):
            for name, value in record.items():
                if name in categorical or name == "customer_id" or value is None:
                    continue
                if isinstance(value, str):
                    return _error(
                        400, "invalid_value", f"records[{i}].{name} must be a number, not {value!r}"
                    )
        predictions, log_records = predict_records(
            state.champion,
            request.records,
            request.explain,
            request.top_k,
            self.settings.serving.risk_tiers,
        )
        if self.log is not None:
            self.log.log(log_records)
        return _json(
            200,
            {
                "model": state.card,
                "features_as_of": None,
                "predictions": predictions,
                "unknown_customer_ids": [],
            },
        )

    @bentoml.api(route="/reload")
    def reload(self) -> ReloadResponse:
        """Load the current champion and feature store if they changed (admin key only)."""
        detail = self._refresh()
        state = self.state
        if state is None:
            return _error(503, "not_ready", self.problem or detail)
        return _json(
            200,
            {
                "reloaded": detail.startswith("loaded"),
                "model": state.card,
                "features_as_of": state.store.features_as_of,
                "detail": detail,
            },
        )

    # --- acting on predictions (interventions/) ------------------------------------------
    def _act(self, handler, *args) -> Response:
        """Run an interventions handler; configuration and database problems are 503s."""
        from interventions.owners import OwnersError
        from interventions.playbooks import PlaybookError
        from interventions.store import PlanConflictError

        try:
            status, body = handler(*args)
        except (ConfigError, PlaybookError, OwnersError) as exc:
            return _error(503, "not_configured", str(exc))
        except PlanConflictError as exc:
            return _error(409, "plan_conflict", str(exc))
        return _json(status, body)

    @bentoml.api(route="/presurvey")
    def presurvey(self, request: PresurveyRequest, /) -> PresurveyResponse:
        """Plan outreach for customers about to be surveyed; never suppresses or delays one."""
        limit = self.settings.serving.max_ids_per_request
        state = self._admit(len(request.customer_ids), limit, "ids", request.top_k)
        if isinstance(state, Response):
            return state
        return self._act(self.acting.presurvey, state, request)

    @bentoml.api(route="/at_risk")
    def at_risk(self, request: AtRiskRequest, /) -> AtRiskResponse:
        """The ranked at-risk list (also GET /at_risk with query parameters)."""
        state = self._admit(request.limit, 1000, "rows", request.top_k)
        if isinstance(state, Response):
            return state
        return self._act(self.acting.at_risk, state, request)

    @bentoml.api(route="/nps_forecast")
    def nps_forecast(self, request: NpsForecastRequest, /) -> NpsForecastResponse:
        """The NPS the next wave will report, and the base's (also GET /nps_forecast)."""
        limit = self.settings.serving.max_ids_per_request * 100
        state = self._admit(len(request.customer_ids or ()), limit, "ids", 1)
        if isinstance(state, Response):
            return state
        return self._act(self.acting.nps_forecast, state, request)

    @bentoml.api(route="/interventions")
    def interventions(self, request: InterventionsRequest, /) -> InterventionsResponse:
        """Interventions with their history (GET /interventions with query parameters)."""
        return self._act(self.acting.interventions, request)

    @bentoml.api(route="/interventions/status")
    def interventions_status(self, request: StatusChangeRequest, /) -> Intervention:
        """Move one intervention (POST /interventions/{id}/status)."""
        return self._act(self.acting.change_status, request)

    @bentoml.api(route="/interventions/reassign")
    def interventions_reassign(self, request: ReassignRequest, /) -> ReassignResponse:
        """Reassign interventions in bulk: by id, or every open one of an owner."""
        return self._act(self.acting.reassign, request)


def _spec() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        project_version = version("npsrisk")
    except PackageNotFoundError:  # a Bento installs the dependencies, not the project itself
        project_version = "unknown"
    spec = publishable_spec(NpsRiskService.openapi_spec.asdict(), project_version)
    return document_act_routes(spec)


# First added is outermost: errors from every layer below get the same JSON shape.
NpsRiskService.add_asgi_middleware(ErrorEnvelopeMiddleware)
NpsRiskService.add_asgi_middleware(OpenApiMiddleware, spec=_spec)
NpsRiskService.add_asgi_middleware(ApiKeyMiddleware)
NpsRiskService.add_asgi_middleware(BodySizeLimitMiddleware, max_bytes=_BOOT.serving.max_body_bytes)
NpsRiskService.add_asgi_middleware(ActRoutesMiddleware)  # GET/path forms of /at_risk & co.
