"""Playbooks: the YAML schema, loading with errors that name the key, and choosing one.

A playbook maps a *situation* (the prediction, its top drivers, the themes of the customer's
recent negative text) to an action, an owner role, a priority and a due time. Choosing is a
pure function of the situation and the playbooks, so it is tested case by case.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

TIERS = ("low", "medium", "high")
PRIORITIES = ("urgent", "high", "normal", "low")
DEFAULT_PLAYBOOKS = "playbooks.yaml"
_THEME_FEATURE = re.compile(r"^text_negative_(?P<theme>.+)_(?P<days>\d+)d$")

Tier = Literal["low", "medium", "high"]
Category = Literal["detractor", "passive", "promoter"]


class PlaybookError(ValueError):
    """A playbook file that does not follow the schema; the message names the key to fix."""


class Conditions(BaseModel):
    """When a playbook applies. Every condition given must hold; evidence is drivers OR themes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_tier: Tier | None = Field(None, description="Risk tier at least this.")
    categories: list[Category] | None = Field(
        None, description="The predicted NPS category is one of these."
    )
    min_detractor_probability: float | None = Field(None, ge=0, le=1)
    min_churn_probability: float | None = Field(None, ge=0, le=1)
    min_revenue_at_risk: float | None = Field(None, ge=0, description="MRR x churn probability.")
    max_revenue_at_risk: float | None = Field(None, ge=0)
    drivers: list[str] = Field(
        default_factory=list,
        description="Feature-name patterns (fnmatch); a top driver that worsens the outlook and "
        "matches one is evidence.",
    )
    themes: list[str] = Field(
        default_factory=list, description="Recent negative text themes that are evidence."
    )

    @field_validator("drivers", "themes")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not str(v).strip() for v in value):
            raise ValueError("patterns and themes must be non-empty strings")
        return value


class Playbook(BaseModel):
    """One action with its owner role, priority, due time and when it applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=64)
    action: str = Field(min_length=1)
    owner_role: str = Field(min_length=1)
    priority: Literal["urgent", "high", "normal", "low"] = "normal"
    due_days: int = Field(7, ge=0, le=365, description="Due this many days after planning.")
    when: list[Conditions] = Field(
        description="One condition set or a list of them; any one set suffices."
    )

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @property
    def rank(self) -> int:
        return PRIORITIES.index(self.priority)


class SegmentConditions(BaseModel):
    """When a segment playbook applies to a ``segment.dropped`` forecast; all given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] | None = Field(
        None, description="Segment columns it covers (e.g. [plan_tier]); default: every one."
    )
    values: list[str] | None = Field(
        None, description="Segment values it covers (e.g. [enterprise]); default: every one."
    )
    min_drop_points: float | None = Field(
        None, gt=0, description="The forecast NPS is at least this far below the last measured."
    )


