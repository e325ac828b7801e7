"""The Bento service CRMs call: `/predict`, `/predict_features`, `/reload`, health probes.

Models and the feature store are loaded once per worker in ``__init__`` and swapped as one
``ServingState`` when the champion alias moves (``/reload``, SIGHUP, or polling) or a new
store is materialized. A request keeps the state it started with, so a swap never fails or
mixes versions. Run with ``npsrisk serve`` or ``bentoml serve serving.service:NpsRiskService``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import bentoml
from _bentoml_sdk.service.factory import Service
from pydantic import ValidationError
from starlette.responses import Response

from features.catalog import check_records
from features.store import current_store_path
from npsrisk.settings import ConfigError, Settings, load_settings
from serving.act_routes import ActRoutesMiddleware, document_act_routes
from serving.acting import Acting
from serving.http import (
    DRAINING,
    ApiError,
    ApiRouter,
    EdgeLimits,
    Front,
    Route,
    ServiceSlot,
    encode_json,
)
from serving.inference_log import InferenceLog, tidy_inference_log
from serving.model_card import MODEL_PATH, ModelCardMiddleware
from serving.openapi import publishable_spec
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
from serving.slots import Slots
from serving.state import (
    NotReadyError,
    ServingState,
    champion_version,
    import_lightgbm_for_scoring,
    load_champion,
    load_store,
    note_champion,
    noted_champion,
    predict_records,
)
from serving.ui.app import UI_PATH, build_ui_app

logger = logging.getLogger("bentoml.service.npsrisk")


def _settings_or_defaults() -> Settings:
    # Read (never written) at import for the worker count; a bad config is reported by
    # __init__ with the full message instead of breaking the import.
    try:
        return load_settings()
    except ConfigError:
        return Settings()


_BOOT = _settings_or_defaults()


_SLOT = ServiceSlot()
ROUTES = {
    "/predict": Route(PredictRequest, "handle_predict"),
    "/predict_features": Route(PredictFeaturesRequest, "handle_predict_features"),
    "/reload": Route(None, "handle_reload"),
    "/presurvey": Route(PresurveyRequest, "handle_presurvey"),
    "/at_risk": Route(AtRiskRequest, "handle_at_risk"),
    "/nps_forecast": Route(NpsForecastRequest, "handle_nps_forecast"),
    "/interventions": Route(InterventionsRequest, "handle_interventions"),
    "/interventions/status": Route(StatusChangeRequest, "handle_change_status"),
    "/interventions/reassign": Route(ReassignRequest, "handle_reassign"),
}


def _json(status: int, body: dict) -> Response:
    return Response(encode_json(body), status_code=status, media_type="application/json")


def _response(answer: tuple[int, dict]) -> Response:
    return _json(*answer)


def _error(status: int, code: str, detail: str) -> tuple[int, dict]:
    return status, {"error": code, "detail": detail}


def _instance_id() -> str:
    """This instance: workers of one ``bentoml serve`` share a parent (the arbiter), so it is
    the host, the arbiter's pid and its start time."""
    import psutil

    parent = psutil.Process(os.getppid())
    return f"{socket.gethostname()}-{parent.pid}-{int(parent.create_time())}"


def _instance_folder(root: Path) -> Path:
    """This instance's own folder under ``root`` (its prometheus files, its serving slots), so
    two services on one host never mix them; folders of arbiters that are gone are removed."""
    import psutil

    folder = root / _instance_id()
    folder.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for other in root.iterdir():
        if other == folder or not other.is_dir() or not other.name.startswith(f"{host}-"):
            continue
        try:
            pid, started = (int(x) for x in other.name[len(host) + 1 :].split("-"))
        except ValueError:
            continue
        alive = psutil.pid_exists(pid) and int(psutil.Process(pid).create_time()) == started
        if not alive:
            shutil.rmtree(other, ignore_errors=True)
    return folder


def _warm_reload_imports() -> None:
    try:
        import mlflow.pyfunc  # noqa: F401
        import sklearn.pipeline  # noqa: F401
    except Exception:  # the reload itself reports what is missing
        logger.warning("could not pre-import the registry's loaders", exc_info=True)


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


