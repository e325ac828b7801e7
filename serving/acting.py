"""What the interventions package needs from a serving state: predictions, context, the base.

One code path for the service's endpoints and the CLI (which builds the same ServingState
from the champion and the current feature store), so a plan is the same whichever asked.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from features.contract import NPS_CATEGORIES
from interventions.planning import CustomerContext
from interventions.playbooks import recent_themes
from npsrisk.settings import RiskTierSettings
from serving.predictions import risk_tiers
from serving.state import ServingState

if TYPE_CHECKING:  # the act routes build frames on first use; a worker starts without pandas
    import pandas as pd

_cache_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _theme_ids(state: ServingState) -> tuple[str, ...]:
    return tuple(state.champion.bundle.theme_labels)


def _theme_columns(state: ServingState) -> list[str]:
    return [c for c in state.store.columns if c.startswith("text_negative_")]


def context_of(state: ServingState, row: int, segment_columns: Sequence[str]) -> CustomerContext:
    """MRR, segment values and recent negative themes of one store row (no personal data)."""
    store = state.store
    values = {c: store.value(row, c) for c in _theme_columns(state)}
    mrr = store.value(row, "mrr")
    return CustomerContext(
        mrr=None if mrr is None else float(mrr),
        themes=recent_themes(values, _theme_ids(state)),
        segments={c: store.value(row, c) for c in segment_columns if c in store.columns},
    )


def predictions_and_contexts(
    state: ServingState,
    customer_ids: Sequence[str],
    tiers: RiskTierSettings,
    segment_columns: Sequence[str],
    top_k: int = 5,
) -> tuple[dict[str, dict], dict[str, CustomerContext], list[str]]:
    """Predictions with drivers and the planning context of known ids, and the unknown ids."""
    # No change explanation: planning reads the drivers of now (and stays as fast as before).
    predictions, unknown, _ = state.predict_ids(
        list(customer_ids), True, top_k, tiers, changes=False
    )
    rows, known, _ = state.store.locate(list(customer_ids))
    contexts = {
        cid: context_of(state, row, segment_columns) for cid, row in zip(known, rows, strict=True)
    }
    return {p["customer_id"]: p for p in predictions}, contexts, unknown


def base_frame(
    state: ServingState, tiers: RiskTierSettings, segment_columns: Sequence[str]
) -> pd.DataFrame:
    """Every customer of the store scored without drivers (cached per state and tiers).

    Columns: customer_id, churn_probability, p_detractor/passive/promoter, detractor_probability,
    risk_tier, mrr, revenue_at_risk, p_response (NaN without a response model), themes, and
    the segment columns the store holds.
    """
    return _cached_frame(state, tiers, segment_columns, "base")


def _cached_frame(
    state: ServingState, tiers: RiskTierSettings, segment_columns: Sequence[str], slot: str
) -> pd.DataFrame:
    key = (id(state), tiers, tuple(segment_columns))
    with _cache_lock:
        hit = _cache.get(slot)
        if hit is not None and hit[0] == key and hit[1] is state:
            return hit[2]
    import pandas as pd

    bundle = state.champion.bundle
    scores, _ = bundle.score(state.X, explain=False)
    n = len(state.X)
    churn = scores["churn_probability"]
    probs = np.column_stack([scores[f"p_{c}"] for c in NPS_CATEGORIES])
    frame = pd.DataFrame({"customer_id": state.store.columns["customer_id"]})
    frame["churn_probability"] = churn
    for k, c in enumerate(NPS_CATEGORIES):
        frame[f"p_{c}"] = probs[:, k]
    frame["detractor_probability"] = probs[:, 0]
    frame["risk_tier"] = risk_tiers(churn, probs[:, 0], tiers)
    mrr = state.store.columns.get("mrr")
    frame["mrr"] = np.asarray(mrr, dtype=float) if mrr is not None else np.nan
    frame["revenue_at_risk"] = frame["mrr"] * frame["churn_probability"]
    response = bundle.response_probability(state.X)
    frame["p_response"] = response if response is not None else np.nan
    themes = _theme_ids(state)
    columns = _theme_columns(state)
    arrays = {c: state.store.columns[c] for c in columns}
    frame["themes"] = (
        [recent_themes({c: arrays[c][i] for c in columns}, themes) for i in range(n)]
        if columns
        else [()] * n
    )
    for c in segment_columns:
        if c in state.store.columns:
            frame[c] = state.store.columns[c]
    with _cache_lock:
        _cache[slot] = (key, state, frame)
    return frame


def previous_frame(state: ServingState, tiers: RiskTierSettings) -> tuple[pd.DataFrame, str] | None:
    """The base scored by the same model on the previous materialization (kept beside the
    current one), and its as-of date; None when there is no earlier store."""
    previous = state.previous()
    if previous is None:
        return None
    return _cached_frame(previous, tiers, (), "previous"), previous.store.features_as_of


def explained(
    state: ServingState, customer_ids: Sequence[str], tiers: RiskTierSettings, top_k: int
) -> dict[str, dict]:
    """Predictions of a page of customers with drivers and, when an earlier materialization
    is kept, why each moved since then (only the page is explained)."""
    if not customer_ids:
        return {}
    predictions, _, _ = state.predict_ids(list(customer_ids), True, top_k, tiers)
    return {p["customer_id"]: p for p in predictions}


# --- the endpoints' logic, shared by the service and the CLI --------------------------------

Answer = tuple[int, dict[str, Any]]


def _error(status: int, code: str, detail: str, **extra: Any) -> Answer:
    return status, {"error": code, "detail": detail, **extra}


class Acting:
    """Playbooks, owners and the interventions store, opened once and used per request."""

    def __init__(self, settings, engine=None, on_event=None, upgrade: bool | None = None):
        self.settings = settings
        self._engine = engine
        self._upgrade = upgrade  # the service's workers never migrate (npsrisk serve does)
        self._on_event = on_event
        self._store = None
        self._playbooks = None
        self._lock = threading.Lock()

    @property
    def store(self):
        from interventions.store import InterventionStore

        with self._lock:
            if self._store is None:
                from interventions.db import open_store_database

                engine = self._engine or open_store_database(self.settings, self._upgrade).engine
                on_event = self._on_event
                if on_event is None:
                    from interventions.alerts import outbox_hook

                    on_event = outbox_hook(self.settings)
                self._store = InterventionStore(engine, on_event)
            return self._store

    @property
    def playbooks(self):
        from interventions.playbooks import load_playbooks

        with self._lock:
            if self._playbooks is None:
                self._playbooks = load_playbooks(self.settings.interventions.playbooks_path)
            return self._playbooks

    def owners(self):
        from interventions.owners import load_owners

        directory = load_owners(self.settings.interventions.owners_path)
        return directory.with_account_owners(self.store.account_owners())

    # --- pre-survey ---------------------------------------------------------------------
    def plan(
        self,
        state: ServingState,
        schedule: Sequence[tuple[str, date]],
        source: str,
        top_k: int = 5,
        planned_on: date | None = None,
        dry_run: bool = False,
        seed: int | None = None,
    ):
        """Plan a wave from a serving state and store it; (plan, created ids, unknown ids)."""
        import secrets

        from interventions.planning import plan_wave

        s = self.settings.interventions
        ids = list(dict.fromkeys(c for c, _ in schedule))
        predictions, contexts, unknown = predictions_and_contexts(
            state, ids, self.settings.serving.risk_tiers, s.segment_columns, top_k
        )
        directory = self.owners()
        chosen_seed = (
            seed if seed is not None else s.seed if s.seed is not None else secrets.randbits(31)
        )
        today = planned_on or datetime.now(UTC).date()
        labels = state.champion.bundle.theme_labels

        def make(open_interventions, held_out=frozenset()):
            return plan_wave(
                schedule,
                predictions,
                contexts,
                self.playbooks,
                open_interventions,
                directory.owner_of,
                planned_on=today,
                control_share=s.control_share,
                seed=chosen_seed,
                lead_time_days=s.lead_time_days,
                theme_labels=labels,
                held_out=held_out,
            )

        if dry_run:
            return (
                make(self.store.open_interventions(ids), self.store.held_out(ids)),
                {},
                unknown,
            )
        plan, created = self.store.plan_and_save(
            ids, make, source, state.champion.card.version, state.store.features_as_of
        )
        return plan, created, unknown

    def presurvey(self, state: ServingState, request) -> Answer:
        from interventions.planning import ARM_OPEN

        schedule = [(cid, request.survey_date) for cid in request.customer_ids]
        plan, created, unknown = self.plan(
            state, schedule, "api", request.top_k, dry_run=request.dry_run
        )
        items = []
        for item in plan.items:
            row = item.to_dict()
            row["intervention_id"] = (
                item.open_intervention_id if item.arm == ARM_OPEN else created.get(item.customer_id)
            )
            row["survey_suppressed"] = False
            row.pop("segments", None)
            row.pop("open_intervention_id", None)
            items.append(row)
        return 200, {
            "wave_id": plan.wave_id,
            "planned_on": plan.planned_on.isoformat(),
            "seed": plan.seed,
            "control_share": plan.control_share,
            "stored": not request.dry_run,
            "model": state.card,
            "features_as_of": state.store.features_as_of,
            "counts": plan.counts(),
            "items": items,
            "unknown_customer_ids": unknown,
        }

    def plan_segments(
        self, dropped: Sequence[dict], survey_date: date | None, source: str = "cli"
    ) -> dict[str, dict]:
        """Plan and store the segment playbook of each dropped segment that one covers;
        {segment key: {intervention_id (None: one was already open), playbook, owner}}."""
        from interventions.planning import plan_segments
        from interventions.playbooks import load_segment_playbooks

        s = self.settings.interventions
        plans = plan_segments(
            dropped,
            load_segment_playbooks(s.playbooks_path),
            self.owners().owner_of,
            datetime.now(UTC).date(),
            survey_date,
            s.lead_time_days,
        )
        created = self.store.save_segment_plans(plans, source)
        return {
            p.key: {"intervention_id": created.get(p.key), "playbook": p.playbook, "owner": p.owner}
            for p in plans
        }

    # --- at-risk ------------------------------------------------------------------------
    def at_risk_page(self, state: ServingState, query, top_k: int = 3):
        """(page frame with drivers, total) for an AtRiskQuery."""
        from interventions.at_risk import AtRiskQueryError, rank_at_risk

        s = self.settings.interventions
        columns = list(dict.fromkeys([*s.segment_columns, *(query.segments or {})]))
        frame = base_frame(
            state,
            self.settings.serving.risk_tiers,
            [c for c in columns if c in state.store.columns],
        )
        owners = {**self.owners().account_owner, **self.store.owners_by_customer()}
        previous = previous_frame(state, self.settings.serving.risk_tiers)
        if previous is None and query.newly_at_risk:
            raise AtRiskQueryError(
                "newly at risk needs an earlier materialization to compare with: run "
                "`npsrisk materialize DATA` again after new data arrives"
            )
        before = previous[0] if previous is not None else None
        page, total = rank_at_risk(
            frame,
            query,
            owners,
            self.store.statuses_by_customer(),
            dict(zip(before["customer_id"], before["risk_tier"], strict=True))
            if before is not None
            else None,
            dict(zip(before["customer_id"], before["churn_probability"], strict=True))
            if before is not None
            else None,
        )
        explained_page = explained(
            state, page["customer_id"].tolist(), self.settings.serving.risk_tiers, top_k
        )
        page["drivers"] = [
            explained_page.get(c, {}).get("drivers") or [] for c in page["customer_id"]
        ]
        page["change"] = [explained_page.get(c, {}).get("change") for c in page["customer_id"]]
        return page, total, [c for c in s.segment_columns if c in frame.columns]

    def at_risk(self, state: ServingState, request) -> Answer:
        from interventions.at_risk import AtRiskQuery, AtRiskQueryError, plain_row

        query = AtRiskQuery(
            sort_by=request.sort,
            descending=request.order == "desc",
            min_tier=request.min_tier,
            segments=request.segments,
            owner=request.owner,
            intervention_status=request.intervention_status,
            offset=request.offset,
            limit=request.limit,
            newly_at_risk=request.newly_at_risk,
        )
        try:
            page, total, seg_cols = self.at_risk_page(state, query, request.top_k)
        except AtRiskQueryError as exc:
            return _error(400, "invalid_filter", str(exc))
        items = []
        for row in page.to_dict("records"):
            row = plain_row(
                {k: v for k, v in row.items() if k not in ("drivers", "themes", "change")}
            ) | {
                "drivers": row["drivers"],
                "change": row["change"],
                "themes": list(row["themes"]),
            }
            row["segments"] = {c: row.pop(c) for c in seg_cols if c in row}
            for extra in ("p_detractor", "p_passive", "p_promoter", "p_response"):
                row.pop(extra, None)
            items.append(row)
        return 200, {
            "model": state.card,
            "features_as_of": state.store.features_as_of,
            "total": total,
            "offset": request.offset,
            "limit": request.limit,
            "items": items,
        }

    # --- forecast -------------------------------------------------------------------------
    def forecast(
        self,
        state: ServingState,
        wave_ids: Sequence[str] | None,
        segments: dict[str, str],
        survey_date: date | None = None,
    ):
        """The Forecast for a wave (ids) against the base, optionally within segments."""
        from interventions.forecast import forecast_nps

        s = self.settings.interventions
        columns = [
            c for c in dict.fromkeys([*s.segment_columns, *segments]) if c in state.store.columns
        ]
        base = base_frame(state, self.settings.serving.risk_tiers, columns)
        for column, wanted in segments.items():
            if column not in base.columns:
                raise ValueError(
                    f"cannot filter on {column!r}: segment columns are {', '.join(columns)}"
                )
            base = base[base[column].astype(str).isin({v.strip() for v in wanted.split(",")})]
        if wave_ids is None:
            if survey_date is None:
                raise ValueError(
                    "say who the wave surveys: survey_date of a stored plan, or customer_ids"
                )
            wave_ids = self.wave_customers(survey_date)
            if not wave_ids:
                raise LookupError(
                    f"no stored plan has a survey on {survey_date}: plan it with POST /presurvey "
                    "(or `npsrisk presurvey`), or send customer_ids"
                )
        wave = base[base["customer_id"].isin(set(wave_ids))]
        has_response = state.champion.bundle.response is not None
        if not has_response:
            wave = wave.drop(columns=["p_response"])
        recent = self._recent_answers(state, columns)
        for column, wanted in segments.items():
            recent = recent[recent[column].astype(str).isin({v.strip() for v in wanted.split(",")})]
        return forecast_nps(
            wave,
            base,
            recent,
            columns,
            samples=s.bootstrap_samples,
            interval=s.interval,
            seed=self.settings.training.seed,
            drop_points=s.segment_drop_points,
            theme_labels=state.champion.bundle.theme_labels,
            response_model=(
                f"training run's response model (model v{state.champion.card.version})"
                if has_response
                else "none: this model version has no response model; every "
                "invited customer is taken as equally likely to answer"
            ),
        )

    def _recent_answers(self, state: ServingState, columns: Sequence[str]) -> pd.DataFrame:
        """Each customer's last answer within the horizon: the last measured NPS's inputs."""
        import pandas as pd

        cols = state.store.columns
        if "nps_last_score" not in cols or "nps_last_age_days" not in cols:
            return pd.DataFrame({"customer_id": [], "score": [], **{c: [] for c in columns}})
        score = np.asarray(cols["nps_last_score"], dtype=float)
        age = np.asarray(cols["nps_last_age_days"], dtype=float)
        keep = ~np.isnan(score) & (age <= self.settings.training.horizon_days)
        frame = pd.DataFrame({"customer_id": cols["customer_id"][keep], "score": score[keep]})
        for c in columns:
            frame[c] = cols[c][keep]
        return frame

    def wave_customers(self, survey_date: date) -> list[str]:
        frame = self.store.assignments_frame()
        if frame.empty:
            return []
        # Compared as ISO text: a stored far-future date must not overflow pandas' timestamps.
        part = frame[frame["survey_date"].astype(str).str[:10] == survey_date.isoformat()]
        if part.empty:
            return []
        latest = part.sort_values("id")["wave_id"].iloc[-1]
        return part[part["wave_id"] == latest]["customer_id"].drop_duplicates().tolist()

    def nps_forecast(self, state: ServingState, request) -> Answer:
        try:
            result = self.forecast(
                state, request.customer_ids, request.segments, request.survey_date
            )
        except ValueError as exc:
            return _error(400, "invalid_forecast_request", str(exc))
        except LookupError as exc:
            return _error(404, "wave_not_found", str(exc))
        return 200, {
            "model": state.card,
            "features_as_of": state.store.features_as_of,
            "survey_date": request.survey_date.isoformat() if request.survey_date else None,
            **result.to_dict(),
        }

    # --- the closed loop ----------------------------------------------------------------
    def interventions(self, request) -> Answer:
        rows, total = self.store.list(
            request.status,
            request.owner,
            request.customer_id,
            request.playbook,
            request.since,
            request.limit,
            request.offset,
        )
        return 200, {
            "total": total,
            "offset": request.offset,
            "limit": request.limit,
            "interventions": rows,
        }

    def change_status(self, request) -> Answer:
        from interventions.states import TransitionError
        from interventions.store import NotFoundError

        if not request.id:
            return _error(
                400, "missing_id", "POST /interventions/{id}/status names the intervention"
            )
        try:
            row = self.store.change_status(
                request.id, request.status, request.actor, request.note, request.snooze_until
            )
        except NotFoundError as exc:
            return _error(404, "intervention_not_found", str(exc))
        except TransitionError as exc:
            # The envelope is {error, detail}; the allowed statuses are named in the detail.
            return _error(409, "illegal_transition", str(exc))
        except ValueError as exc:
            return _error(400, "invalid_status_change", str(exc))
        return 200, row

    def reassign(self, request) -> Answer:
        try:
            moved = self.store.reassign(
                request.to_owner,
                request.actor,
                request.intervention_ids,
                request.from_owner,
                request.note,
            )
        except ValueError as exc:
            return _error(400, "invalid_reassignment", str(exc))
        return 200, {"moved": moved}