class SegmentPlaybook(BaseModel):
    """A segment-level action planned when a segment's forecast NPS drops before a wave."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=64)
    action: str = Field(min_length=1)
    owner_role: str = Field(min_length=1)
    owner: str | None = Field(
        None, min_length=1, description="The person; default: the owners file's segment owner."
    )
    priority: Literal["urgent", "high", "normal", "low"] = "normal"
    due_days: int = Field(7, ge=0, le=365)
    when: SegmentConditions = Field(default_factory=SegmentConditions)

    @property
    def rank(self) -> int:
        return PRIORITIES.index(self.priority)


class PlaybookFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    playbooks: list[Playbook] = Field(min_length=1)
    segment_playbooks: list[SegmentPlaybook] = Field(
        default_factory=list,
        description="Planned by a segment.dropped forecast alert (`npsrisk forecast "
        "--plan-segments`); none by default.",
    )

    @field_validator("playbooks", "segment_playbooks")
    @classmethod
    def _unique_ids(cls, value: list[Playbook]) -> list[Playbook]:
        seen: set[str] = set()
        for playbook in value:
            if playbook.id in seen:
                raise ValueError(f"playbook id {playbook.id!r} is used twice")
            seen.add(playbook.id)
        return value


def _key_path(loc: Sequence[Any], document: Any) -> str:
    """'playbooks[2] (billing_review).when[0].min_tier' from a pydantic error location."""
    parts: list[str] = []
    node = document
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and "id" in node and len(parts) == 1:
                parts[-1] += f" ({node['id']})"
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def parse_playbook_file(document: Any, source: str = "playbooks") -> PlaybookFile:
    """Validate a parsed YAML document; PlaybookError names every offending key."""
    try:
        return PlaybookFile.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_key_path(err['loc'], document)}: {err['msg']}" for err in exc.errors()
        )
        raise PlaybookError(f"{source}: {problems}") from None


def parse_playbooks(document: Any, source: str = "playbooks") -> list[Playbook]:
    """The customer playbooks of a parsed YAML document (see parse_playbook_file)."""
    return list(parse_playbook_file(document, source).playbooks)


def load_playbooks(path: Path | None = None) -> list[Playbook]:
    """The playbooks at ``path``, or the shipped defaults."""
    return list(load_playbook_file(path).playbooks)


def load_segment_playbooks(path: Path | None = None) -> list[SegmentPlaybook]:
    """The segment playbooks of the file at ``path`` (or of the shipped defaults)."""
    return list(load_playbook_file(path).segment_playbooks)


def choose_segment_playbook(
    dropped: Mapping[str, Any], playbooks: Sequence[SegmentPlaybook]
) -> SegmentPlaybook | None:
    """The segment playbook for one ``segment.dropped`` forecast (column, value, drop): the
    most urgent whose conditions hold, the file's order breaking ties; None when none does."""
    best = None
    for order, playbook in enumerate(playbooks):
        when = playbook.when
        if when.columns is not None and str(dropped["column"]) not in when.columns:
            continue
        if when.values is not None and str(dropped["value"]) not in when.values:
            continue
        if when.min_drop_points is not None and not (
            dropped.get("drop") is not None and float(dropped["drop"]) >= when.min_drop_points
        ):
            continue
        if best is None or (playbook.rank, order) < best[0]:
            best = ((playbook.rank, order), playbook)
    return None if best is None else best[1]