# The success teams' page, mounted under the same edge (its own session auth, HTML errors).
@bentoml.asgi_app(build_ui_app(_SLOT, _BOOT), path=UI_PATH, name="ui")
@bentoml.service(
    name="npsrisk",
    # Serving workers plus loaded spares that take a dead worker's place (serving.slots).
    workers=_BOOT.serving.worker_count + _BOOT.serving.spare_workers,
    threads=_BOOT.serving.threads,
    # Our own timeout (serving.request_timeout_seconds) answers first, in the envelope.
    traffic={"timeout": _BOOT.serving.request_timeout_seconds + 30},
)
class NpsRiskService:
    def __init__(self) -> None:
        logging.getLogger("bentoml._internal.server.http_app").addFilter(_QuietClientErrors())
        import_lightgbm_for_scoring()  # a restarted worker's start-up is mostly imports
        self.settings = load_settings()
        self.state: ServingState | None = None
        self.problem: str | None = None
        self._swap_lock = threading.Lock()
        s = self.settings.serving
        self.log = InferenceLog(self.settings.inference_log_path) if s.inference_log else None
        # Playbooks, owners and the interventions store open on first use; workers never
        # migrate the database (`npsrisk serve` does, once, before they start).
        self.acting = Acting(self.settings, upgrade=False)
        self._stamp_path = self.settings.run_path / "reload-stamp"
        self._stamp_seen = self._read_stamp()
        self._instance = _instance_id()
        # A serving slot, claimed now if one is free (this worker serves) or by the start-up
        # hook once a serving worker exits (this worker is a spare until then).
        self.slots = Slots(_instance_folder(self.settings.run_path / "slots"), s.worker_count)
        self.slots.try_claim()
        self._noted: str | None = None
        # A worker the arbiter restarted starts on the version its siblings noted (no MLflow
        # import); its next poll asks the registry.
        self._refresh(noted=noted_champion(self.settings, self._instance))
        _freeze_heap()
        self._stop = threading.Event()
        self._relay_lock = threading.Lock()
        self.relay = None
        # A spare follows reloads and new stores too, so it serves the current state at once.
        threading.Thread(target=self._poll, daemon=True, name="npsrisk-refresh").start()
        # What a /reload of a version not cached yet needs (MLflow's pyfunc loader, sklearn for
        # the text scorer's pipelines), imported beside the first requests instead of at start
        # or inside that /reload's timeout.
        threading.Thread(target=_warm_reload_imports, daemon=True, name="npsrisk-warm").start()
        _SLOT.instance = self

    # --- lifecycle --------------------------------------------------------------------
    @bentoml.on_deployment
    def _prompt_respawn() -> None:
        # In the arbiter, once, before it starts: replace a dead worker at once, not on the
        # arbiter's next 10 s check (serving.supervisor).
        from serving.supervisor import respawn_on_exit

        respawn_on_exit()

    def __is_ready__(self) -> bool:
        return self.state is not None and not DRAINING

    def readiness(self) -> tuple[int, dict]:
        """The /readyz answer: what is loaded, or why nothing is."""
        state = self.state
        if state is None:
            return _error(503, "not_ready", self.problem or "the service is still loading")
        return 200, {
            "status": "ready",
            "model": state.card,
            "features_as_of": state.store.features_as_of,
        }

    @bentoml.on_startup
    async def _start_serving(self) -> None:
        """Runs before uvicorn accepts connections: a spare waits here for a serving slot."""
        loop = asyncio.get_running_loop()
        # SIGHUP reloads, in a spare too (its default action would end the process).
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, self.reload_all))
        if self.slots.held is None:
            await self._wait_as_spare()
        if self.settings.alerts.relay_poll_seconds > 0:
            # Started beside the first requests: its imports (SQLAlchemy) are seconds of a
            # restarted worker's start-up that /predict does not need.
            threading.Thread(target=self._start_relay, daemon=True, name="npsrisk-relay").start()
        self._install_drain()

    async def _wait_as_spare(self) -> None:
        """Loaded, accepting nothing, until a serving worker exits and frees its slot. Asked to
        stop meanwhile, a spare leaves at once: it holds no request and no logged record."""

        def leave(signum, frame) -> None:
            self._close()
            os._exit(0)

        previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGINT)}
        logger.info("spare worker: loaded; serves when a serving worker exits")
        try:
            slot = await self.slots.claim()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("spare worker took serving slot %d", slot)

    def _install_drain(self) -> None:
        # uvicorn's own SIGTERM handler closes idle keep-alive connections at once, so a
        # request already on its way gets a reset. We drain first: keep answering (with
        # Connection: close, /readyz 503) for serving.drain_seconds, then hand over.
        uvicorn_exit = signal.getsignal(signal.SIGTERM)
        drain = self.settings.serving.drain_seconds
        if not callable(uvicorn_exit) or drain <= 0:
            return

        def on_term(signum, frame) -> None:
            if DRAINING:
                return
            DRAINING.start()
            logger.info("SIGTERM: draining for %.1f s before stopping", drain)
            timer = threading.Timer(drain, uvicorn_exit, args=(signum, frame))
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, on_term)

    def _start_relay(self) -> None:
        """The outbox relay (alerts: SQLAlchemy and httpx only, never monitoring/Evidently)."""
        from alerts.relay import RelayThread

        with self._relay_lock:
            if not self._stop.is_set():
                self.relay = RelayThread(self.settings).start()

    @bentoml.on_shutdown
    def _close(self) -> None:
        self._stop.set()
        with self._relay_lock:
            if self.relay is not None:
                self.relay.stop()
        if self.log is not None:
            self.log.close()

    def _read_stamp(self) -> str | None:
        try:
            return self._stamp_path.read_text()
        except OSError:
            return None

    def _write_stamp(self) -> None:
        """Tell every worker (of every instance on this home) to reload."""
        self._stamp_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = f"{datetime.now(UTC).isoformat()} {os.getpid()} {uuid.uuid4().hex}"
        tmp = self._stamp_path.with_name(f".{self._stamp_path.name}.{os.getpid()}.tmp")
        tmp.write_text(stamp)
        os.replace(tmp, self._stamp_path)
        self._stamp_seen = stamp

    def reload_all(self) -> str:
        detail = self._refresh()
        self._write_stamp()
        return detail

    def _poll(self) -> None:
        """Reload stamps (every reload_check_seconds), store and champion polls, log upkeep."""
        s = self.settings.serving
        every = min(
            [s.reload_check_seconds]
            + [x for x in (s.store_poll_seconds, s.champion_poll_seconds) if x > 0]
        )
        last_store = last_champion = time.monotonic()
        last_tidy = 0.0
        while not self._stop.wait(every):
            now = time.monotonic()
            stamp = self._read_stamp()
            stamped = stamp is not None and stamp != self._stamp_seen
            check_champion = stamped or (
                s.champion_poll_seconds > 0 and now - last_champion >= s.champion_poll_seconds
            )
            check_store = stamped or (
                s.store_poll_seconds > 0 and now - last_store >= s.store_poll_seconds
            )
            try:
                if check_champion or check_store:
                    last_store = now
                    if check_champion:
                        last_champion = now
                    self._stamp_seen = stamp
                    self._refresh(check_champion=check_champion)
                if self.log is not None and now - last_tidy >= 3600:
                    last_tidy = now
                    tidy_inference_log(
                        self.settings.inference_log_path,
                        s.inference_log_retention_days,
                        compact=s.inference_log_compaction,
                    )
            except Exception:  # keep polling; the next attempt may succeed
                logger.exception("background refresh failed")

    def _refresh(self, check_champion: bool = True, noted: str | None = None) -> str:
        """Load a new champion and/or store if either changed; swap them in as one state.

        ``noted``: the version to load without asking the registry (see ``noted_champion``).
        """
        with self._swap_lock:
            current = self.state
            try:
                if current is None and noted is not None:
                    version = noted
                elif check_champion or current is None:
                    version = champion_version(self.settings)
                    if version != self._noted:
                        note_champion(self.settings, version, self._instance)
                        self._noted = version
                else:
                    version = current.champion.card.version
                store_path = current_store_path(self.settings.home_path)
                same_model = current is not None and current.champion.card.version == version
                same_store = current is not None and current.store.path == store_path
                if same_model and same_store:
                    return "already up to date"
                champion = current.champion if same_model else load_champion(self.settings, version)
                store = current.store if same_store else load_store(self.settings)
                state = ServingState.build(champion, store, cache=self.settings.serving_cache_path)
                # The previous materialization too, before the swap: the first /predict that
                # explains a score's change must not pay for reading and encoding it.
                state.previous()
                self.state = state
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

    # --- handlers: (status, body); the edge (serving.http.ApiRouter) calls them --------
    def _admit(self, items: int, limit: int, noun: str, top_k: int):
        """The state to score with, or the error to answer: not ready, too many, bad top_k."""
        state = self.state
        if state is None:
            raise ApiError(503, "not_ready", self.problem or "the service is still loading")
        if items > limit:
            raise ApiError(
                400, f"too_many_{noun}", f"{items} {noun} sent; send at most {limit} per request"
            )
        max_top_k = self.settings.serving.max_top_k
        if top_k > max_top_k:
            raise ApiError(400, "invalid_top_k", f"top_k must be between 1 and {max_top_k}")
        return state

    def handle_predict(self, request: PredictRequest) -> tuple[int, dict]:
        limit = self.settings.serving.max_ids_per_request
        state = self._admit(len(request.customer_ids), limit, "ids", request.top_k)
        predictions, unknown, log_records = state.predict_ids(
            request.customer_ids, request.explain, request.top_k, self.settings.serving.risk_tiers
        )
        if self.log is not None:
            self.log.log(log_records)
        return 200, {
            "model": state.card,
            "features_as_of": state.store.features_as_of,
            "predictions": predictions,
            "unknown_customer_ids": unknown,
        }

    def handle_predict_features(self, request: PredictFeaturesRequest) -> tuple[int, dict]:
        limit = self.settings.serving.max_records_per_request
        state = self._admit(len(request.records), limit, "records", request.top_k)
        records, problems = check_records(state.champion.bundle.catalog, request.records)
        if problems:
            # 422 naming each bad value and what is accepted (GET /model lists them all).
            code = "unknown_feature" if problems[0].code == "unknown_feature" else "invalid_value"
            shown = "; ".join(str(p) for p in problems[:20])
            more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
            raise ApiError(
                422, code, f"{shown}{more} (model v{state.champion.card.version}; see GET /model)"
            )
        predictions, log_records = predict_records(
            state.champion,
            records,
            request.explain,
            request.top_k,
            self.settings.serving.risk_tiers,
        )
        if self.log is not None:
            self.log.log(log_records)
        return 200, {
            "model": state.card,
            "features_as_of": None,
            "predictions": predictions,
            "unknown_customer_ids": [],
        }

    def handle_reload(self, _request: None = None) -> tuple[int, dict]:
        detail = self.reload_all()
        state = self.state
        if state is None:
            raise ApiError(503, "not_ready", self.problem or detail)
        return 200, {
            "reloaded": detail.startswith("loaded"),
            "model": state.card,
            "features_as_of": state.store.features_as_of,
            "detail": detail,
        }

    # --- acting on predictions (interventions/): the same (status, body) handlers -------
    def _act(self, handler, *args) -> tuple[int, dict]:
        """Run an interventions handler; configuration and database problems are 503s."""
        from interventions.owners import OwnersError
        from interventions.playbooks import PlaybookError
        from interventions.store import PlanConflictError

        try:
            status, body = handler(*args)
        except (ConfigError, PlaybookError, OwnersError) as exc:
            raise ApiError(503, "not_configured", str(exc)) from None
        except PlanConflictError as exc:
            raise ApiError(409, "plan_conflict", str(exc)) from None
        if status >= 400:
            # The envelope is {error, detail}; a 409's detail already names the allowed moves.
            raise ApiError(status, body["error"], body["detail"])
        return status, body

    def handle_presurvey(self, request: PresurveyRequest) -> tuple[int, dict]:
        limit = self.settings.serving.max_ids_per_request
        state = self._admit(len(request.customer_ids), limit, "ids", request.top_k)
        return self._act(self.acting.presurvey, state, request)

    def handle_at_risk(self, request: AtRiskRequest) -> tuple[int, dict]:
        state = self._admit(request.limit, 1000, "rows", request.top_k)
        return self._act(self.acting.at_risk, state, request)

    def handle_nps_forecast(self, request: NpsForecastRequest) -> tuple[int, dict]:
        limit = self.settings.serving.max_ids_per_request * 100
        state = self._admit(len(request.customer_ids or ()), limit, "ids", 1)
        return self._act(self.acting.nps_forecast, state, request)

    def handle_interventions(self, request: InterventionsRequest) -> tuple[int, dict]:
        return self._act(self.acting.interventions, request)

    def handle_change_status(self, request: StatusChangeRequest) -> tuple[int, dict]:
        return self._act(self.acting.change_status, request)

    def handle_reassign(self, request: ReassignRequest) -> tuple[int, dict]:
        return self._act(self.acting.reassign, request)

    # --- the API as BentoML declares it (schemas, its client); the edge answers first --
    def _answer(self, handler, request) -> Response:
        try:
            return _response(handler(request))
        except ApiError as exc:
            return _json(exc.status, {"error": exc.code, "detail": exc.detail})

    @bentoml.api(route="/predict")
    def predict(self, request: PredictRequest, /) -> PredictResponse:
        """Predict next NPS and churn risk from each customer's latest materialized features."""
        return self._answer(self.handle_predict, request)

    @bentoml.api(route="/predict_features")
    def predict_features(self, request: PredictFeaturesRequest, /) -> PredictResponse:
        """Score feature records supplied inline (missing features allowed)."""
        return self._answer(self.handle_predict_features, request)

    @bentoml.api(route="/reload")
    def reload(self) -> ReloadResponse:
        """Load the current champion and feature store if they changed (admin key only)."""
        return self._answer(self.handle_reload, None)

    @bentoml.api(route="/presurvey")
    def presurvey(self, request: PresurveyRequest, /) -> PresurveyResponse:
        """Plan outreach for customers about to be surveyed; never suppresses or delays one."""
        return self._answer(self.handle_presurvey, request)

    @bentoml.api(route="/at_risk")
    def at_risk(self, request: AtRiskRequest, /) -> AtRiskResponse:
        """The ranked at-risk list (also GET /at_risk with query parameters)."""
        return self._answer(self.handle_at_risk, request)

    @bentoml.api(route="/nps_forecast")
    def nps_forecast(self, request: NpsForecastRequest, /) -> NpsForecastResponse:
        """The NPS the next wave will report, and the base's (also GET /nps_forecast)."""
        return self._answer(self.handle_nps_forecast, request)

    @bentoml.api(route="/interventions")
    def interventions(self, request: InterventionsRequest, /) -> InterventionsResponse:
        """Interventions with their history (GET /interventions with query parameters)."""
        return self._answer(self.handle_interventions, request)

    @bentoml.api(route="/interventions/status")
    def interventions_status(self, request: StatusChangeRequest, /) -> Intervention:
        """Move one intervention (POST /interventions/{id}/status)."""
        return self._answer(self.handle_change_status, request)

    @bentoml.api(route="/interventions/reassign")
    def interventions_reassign(self, request: ReassignRequest, /) -> ReassignResponse:
        """Reassign interventions in bulk: by id, or every open one of an owner."""
        return self._answer(self.handle_reassign, request)


