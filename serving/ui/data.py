"""What the success teams' page shows, read through the very handlers the API's routes call.

The page does not keep a second data path: `/at_risk`, `/interventions`, `/model`,
`/nps_forecast` and `/predict` are answered by methods of the worker's service instance (the
edge's router calls them after parsing a request); the page builds the same pydantic request
and calls the same method, so a filter, a status change or a forecast means exactly what it
means over HTTP, with the same validation and the same errors. Only what the API does not
serve is read here: a customer's NPS answers and texts from the raw export
(``ui.source_path``, masked), and the segment summaries computed from the at-risk base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from npsrisk.settings import Settings
from serving.http import ApiError, ServiceSlot

if TYPE_CHECKING:  # the page builds its tables on first view; a worker starts without pandas
    import pandas as pd

# Handler names the edge's ROUTES map to (serving/service.py); the page calls the same ones.
PREDICT = "handle_predict"
AT_RISK = "handle_at_risk"
INTERVENTIONS = "handle_interventions"
CHANGE_STATUS = "handle_change_status"
NPS_FORECAST = "handle_nps_forecast"

NO_MODEL = "no champion model yet: run npsrisk train"
TENURE_BANDS = ((0, 90, "under 3 months"), (90, 365, "3-12 months"), (365, 730, "1-2 years"))
TICKET_BANDS = ((0, 1, "no tickets"), (1, 3, "1-2 tickets"), (3, 6, "3-5 tickets"))


class PageError(Exception):
    """What the page shows instead of data: status, machine code, plain sentence."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Unavailable(PageError):
    def __init__(self, endpoint: str):
        super().__init__(501, "not_available", f"this service build has no {endpoint} endpoint yet")


@dataclass
class PageData:
    """The page's window on one worker's service instance."""

    slot: ServiceSlot
    settings: Settings

    @property
    def instance(self) -> Any:
        instance = self.slot.instance
        if instance is None:
            raise PageError(503, "starting", "the service is starting: reload in a moment")
        return instance

    def state(self) -> Any:
        state = self.instance.state
        if state is None:
            raise PageError(503, "no_model", NO_MODEL)
        return state

    def call(self, handler: str, endpoint: str, request: Any) -> dict:
        """One handler's answer as the API would send it; an error answer raises PageError."""
        method = getattr(self.instance, handler, None)
        if method is None:
            raise Unavailable(endpoint)
        try:
            status, body = method(request)
        except ApiError as exc:
            raise _page_error(exc.status, exc.code, exc.detail) from None
        if status >= 400:
            raise _page_error(status, body.get("error", "error"), body["detail"])
        return body

    def ask(self, handler: str, endpoint: str, model: str, data: dict) -> dict:
        """Validate ``data`` with the endpoint's request model, then ``call`` its handler."""
        return self.call(handler, endpoint, _validated(_model(model, endpoint), data))

    # --- the API's endpoints ---------------------------------------------------------
    def model_card(self) -> dict:
        from serving.model_card import model_card

        return model_card(self.state())

    def predict(self, customer_id: str, top_k: int = 8) -> dict:
        from serving.schemas import PredictRequest

        return self.call(
            PREDICT,
            "/predict",
            PredictRequest(customer_ids=[customer_id], explain=True, top_k=top_k),
        )

    def at_risk(self, **query: Any) -> dict:
        return self.ask(AT_RISK, "/at_risk", "AtRiskRequest", query)

    def interventions(self, **query: Any) -> dict:
        return self.ask(INTERVENTIONS, "/interventions", "InterventionsRequest", query)

    def change_status(self, **change: Any) -> dict:
        endpoint = "/interventions/{id}/status"
        return self.ask(CHANGE_STATUS, endpoint, "StatusChangeRequest", change)

    def nps_forecast(self, **query: Any) -> dict:
        return self.ask(NPS_FORECAST, "/nps_forecast", "NpsForecastRequest", query)

    def outcomes(self) -> dict | None:
        """The latest outcome report `npsrisk outcomes DATA` wrote (None: never run yet)."""
        return latest_outcome_report(self.settings.reports_path)

    # --- what the API does not serve --------------------------------------------------
    def customer_history(self, customer_id: str, verbatims: int = 3) -> dict:
        """NPS answers and the latest masked texts of one customer from ``ui.source_path``."""
        source = self.settings.ui.source_path
        if source is None:
            return {"note": "set ui.source_path (the raw export) to show NPS answers and texts"}
        from features.loading import DataSourceError, load_tables
        from text_analytics.signals import extract_customer_texts, mask_texts

        try:
            raw = load_tables(
                source, tables=["nps_responses", "chats", "tickets"], customer_ids=[customer_id]
            )
        except (DataSourceError, OSError) as exc:
            return {"note": f"could not read ui.source_path: {exc}"}
        nps = raw.frames.get("nps_responses")
        answers = nps_answers(nps) if nps is not None else []
        texts = extract_customer_texts(raw.frames)
        if texts.empty:
            return {"answers": answers, "verbatims": []}
        bundle = self.state().champion.bundle
        if bundle.text is not None:
            scored = bundle.text.score(texts, "text")  # masks personal data in its output
            negative = scored[scored["negative"]]
            picked = (negative if not negative.empty else scored).tail(verbatims)
        else:
            picked = texts.tail(verbatims).assign(text=lambda f: mask_texts(f["text"]))
        return {
            "answers": answers,
            "verbatims": [
                {"when": str(r.timestamp)[:10], "source": r.source, "text": str(r.text)[:400]}
                for r in picked.iloc[::-1].itertuples()
            ],
        }


