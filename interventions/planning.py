"""Pre-survey planning: one plan row per scheduled customer, control group, due dates, owners.

``plan_wave`` is pure: predictions, customer context, playbooks, open interventions and a seed
in, a ``WavePlan`` out. It never removes, delays or filters a scheduled customer: every input
row comes back, in order, with what (if anything) to do before the survey.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from interventions.playbooks import (
    Playbook,
    choose_playbook,
    choose_segment_playbook,
    situation_of,
)

ARM_TREATMENT = "treatment"
ARM_CONTROL = "control"
ARM_NONE = "none"  # no playbook applies: nothing to measure
ARM_OPEN = "open_intervention"  # already being worked on: not planned twice
ARM_UNKNOWN = "unknown"  # no features for this id: listed, never dropped


@dataclass(frozen=True)
class CustomerContext:
    """What planning needs besides the prediction. ``owner`` is personal data: routing only."""

    mrr: float | None = None
    themes: tuple[str, ...] = ()
    segments: Mapping[str, Any] = field(default_factory=dict)
    owner: str | None = None


@dataclass(frozen=True)
class OpenIntervention:
    id: str
    playbook: str
    status: str


@dataclass
class PlanItem:
    """One scheduled customer: the survey always goes ahead; this says what to do before it."""

    customer_id: str
    survey_date: date
    known: bool
    prediction: dict[str, Any] | None
    arm: str
    intervene: bool
    playbook: str | None = None
    action: str | None = None
    priority: str | None = None
    owner_role: str | None = None
    owner: str | None = None
    due_date: date | None = None
    too_soon: bool = False
    why: list[str] = field(default_factory=list)
    drivers: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    revenue_at_risk: float | None = None
    open_intervention_id: str | None = None
    segments: dict[str, Any] = field(default_factory=dict)

    @property
    def survey_suppressed(self) -> bool:
        return False  # a plan never suppresses or delays a survey; kept explicit for readers

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["survey_date"] = self.survey_date.isoformat()
        out["due_date"] = self.due_date.isoformat() if self.due_date else None
        return out


@dataclass
class WavePlan:
    wave_id: str
    planned_on: date
    seed: int
    control_share: float
    items: list[PlanItem]

    @property
    def survey_dates(self) -> list[date]:
        return sorted({i.survey_date for i in self.items})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.arm] = out.get(item.arm, 0) + 1
        out["too_soon"] = sum(i.too_soon for i in self.items if i.intervene)
        return out


def wave_id_of(survey_dates: Sequence[date]) -> str:
    """A new wave's id: its first survey date and a random suffix (planning the same
    schedule again is a new wave; the seed, not the id, reproduces the assignment)."""
    first = min(survey_dates) if survey_dates else date.today()
    return f"wave-{first:%Y%m%d}-{uuid.uuid4().hex[:10]}"


def assign_control(eligible: Mapping[str, str | None], share: float, seed: int) -> dict[str, str]:
    """Treatment or control per eligible customer, at random within each risk tier.

    Each tier sends ``share`` of its customers to control: the whole part by count, the
    fraction by one random draw, so the expected share is exact in every tier. Customers are
    sorted by id first, so the result depends on who is eligible and the seed, not on order.
    """
    rng = np.random.default_rng(seed)
    arms: dict[str, str] = {}
    by_tier: dict[str, list[str]] = {}
    for cid, tier in eligible.items():
        by_tier.setdefault(str(tier), []).append(cid)
    for tier in sorted(by_tier):
        ids = sorted(by_tier[tier])
        expected = share * len(ids)
        n_control = math.floor(expected) + int(rng.random() < expected - math.floor(expected))
        order = rng.permutation(len(ids))
        control = {ids[i] for i in order[:n_control]}
        for cid in ids:
            arms[cid] = ARM_CONTROL if cid in control else ARM_TREATMENT
    return arms


def due_date_for(
    planned_on: date, survey_date: date, due_days: int, lead_time_days: int
) -> tuple[date, bool]:
    """Due ``due_days`` after planning but at least ``lead_time_days`` before the survey.

    When even today leaves less lead time than that, the follow-up is due today and flagged
    ``too_soon``: the survey still goes out as scheduled.
    """
    latest = survey_date - timedelta(days=lead_time_days)
    if latest < planned_on:
        return planned_on, True
    return min(planned_on + timedelta(days=due_days), latest), False


def _why(
    prediction: Mapping[str, Any],
    drivers: Sequence[str],
    themes: Sequence[str],
    theme_labels: Mapping[str, str],
) -> list[str]:
    described = {d["feature"]: d["description"] for d in prediction.get("drivers") or []}
    out = [described.get(f, f) for f in drivers]
    out += [f"recent negative messages about {theme_labels.get(t, t)}" for t in themes]
    if not out:
        probs = prediction.get("category_probabilities") or {}
        if prediction.get("risk_tier"):
            out.append(f"{prediction['risk_tier']} risk tier")
        if probs.get("detractor") is not None:
            out.append(f"{probs['detractor']:.0%} likely to answer as a detractor")
    return out


def plan_wave(
    schedule: Sequence[tuple[str, date]],
    predictions: Mapping[str, Mapping[str, Any]],
    contexts: Mapping[str, CustomerContext],
    playbooks: Sequence[Playbook],
    open_interventions: Mapping[str, OpenIntervention],
    owner_of: Any,
    *,
    planned_on: date,
    control_share: float,
    seed: int,
    lead_time_days: int,
    theme_labels: Mapping[str, str] | None = None,
    held_out: frozenset[tuple[str, date]] = frozenset(),
) -> WavePlan:
    """The plan for one survey wave. ``owner_of(customer_id, role, context) -> str | None``.

    ``held_out``: (customer, survey date) pairs an earlier plan of the same wave put in
    control; they stay in control, so planning a wave again never dissolves its control group.
    """
    labels = theme_labels or {}
    items: list[PlanItem] = []
    chosen: dict[str, Any] = {}
    eligible: dict[str, str | None] = {}
    for cid, survey_date in schedule:
        prediction = predictions.get(cid)
        ctx = contexts.get(cid, CustomerContext())
        if prediction is None:
            items.append(
                PlanItem(
                    cid,
                    survey_date,
                    False,
                    None,
                    ARM_UNKNOWN,
                    False,
                    why=["no materialized features for this customer"],
                )
            )
            continue
        situation = situation_of(prediction, ctx.mrr, ctx.themes)
        item = PlanItem(
            cid,
            survey_date,
            True,
            dict(prediction),
            ARM_NONE,
            False,
            revenue_at_risk=situation.revenue_at_risk,
            segments=dict(ctx.segments),
        )
        items.append(item)
        if cid in open_interventions:
            existing = open_interventions[cid]
            item.arm, item.open_intervention_id = ARM_OPEN, existing.id
            item.playbook = existing.playbook
            item.why = [
                f"intervention {existing.id} ({existing.playbook}) is already "
                f"{existing.status}: not planned twice"
            ]
            continue
        choice = choose_playbook(situation, playbooks)
        if choice is None:
            continue
        if cid in chosen:  # the same id twice in a schedule: one plan, both rows listed
            continue
        chosen[cid] = choice
        if (cid, survey_date) not in held_out:
            eligible[cid] = prediction.get("risk_tier")
    arms = assign_control(eligible, control_share, seed)
    arms.update({cid: ARM_CONTROL for cid in chosen if cid not in eligible})
    first_row: set[str] = set()
    for item in items:
        choice = chosen.get(item.customer_id)
        if choice is None or item.arm == ARM_OPEN:
            continue
        pb = choice.playbook
        ctx = contexts.get(item.customer_id, CustomerContext())
        item.arm = arms[item.customer_id]
        item.playbook, item.action, item.priority = pb.id, pb.action, pb.priority
        item.owner_role = pb.owner_role
        item.drivers, item.themes = list(choice.drivers), list(choice.themes)
        item.why = _why(item.prediction or {}, choice.drivers, choice.themes, labels)
        item.due_date, item.too_soon = due_date_for(
            planned_on, item.survey_date, pb.due_days, lead_time_days
        )
        # The control group gets no outreach but keeps its would-be playbook for the analysis.
        item.intervene = item.arm == ARM_TREATMENT and item.customer_id not in first_row
        if item.intervene:
            item.owner = owner_of(item.customer_id, pb.owner_role, ctx)
        first_row.add(item.customer_id)
    survey_dates = [d for _, d in schedule]
    wave = wave_id_of(survey_dates)
    return WavePlan(wave, planned_on, seed, control_share, items)


# --- segment-level playbooks (planned from a segment.dropped forecast) ----------------------

SEGMENT_PREFIX = "segment:"


def segment_key(column: str, value: Any) -> str:
    """The id a segment's intervention is stored under in place of a customer id, so one open
    intervention per segment is enforced like one per customer ('segment:plan_tier=pro')."""
    return f"{SEGMENT_PREFIX}{column}={value}"


@dataclass(frozen=True)
class SegmentPlan:
    key: str
    column: str
    value: Any
    playbook: str
    action: str
    priority: str
    owner_role: str
    owner: str | None
    due_date: date
    survey_date: date | None
    too_soon: bool
    why: list[str]


def plan_segments(
    dropped: Sequence[Mapping[str, Any]],
    playbooks: Sequence[Any],
    owner_of: Callable[[str, str | None, Any], str | None],
    planned_on: date,
    survey_date: date | None,
    lead_time_days: int,
) -> list[SegmentPlan]:
    """A plan per dropped segment that a segment playbook covers (pure; the store saves it)."""
    from types import SimpleNamespace

    plans = []
    for seg in dropped:
        playbook = choose_segment_playbook(seg, playbooks)
        if playbook is None:
            continue
        key = segment_key(seg["column"], seg["value"])
        if survey_date is not None:
            due, too_soon = due_date_for(planned_on, survey_date, playbook.due_days, lead_time_days)
        else:
            due, too_soon = planned_on + timedelta(days=playbook.due_days), False
        context = SimpleNamespace(segments={seg["column"]: seg["value"]})
        plans.append(
            SegmentPlan(
                key=key,
                column=str(seg["column"]),
                value=seg["value"],
                playbook=playbook.id,
                action=playbook.action,
                priority=playbook.priority,
                owner_role=playbook.owner_role,
                owner=playbook.owner or owner_of(key, playbook.owner_role, context),
                due_date=due,
                survey_date=survey_date,
                too_soon=too_soon,
                why=[
                    f"{seg['column']}={seg['value']}: forecast NPS {seg['forecast_nps']} vs "
                    f"{seg['last_measured_nps']} last measured (down {seg['drop']} points)"
                ],
            )
        )
    return plans