def _state() -> ServingState | None:
    """This worker's current serving state (None before the service is up)."""
    instance = _SLOT.instance
    return None if instance is None else instance.state


def _model_version() -> str | None:
    state = _state()
    return None if state is None else state.champion.card.version


def _spec() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        project_version = version("npsrisk")
    except PackageNotFoundError:  # a Bento installs the dependencies, not the project itself
        project_version = "unknown"
    state = _state()
    catalog = None if state is None else state.champion.bundle.catalog
    spec = publishable_spec(
        NpsRiskService.openapi_spec.asdict(), project_version, _BOOT.serving, catalog
    )
    return document_act_routes(spec)


class _FrontedService(Service):
    """BentoML's service with ``serving.http.Front`` around its whole ASGI app.

    BentoML 1.4 puts its metrics, tracing, timeout and concurrency middlewares outside user
    middleware and offers no hook outside them; this subclass is how the envelope and the
    header limits cover BentoML's own answers and how unknown paths reach its metrics as one
    label. It also gives each instance its own prometheus folder before any metric exists.
    """

    __slots__ = ()

    def to_asgi(self, is_main: bool = True):
        settings = _settings_or_defaults()
        try:
            metrics = _instance_folder(settings.run_path / "metrics")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        except OSError:
            logger.exception("could not create this instance's metrics folder")
        s = settings.serving
        limits = EdgeLimits(
            max_body_bytes=s.max_body_bytes,
            body_timeout_seconds=s.body_timeout_seconds,
            request_timeout_seconds=s.request_timeout_seconds,
            max_concurrency=s.max_concurrency,
            retry_after_seconds=s.retry_after_seconds,
            threads=s.threads,
        )
        app = super().to_asgi(is_main)
        router = ApiRouter(
            app,
            routes=ROUTES,
            slot=_SLOT,
            limits=limits,
            spec=_spec,
            spec_key=_model_version,
            own_auth_prefixes=[UI_PATH],  # the page checks its own sessions
        )
        front = Front(
            router,
            s.max_headers,
            s.max_header_bytes,
            routes_of=app,
            extra_paths=[MODEL_PATH],
            html_prefixes=[UI_PATH],
        )
        # The GET and path-parameter forms (GET /at_risk, POST /interventions/{id}/status)
        # become the POSTs the router parses strictly, before Front labels the path.
        return ActRoutesMiddleware(front)


NpsRiskService.__class__ = _FrontedService
# Inside BentoML's app, behind the router's key check: GET /model.
NpsRiskService.add_asgi_middleware(ModelCardMiddleware, state=_state)
