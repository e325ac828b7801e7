"""The success teams' page: a Starlette app the Bento service mounts at /ui.

Pages are rendered on the server (HTML forms and links, inline SVG charts, one hand-written
stylesheet), so they work by keyboard, without script and without any network but the
service's own. Sign-in takes one of the service's API keys; the session lives in a sealed,
HttpOnly, SameSite=Lax (and by default Secure) cookie scoped to /ui; every POST carries a
CSRF token bound to the session. The API's own key check does not apply here: the edge lets
/ui through and this app checks the session's key against the same key ring on each request.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from npsrisk.settings import Settings
from serving.http import KeyRing, ServiceSlot
from serving.ui import charts
from serving.ui.data import (
    NO_MODEL,
    TENURE_BANDS,
    TICKET_BANDS,
    PageData,
    PageError,
    band,
    summarize_segments,
)
from serving.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    Sealer,
    Session,
    SignInThrottle,
    read_session_secret,
)

logger = logging.getLogger("bentoml.service.npsrisk")

UI_PATH = "/ui"
HERE = Path(__file__).parent
SORTS = {  # short headers keep the list readable at 1280 px
    "churn_probability": "Churn prob.",
    "detractor_probability": "Detractor prob.",
    "revenue_at_risk": "Revenue at risk",
}
TIERS = ("low", "medium", "high")
STATUSES = ("none", "planned", "contacted", "snoozed", "resolved", "dismissed")
ACTIONS = {  # button -> (status, label)
    "contacted": "Mark contacted",
    "resolved": "Resolve",
    "dismissed": "Dismiss",
    "snoozed": "Snooze",
}
ERROR_TITLES = {
    "unknown_customer": "No such customer",
    "not_available": "Not available in this build",
    "starting": "Starting up",
    "not_found": "Not found",
}
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _pct(value: Any) -> str:
    """A probability in whole percent, with decimals only where whole percent would read 0% or 100%.

    The model never returns a certainty, so the page must not show one: 0.996 reads 99.6%,
    not 100%. The text stays a plain number (the list's sort and the browser test parse it).
    """
    if value is None:
        return "–"
    share = 100 * float(value)
    for decimals in range(4):
        text = f"{share:.{decimals}f}"
        if 0 < float(text) < 100 or share in (0.0, 100.0):
            return f"{text}%"
    return "99.999%" if share > 50 else "0.001%"


def _money(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.0f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # optional fields (a note, an owner) may be absent
    )
    env.filters["pct"] = _pct
    env.filters["money"] = _money
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


class UiApp:
    """Owns the page's routes, session sealer and templates; ``asgi`` is what BentoML mounts."""

    def __init__(self, slot: ServiceSlot, settings: Settings, keys: KeyRing | None = None):
        self.settings = settings
        self.data = PageData(slot, settings)
        self.keys = keys or KeyRing("NPSRISK_API_KEYS", "NPSRISK_API_KEYS_FILE")
        self.env = _environment()
        self._sealer: Sealer | None = None
        self.throttle = SignInThrottle(
            settings.ui.max_failed_signins, settings.ui.signin_window_seconds
        )
        self.asgi = Starlette(
            routes=[
                Route("/", self.at_risk_page, methods=["GET"]),
                Route("/login", self.login_form, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/customers/{customer_id}", self.customer_page, methods=["GET"]),
                Route(
                    "/interventions/{intervention_id}/status", self.change_status, methods=["POST"]
                ),
                Route("/segments", self.segments_page, methods=["GET"]),
                Route("/programme", self.programme_page, methods=["GET"]),
                Route("/reports/{path:path}", self.report_file, methods=["GET"]),
                Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
            ],
            exception_handlers={Exception: self._crashed},
        )

    # --- plumbing -------------------------------------------------------------------------
    @property
    def sealer(self) -> Sealer:
        # Read on first use, not at import: the home may not exist until the service starts.
        if self._sealer is None:
            self._sealer = Sealer(read_session_secret(self.settings.run_path))
        return self._sealer

    def _render(self, name: str, request: Request, status: int = 200, **context: Any) -> Response:
        session: Session | None = context.pop("session", None)
        html = self.env.get_template(name).render(
            base=UI_PATH,
            session=session,
            csrf=self.sealer.csrf_token(session.sid) if session else "",
            path=request.url.path,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        self._harden(response)
        return response

    @staticmethod
    def _harden(response: Response) -> None:
        response.headers["content-security-policy"] = CSP
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "same-origin"
        response.headers["cache-control"] = "no-store"

    def _session(self, request: Request) -> Session | None:
        session = self.sealer.open(request.cookies.get(COOKIE))
        if session is None or not self.keys.accepts(session.key.encode()):
            return None  # expired, forged, or its key was rotated out
        return session

    def _to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"{UI_PATH}/login?next={quote(target, safe='')}", 303)
        response.delete_cookie(COOKIE, path=UI_PATH)
        return response

    def _same_origin(self, request: Request) -> bool:
        """A POST whose Origin (when the browser sends one) is this very host."""
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return origin.split("://", 1)[-1] == request.headers.get("host", "")

    async def _checked_form(self, request: Request, session: Session) -> dict[str, str] | None:
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        if not self._same_origin(request) or not self.sealer.csrf_ok(
            session.sid, values.get("csrf")
        ):
            return None
        return values

    def _error_page(self, request: Request, session: Session | None, exc: PageError) -> Response:
        status = exc.status if exc.status < 500 else 200 if exc.code == "no_model" else 503
        title = ERROR_TITLES.get(exc.code, "Not available")
        return self._render(
            "error.html", request, status=status, session=session, error=exc, title=title
        )

    async def _crashed(self, request: Request, exc: Exception) -> Response:
        """A bug of ours: logged with its traceback, shown as a plain page (never the trace)."""
        logger.error("the /ui page failed on %s", request.url.path, exc_info=exc)
        html = self.env.get_template("error.html").render(
            base=UI_PATH,
            session=None,
            csrf="",
            path=request.url.path,
            title="Something went wrong",
            error=PageError(500, "internal_error", "This page failed; the error is logged."),
        )
        response = HTMLResponse(html, status_code=500)
        self._harden(response)
        return response

    # --- sign-in ------------------------------------------------------------------------
    def _login_response(
        self, request: Request, status: int = 200, message: str = "", next_path: str = ""
    ) -> Response:
        nonce = secrets.token_urlsafe(16)
        response = self._render(
            "login.html",
            request,
            status=status,
            login_csrf=self.sealer.csrf_token(nonce),
            message=message,
            next_path=next_path,
            signed_out=request.query_params.get("signed_out") == "1",
            title="Sign in",
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=3600,
            path=UI_PATH,
            httponly=True,
            secure=self.settings.ui.secure_cookie,
            samesite="strict",
        )
        return response

    async def login_form(self, request: Request) -> Response:
        if self._session(request) is not None:
            return RedirectResponse(f"{UI_PATH}/", 303)
        return self._login_response(request, next_path=_safe_next(request.query_params.get("next")))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        key = str(form.get("api_key") or "").strip()
        actor = str(form.get("actor") or "").strip()
        next_path = _safe_next(str(form.get("next") or ""))
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not self._same_origin(request) or not self.sealer.csrf_ok(nonce, str(form.get("csrf"))):
            return self._login_response(
                request, 403, "This sign-in form expired. Please sign in again.", next_path
            )
        if not self.keys:
            return self._login_response(
                request,
                503,
                f"No API key is configured for this service: set {self.keys.source}.",
                next_path,
            )
        if not actor or len(actor) > 320:
            return self._login_response(
                request,
                400,
                "Enter your name or e-mail: it is recorded with each change.",
                next_path,
            )
        address = request.client.host if request.client else "unknown"
        wait = self.throttle.retry_after(address)
        if wait:
            response = self._login_response(
                request,
                429,
                f"Too many wrong keys from this address: try again in {wait} seconds.",
                next_path,
            )
            response.headers["Retry-After"] = str(wait)
            return response
        if not self.keys.accepts(key.encode()):
            self.throttle.failed(address)
            return self._login_response(
                request,
                401,
                "That API key is not valid for this service. Check for a typo, or ask your "
                "administrator for a current key.",
                next_path,
            )
        self.throttle.succeeded(address)
        value, _ = self.sealer.seal(key, actor, self.settings.ui.session_hours)
        response = RedirectResponse(next_path or f"{UI_PATH}/", 303)
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(self.settings.ui.session_hours * 3600),
            path=UI_PATH,
            httponly=True,
            secure=self.settings.ui.secure_cookie,
            samesite="lax",
        )
        response.delete_cookie(LOGIN_COOKIE, path=UI_PATH)
        return response

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        if session is not None and await self._checked_form(request, session) is None:
            return Response("bad CSRF token: reload the page and sign out again", 403)
        response = RedirectResponse(f"{UI_PATH}/login?signed_out=1", 303)
        response.delete_cookie(COOKIE, path=UI_PATH)
        return response

    # --- at-risk list ---------------------------------------------------------------------
    async def at_risk_page(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        return await _threaded(self._at_risk_page, request, session)

    def _at_risk_page(self, request: Request, session: Session) -> Response:
        q = request.query_params
        page_size = self.settings.ui.page_size
        segment_columns = list(self._segment_columns())
        filters = {c: q.get(f"seg_{c}", "").strip() for c in segment_columns}
        sort = q.get("sort", "churn_probability")
        sort = sort if sort in SORTS else "churn_probability"
        order = "asc" if q.get("order") == "asc" else "desc"
        try:
            page = max(1, int(q.get("page", "1")))
        except ValueError:
            page = 1
        query = {
            "sort": sort,
            "order": order,
            "min_tier": q.get("tier") if q.get("tier") in TIERS else None,
            "owner": q.get("owner", "").strip() or None,
            "intervention_status": q.get("status") if q.get("status") in STATUSES else None,
            "segments": {c: v for c, v in filters.items() if v},
            "limit": page_size,
            "offset": (page - 1) * page_size,
        }
        state = {
            "sort": sort,
            "order": order,
            "tier": q.get("tier", ""),
            "owner": q.get("owner", ""),
            "status": q.get("status", ""),
            **{f"seg_{c}": v for c, v in filters.items() if v},
        }
        try:
            answer = self.data.at_risk(**query)
        except PageError as exc:
            return self._error_page(request, session, exc)
        total = answer["total"]

        def link(**changes: Any) -> str:
            merged = {**state, **changes}
            return f"{UI_PATH}/?" + urlencode(
                {k: v for k, v in merged.items() if v not in ("", None)}
            )

        sort_links = {
            key: link(sort=key, order="asc" if sort == key and order == "desc" else "desc", page=1)
            for key in SORTS
        }
        pages = max(1, -(-total // page_size))
        return self._render(
            "at_risk.html",
            request,
            session=session,
            title="At risk",
            answer=answer,
            items=answer["items"],
            total=total,
            page=page,
            pages=pages,
            first=(page - 1) * page_size + 1 if total else 0,
            last=min(page * page_size, total),
            prev_link=link(page=page - 1) if page > 1 else None,
            next_link=link(page=page + 1) if page < pages else None,
            sort=sort,
            order=order,
            sorts=SORTS,
            sort_links=sort_links,
            filters=filters,
            segment_options=self._segment_options(segment_columns),
            tiers=TIERS,
            statuses=STATUSES,
            q=state,
            filtered=any(v for k, v in state.items() if k not in ("sort", "order")),
        )

    def _segment_columns(self) -> list[str]:
        try:
            columns = self.data.instance.state.store.columns
        except (PageError, AttributeError):
            return []
        wanted = getattr(self.settings, "interventions", None)
        names = getattr(wanted, "segment_columns", ["plan_tier", "region", "industry"])
        return [c for c in names if c in columns]

    def _segment_options(self, columns: list[str]) -> dict[str, list[str]]:
        store = self.data.instance.state.store
        out = {}
        for c in columns:
            values = {str(v) for v in store.columns[c] if v is not None and str(v) != "nan"}
            out[c] = sorted(values)[:200]
        return out

    # --- customer -------------------------------------------------------------------------
    async def customer_page(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        return await _threaded(self._customer_page, request, session)

    def _customer_page(self, request: Request, session: Session) -> Response:
        cid = request.path_params["customer_id"]
        try:
            answer = self.data.predict(cid)
        except PageError as exc:
            return self._error_page(request, session, exc)
        if cid in answer["unknown_customer_ids"]:
            exc = PageError(404, "unknown_customer", f"no customer {cid} in the feature store")
            return self._error_page(request, session, exc)
        prediction = answer["predictions"][0]
        drivers = prediction.get("drivers") or []
        churn_drivers = [d for d in drivers if d["target"] == "churn"]
        nps_drivers = [d for d in drivers if d["target"] == "nps"]
        try:
            listed = self.data.interventions(customer_id=cid, limit=50)
            interventions, interventions_note = listed["interventions"], ""
        except PageError as exc:
            interventions, interventions_note = [], exc.detail
        context = _customer_context(self.data, cid)
        owner = next((i["owner"] for i in interventions if i.get("owner")), None)
        context.setdefault("owner", owner or _account_owner(self.data, cid))
        history = self.data.customer_history(cid)
        answers = history.get("answers", [])
        return self._render(
            "customer.html",
            request,
            session=session,
            title=f"Customer {cid}",
            cid=cid,
            answer=answer,
            p=prediction,
            context=context,
            churn_chart=charts.driver_chart(
                churn_drivers, f"What drives {cid}'s churn risk", higher_is_worse=True
            ),
            nps_chart=charts.driver_chart(
                nps_drivers, f"What drives {cid}'s predicted NPS score", higher_is_worse=False
            ),
            history=history,
            history_chart=charts.score_history(
                [(a["date"], a["score"]) for a in answers], f"NPS answers of {cid}"
            ),
            interventions=interventions,
            interventions_note=interventions_note,
            actions=ACTIONS,
            allowed=_transitions(),
            flash=request.query_params.get("done", ""),
            problem=request.query_params.get("problem", ""),
        )

    async def change_status(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        form = await self._checked_form(request, session)
        if form is None:
            return self._render(
                "error.html",
                request,
                status=403,
                session=session,
                title="Form expired",
                error=PageError(403, "csrf", "This form expired: go back, reload, try again."),
            )
        iid = request.path_params["intervention_id"]
        cid = form.get("customer_id", "")
        back = f"{UI_PATH}/customers/{quote(cid, safe='')}"
        change = {
            "id": iid,
            "status": form.get("status", ""),
            "note": form.get("note", "").strip() or None,
            "actor": session.actor,
            "snooze_until": form.get("snooze_until") or None,
        }
        try:
            await _threaded(self.data.change_status, **change)
        except PageError as exc:
            return RedirectResponse(
                f"{back}?{urlencode({'problem': exc.detail})}#interventions", 303
            )
        done = f"{iid} is now {change['status']}"
        return RedirectResponse(f"{back}?{urlencode({'done': done})}#interventions", 303)

    # --- segments ---------------------------------------------------------------------------
    async def segments_page(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        return await _threaded(self._segments_page, request, session)

    def _segments_page(self, request: Request, session: Session) -> Response:
        try:
            state = self.data.state()
            frame = segment_frame(state, self.settings, self._segment_columns())
        except PageError as exc:
            return self._error_page(request, session, exc)
        groups = []
        tenure_order = [b[2] for b in TENURE_BANDS] + ["over 2 years"]
        ticket_order = [b[2] for b in TICKET_BANDS] + ["6 or more tickets"]
        for column, title, order in (
            ("tenure_band", "Tenure", tenure_order),
            ("plan_tier", "Plan tier", ()),
            ("ticket_band", "Support history (tickets, last 90 days)", ticket_order),
            ("industry", "Industry", ()),
            ("region", "Region", ()),
        ):
            if column not in frame.columns:
                continue
            rows = summarize_segments(frame, column, order=order)
            groups.append(
                {
                    "title": title,
                    "rows": rows,
                    "nps_chart": charts.paired_bars(
                        [(r["segment"], r["actual_nps"], r["predicted_nps"]) for r in rows],
                        f"Actual and predicted NPS by {title.lower()}",
                        (-100.0, 100.0),
                    ),
                    "risk_chart": charts.bars(
                        [(r["segment"], 100 * r["churn_risk"]) for r in rows],
                        f"Mean churn probability by {title.lower()}",
                        (0.0, max(max(100 * r["churn_risk"] for r in rows) * 1.15, 1.0)),
                        unit="%",
                    ),
                }
            )
        forecast, forecast_note = self._next_wave_forecast(request.query_params.get("survey_date"))
        forecast_chart = ""
        if forecast:
            forecast_chart = charts.interval_chart(
                [
                    ("next wave", *(forecast["wave"].get(k) for k in ("nps", "low", "high"))),
                    ("whole base", *(forecast["base"].get(k) for k in ("nps", "low", "high"))),
                ],
                "Forecast NPS of the next survey wave and of the whole base, with intervals",
            )
        return self._render(
            "segments.html",
            request,
            session=session,
            title="Segments",
            groups=groups,
            customers=len(frame),
            forecast=forecast,
            forecast_note=forecast_note,
            forecast_chart=forecast_chart,
            features_as_of=state.store.features_as_of,
            model=state.card,
        )

    def _next_wave_forecast(self, survey_date: str | None) -> tuple[dict | None, str]:
        try:
            if not survey_date:
                survey_date = self._next_survey_date()
            if not survey_date:
                return None, (
                    "No survey wave is planned yet: plan one with `npsrisk presurvey` "
                    "(or POST /presurvey) and its forecast appears here."
                )
            return self.data.nps_forecast(survey_date=survey_date), ""
        except PageError as exc:
            return None, exc.detail

    def _next_survey_date(self) -> str | None:
        from datetime import UTC, datetime

        acting = getattr(self.data.instance, "acting", None)
        if acting is None:
            return None
        frame = acting.store.assignments_frame()
        if frame.empty:
            return None
        dates = sorted({str(d)[:10] for d in frame["survey_date"].dropna()})
        today = datetime.now(UTC).date().isoformat()
        upcoming = [d for d in dates if d >= today]
        return (upcoming or dates)[0] if (upcoming or dates) else None

    # --- programme --------------------------------------------------------------------------
    async def programme_page(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        return await _threaded(self._programme_page, request, session)

    def _programme_page(self, request: Request, session: Session) -> Response:
        report, note = self.data.outcomes(), ""
        try:
            counts = {s: self.data.interventions(status=s, limit=1)["total"] for s in STATUSES[1:]}
        except PageError as exc:
            counts, note = {}, note or exc.detail
        return self._render(
            "programme.html",
            request,
            session=session,
            title="Programme",
            report=report,
            note=note,
            counts=counts,
            reports=_report_index(self.settings.reports_path),
        )

    async def report_file(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        root = self.settings.reports_path.resolve()
        wanted = (root / request.path_params["path"]).resolve()
        if not wanted.is_relative_to(root):
            return self._error_page(request, session, PageError(404, "not_found", "no such report"))
        if wanted.is_dir():
            wanted = wanted / "index.html"
        if not wanted.is_file():
            exc = PageError(404, "not_found", "no such report: see the programme page's list")
            return self._error_page(request, session, exc)
        response = FileResponse(wanted)
        # Reports are our own files but may embed Evidently's scripts: sandbox them.
        response.headers["content-security-policy"] = (
            "sandbox allow-scripts; default-src 'self' 'unsafe-inline' data:"
        )
        return response


def _transitions() -> dict[str, tuple[str, ...]]:
    """Which buttons each status gets: the life cycle's allowed moves (interventions.states)."""
    try:
        from interventions.states import TRANSITIONS
    except ImportError:
        return {}
    return TRANSITIONS


def _safe_next(value: str | None) -> str:
    """Only a path of this page (no other host, no scheme): an open redirect is a phishing aid."""
    if not value or not value.startswith(f"{UI_PATH}/") or value.startswith("//"):
        return ""
    return value if "\\" not in value and "://" not in value else ""


async def _threaded(fn, *args, **kwargs):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


def _customer_context(data: PageData, cid: str) -> dict:
    """Owner, segments, MRR and recent negative themes of one customer (no personal data but
    the owner, which the page shows and never logs)."""
    empty = {"mrr": None, "segments": {}, "themes": []}
    try:
        state = data.state()
    except PageError:
        return empty
    try:
        from serving.acting import context_of
    except ImportError:
        return empty
    rows, known, _ = state.store.locate([cid])
    if not known:
        return empty
    settings = data.settings
    columns = getattr(getattr(settings, "interventions", None), "segment_columns", [])
    ctx = context_of(state, rows[0], columns)
    labels = state.champion.bundle.theme_labels
    return {
        "mrr": ctx.mrr,
        "segments": ctx.segments,
        "themes": [labels.get(t, t) for t in ctx.themes],
    }


def _account_owner(data: PageData, cid: str) -> str | None:
    """The customer's owner as the at-risk list shows it (interventions store, then directory)."""
    acting = getattr(data.instance, "acting", None)
    if acting is None:
        return None
    try:
        return acting.store.owners_by_customer().get(cid) or acting.owners().account_owner.get(cid)
    except Exception:  # an owners file that cannot be read must not break the customer view
        return None


def segment_frame(state: Any, settings: Settings, segment_columns: list[str]):
    """The at-risk base (every customer scored) with the bands the segments view groups by."""
    import numpy as np

    try:
        from serving.acting import base_frame
    except ImportError:
        raise PageError(501, "not_available", "this build has no at-risk base yet") from None
    frame = base_frame(state, settings.serving.risk_tiers, segment_columns).copy()
    cols = state.store.columns
    n = len(frame)
    nan = np.full(n, np.nan)
    tenure = np.asarray(cols.get("tenure_days", nan), dtype=float)
    frame["tenure_band"] = band(tenure, TENURE_BANDS, "over 2 years")
    windows = sorted(int(c[8:-1]) for c in cols if c.startswith("tickets_") and c[8:-1].isdigit())
    window = 90 if 90 in windows else (windows[-1] if windows else None)
    tickets = np.asarray(cols[f"tickets_{window}d"], dtype=float) if window else nan
    frame["ticket_band"] = band(np.nan_to_num(tickets, nan=0.0), TICKET_BANDS, "6 or more tickets")
    score = np.asarray(cols.get("nps_last_score", nan), dtype=float)
    age = np.asarray(cols.get("nps_last_age_days", nan), dtype=float)
    recent = age <= settings.training.horizon_days
    frame["last_score"] = np.where(recent, score, np.nan)
    return frame


def _report_index(root: Path) -> list[dict]:
    """The monitoring reports under the home: index pages first, then every HTML report."""
    if not root.is_dir():
        return []
    found = sorted(root.rglob("*.html"), key=lambda p: (p.name != "index.html", str(p)))
    return [
        {"name": str(p.relative_to(root)), "href": f"{UI_PATH}/reports/{p.relative_to(root)}"}
        for p in found[:200]
    ]


def build_ui_app(slot: ServiceSlot, settings: Settings) -> Starlette:
    """The ASGI app BentoML mounts at ``UI_PATH``."""
    return UiApp(slot, settings).asgi


__all__ = ["NO_MODEL", "UI_PATH", "UiApp", "build_ui_app"]