def _model(name: str, endpoint: str):
    """The endpoint's request model (the same one the edge validates with)."""
    import serving.schemas

    model = getattr(serving.schemas, name, None)
    if model is None:
        raise Unavailable(endpoint)
    return model


def _page_error(status: int, code: str, detail: str) -> PageError:
    """The API's error as the page says it; no model loaded is the empty state, not a fault."""
    if code == "not_ready":
        return PageError(503, "no_model", f"{NO_MODEL} ({detail})")
    return PageError(status, code, detail)


def _validated(model, data: dict) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate({k: v for k, v in data.items() if v not in (None, "")})
    except ValidationError as exc:
        from serving.http import describe_validation

        raise PageError(422, "validation_error", describe_validation(exc, data)) from None


def nps_answers(nps: pd.DataFrame) -> list[dict]:
    """A customer's answers, oldest first: (date, score, category)."""
    import pandas as pd

    from features.contract import nps_category

    if nps.empty or "score" not in nps.columns:
        return []
    frame = nps.dropna(subset=["score"]).copy()
    frame["_at"] = pd.to_datetime(frame["responded_at"], errors="coerce", utc=True)
    frame = frame.dropna(subset=["_at"]).sort_values("_at")
    return [
        {"date": at.date().isoformat(), "score": float(s), "category": nps_category(float(s))}
        for at, s in zip(frame["_at"], frame["score"], strict=True)
    ]


def latest_outcome_report(reports_path) -> dict | None:
    """The newest ``reports/outcomes/<stamp>/outcome_report.csv``: where it is and its rows."""
    folder = reports_path / "outcomes"
    found = sorted(folder.glob("*/outcome_report.csv")) if folder.is_dir() else []
    if not found:
        return None
    import pandas as pd

    frame = pd.read_csv(found[-1])
    frame = frame.astype(object).where(frame.notna(), None)
    return {
        "written": found[-1].parent.name,
        "path": str(found[-1].relative_to(reports_path)),
        "comparisons": frame.to_dict("records"),
    }


# --- segment summaries (pure) ----------------------------------------------------------------


def band(values: np.ndarray, bands: Sequence[tuple[float, float, str]], last: str) -> np.ndarray:
    """Labels of values by [low, high) bands; above the last band ``last``; NaN "unknown"."""
    out = np.full(len(values), "unknown", dtype=object)
    v = np.asarray(values, dtype=float)
    known = ~np.isnan(v)
    out[known] = last
    for low, high, name in reversed(bands):
        out[known & (v >= low) & (v < high)] = name
    return out


def _nps_of(scores: np.ndarray) -> float:
    if len(scores) == 0:
        return math.nan
    return 100.0 * (np.mean(scores >= 9) - np.mean(scores <= 6))


def summarize_segments(
    frame: pd.DataFrame, column: str, min_answers: int = 5, order: Sequence[str] = ()
) -> list[dict]:
    """Per value of ``column``: customers, actual NPS (last answers), predicted NPS, risk.

    ``frame`` has p_promoter, p_detractor, churn_probability and ``last_score`` (NaN when the
    customer has no recent answer). Predicted NPS is the expected NPS if everyone answered:
    100 * (mean P(promoter) - mean P(detractor)). An actual NPS from fewer than
    ``min_answers`` answers is not shown (too noisy to compare).
    """
    import pandas as pd

    rows = []
    for value, part in frame.groupby(column, sort=True, dropna=False):
        scores = part["last_score"].dropna().to_numpy(float)
        rows.append(
            {
                "segment": "unknown" if pd.isna(value) else str(value),
                "customers": len(part),
                "answers": len(scores),
                "actual_nps": _nps_of(scores) if len(scores) >= min_answers else None,
                "predicted_nps": float(
                    100.0 * (part["p_promoter"].mean() - part["p_detractor"].mean())
                ),
                "churn_risk": float(part["churn_probability"].mean()),
            }
        )
    if order:  # bands in their natural order (tenure, ticket volume), others alphabetical
        rank = {name: i for i, name in enumerate(order)}
        rows.sort(key=lambda r: rank.get(r["segment"], len(rank)))
    return rows