def load_playbook_file(path: Path | None = None) -> PlaybookFile:
    """The playbook file at ``path``, or the shipped defaults, validated."""
    if path is None:
        text = resources.files("interventions").joinpath(DEFAULT_PLAYBOOKS).read_text()
        source = f"interventions/{DEFAULT_PLAYBOOKS}"
    else:
        path = Path(path).expanduser()
        if not path.is_file():
            raise PlaybookError(
                f"playbook file {path} does not exist: fix interventions.playbooks_path "
                "(or unset it to use the shipped playbooks)"
            )
        text, source = path.read_text(), str(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{source}: not valid YAML: {exc}") from None
    return parse_playbook_file(document, source)


@dataclass(frozen=True)
class Situation:
    """What a playbook is chosen from: one customer's prediction, drivers and recent themes."""

    customer_id: str
    risk_tier: str | None
    nps_category: str | None
    detractor_probability: float | None
    churn_probability: float | None
    mrr: float | None
    adverse_drivers: tuple[str, ...] = ()  # features worsening the outlook, largest first
    themes: tuple[str, ...] = ()  # negative text themes of the recent window

    @property
    def revenue_at_risk(self) -> float | None:
        return revenue_at_risk(self.mrr, self.churn_probability)


def revenue_at_risk(mrr: float | None, churn_probability: float | None) -> float | None:
    """MRR x churn probability (None when either is unknown)."""
    if mrr is None or churn_probability is None:
        return None
    if isinstance(mrr, float) and math.isnan(mrr):
        return None
    return float(mrr) * float(churn_probability)


def adverse_drivers(drivers: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Features whose contribution worsens the outlook: raises churn log-odds, lowers NPS."""
    out: list[str] = []
    for d in drivers:
        worse = d["contribution"] > 0 if d["target"] == "churn" else d["contribution"] < 0
        if worse and d["feature"] not in out:
            out.append(d["feature"])
    return tuple(out)


def recent_themes(value_of: Mapping[str, Any], themes: Iterable[str]) -> tuple[str, ...]:
    """Themes with at least one negative message in the shortest window the plan builds."""
    counts: dict[str, tuple[int, float]] = {}
    known = set(themes)
    for name, value in value_of.items():
        m = _THEME_FEATURE.match(name)
        if m is None or m["theme"] not in known or value is None:
            continue
        days = int(m["days"])
        if m["theme"] not in counts or days < counts[m["theme"]][0]:
            counts[m["theme"]] = (days, float(value))
    return tuple(t for t in themes if t in counts and counts[t][1] > 0)


def situation_of(
    prediction: Mapping[str, Any], mrr: float | None, themes: Sequence[str] = ()
) -> Situation:
    """A Situation from a prediction object of the API contract."""
    probs = prediction.get("category_probabilities") or {}
    return Situation(
        customer_id=str(prediction["customer_id"]),
        risk_tier=prediction.get("risk_tier"),
        nps_category=prediction.get("nps_category"),
        detractor_probability=probs.get("detractor"),
        churn_probability=prediction.get("churn_probability"),
        mrr=None if mrr is None or (isinstance(mrr, float) and math.isnan(mrr)) else float(mrr),
        adverse_drivers=adverse_drivers(prediction.get("drivers") or []),
        themes=tuple(themes),
    )


@dataclass(frozen=True)
class Choice:
    """The chosen playbook and the evidence that selected it."""

    playbook: Playbook
    drivers: tuple[str, ...] = field(default=())
    themes: tuple[str, ...] = field(default=())


def _at_least(value: float | None, bound: float | None) -> bool:
    return bound is None or (value is not None and value >= bound)


def _evidence(cond: Conditions, s: Situation) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    if not cond.drivers and not cond.themes:
        return True, (), ()
    drivers = tuple(
        f for f in s.adverse_drivers if any(fnmatch.fnmatchcase(f, p) for p in cond.drivers)
    )
    themes = tuple(t for t in s.themes if t in cond.themes)
    return bool(drivers or themes), drivers, themes


def conditions_hold(
    cond: Conditions, s: Situation
) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """Whether one condition set holds, and the drivers and themes that made it hold."""
    if cond.min_tier is not None and (
        s.risk_tier not in TIERS or TIERS.index(s.risk_tier) < TIERS.index(cond.min_tier)
    ):
        return False, (), ()
    if cond.categories is not None and s.nps_category not in cond.categories:
        return False, (), ()
    rar = s.revenue_at_risk
    if not (
        _at_least(s.detractor_probability, cond.min_detractor_probability)
        and _at_least(s.churn_probability, cond.min_churn_probability)
        and _at_least(rar, cond.min_revenue_at_risk)
        and (
            cond.max_revenue_at_risk is None
            or (rar is not None and rar <= cond.max_revenue_at_risk)
        )
    ):
        return False, (), ()
    return _evidence(cond, s)


def choose_playbook(situation: Situation, playbooks: Sequence[Playbook]) -> Choice | None:
    """The highest-priority playbook whose conditions hold (file order breaks ties), or None."""
    best: tuple[int, int, Choice] | None = None
    for order, playbook in enumerate(playbooks):
        for cond in playbook.when:
            holds, drivers, themes = conditions_hold(cond, situation)
            if holds:
                key = (playbook.rank, order)
                if best is None or key < best[:2]:
                    best = (*key, Choice(playbook, drivers, themes))
                break
    return None if best is None else best[2]


def tier_at_least(tier: str | None, minimum: str | None) -> bool:
    """Whether ``tier`` is ``minimum`` or riskier (no minimum: always)."""
    if minimum is None:
        return True
    return tier in TIERS and TIERS.index(tier) >= TIERS.index(minimum)
