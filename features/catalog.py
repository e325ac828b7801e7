"""The feature catalogue: what each feature is, what values it may take, and its value in words.

Features are declared once per *definition* (patterns such as ``usage_<metric>_trend``), so
the catalogue works for whatever metric names or attributes a company's data has. Each
declaration (``_feature`` in ``DEFINITIONS``) gives the feature's type, unit, intrinsic
bounds (a count is never negative, a share lies in [0, 1]), risk direction, a plain
description of what it measures, and how to say a value in words. Adding a feature is one
declaration here (next to its definition in features/definitions.py).

At training, ``learn_catalog`` turns the declarations into a ``FeatureCatalog`` for one
model: the ranges and categories seen in the training frame, widened (see
``plausible_range``), inside the intrinsic bounds. The catalogue travels inside the model
bundle and is what checks ``/predict_features`` records, what the OpenAPI document publishes
for them, what ``GET /model`` lists, and what writes the drivers' descriptions.

Unknown categories are rejected, not mapped to "other": a misspelt ``plan_tier`` silently
scored as a rare plan is a wrong prediction the caller never hears about. The error lists
the known categories.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from features.plan import text_lookback, usage_span

if TYPE_CHECKING:  # build imports nothing from here at run time either way
    import pandas as pd

    from features.build import FeaturePlan

Kind = Literal["number", "boolean", "category"]
Describe = Callable[[re.Match[str], Any, Mapping[str, Any]], str]

# Words that are acronyms in a column or metric name ("api_calls" -> "API calls").
_ACRONYMS = {"api", "arr", "mrr", "nps", "csat", "sso", "id", "crm", "sla", "ui"}


# --- words ------------------------------------------------------------------------------


def _n(value: float) -> str:
    """A count or amount, without noise digits."""
    value = float(value)
    if not math.isfinite(value):
        return "an unknown amount"
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def say_amount(value: float) -> str:
    """A count or amount in words, as the descriptions write it ('4', '0.2', '3,418')."""
    return _n(value)


def _rate(value: float) -> str:
    """A small rate with two significant digits (0.0042, not 0.0)."""
    value = float(value)
    return f"{value:.2g}" if 0 < abs(value) < 0.1 else _n(value)


def _plural(count: float, word: str) -> str:
    return f"{_n(count)} {word}" + ("" if count == 1 else "s")


def label(slug: str) -> str:
    """A column or metric name in words: 'api_calls' -> 'API calls'."""
    return " ".join(w.upper() if w in _ACRONYMS else w for w in str(slug).split("_") if w)


def _singular(words: str) -> str:
    """The metric as one event: 'logins' -> 'login', 'reports created' -> 'report created'."""
    parts = words.split(" ")
    for i, part in enumerate(parts):
        if len(part) > 3 and part.endswith("s") and not part.endswith("ss"):
            parts[i] = part[:-1]
            break
    return " ".join(parts)


def _days_ago(days: float) -> str:
    days = round(days)
    if days <= 0:
        return "today"
    return "yesterday" if days == 1 else f"{days:,} days ago"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "t", "yes", "y", "1")
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


# --- how values read, per definition -------------------------------------------------------


def _tenure(m, v, ctx) -> str:
    if v < 60:
        return f"customer for {_plural(round(v), 'day')}"
    months = round(v / 30.44)
    if months < 24:
        return f"customer for {_plural(months, 'month')}"
    return f"customer for {v / 365.25:.1f} years"


def _usage_level(m, v, ctx) -> str:
    return f"{label(m['metric'])} averaged {_n(v)} a day over the last {ctx['days']} days"


def _usage_rate(m, v, ctx) -> str:
    # Per seat reads as is (0.042 active users per seat a day); per unit of MRR the numbers are
    # tiny (currency units), so say it per 1,000 of MRR.
    if m["unit"] == "seat":
        per, v = "per seat", float(v)
    else:
        per, v = f"per 1,000 of {label(m['unit'])}", float(v) * 1000
    return f"{label(m['metric'])} averaged {_rate(v)} a day {per} over the last {ctx['days']} days"


def _usage_vs_history(m, v, ctx) -> str:
    weeks = ctx["history_recent_weeks"]
    return (
        f"{label(m['metric'])} in the last {_plural(weeks, 'week')} at {float(v) * 100:.0f}% "
        "of the customer's usual level"
    )


def _usage_history_z(m, v, ctx) -> str:
    v = float(v)
    weeks = ctx["history_recent_weeks"]
    side = "below" if v < 0 else "above"
    return (
        f"{label(m['metric'])} in the last {_plural(weeks, 'week')} {abs(v):.1f} standard "
        f"deviations {side} the customer's usual weeks"
    )


def _per_seat(word: str, rest: str) -> Describe:
    def describe(m, v, ctx) -> str:
        return f"{_rate(v)} {word} per seat{rest.format_map({**ctx, **m.groupdict()})}"

    return describe


def _usage_trend(m, v, ctx) -> str:
    direction = "down" if v < 0 else "up"
    return f"{label(m['metric'])} {direction} {abs(v) * 100:.0f}% versus the prior period"


def _usage_drop(m, v, ctx) -> str:
    if _truthy(v) and float(v) >= 0.5:
        return f"{label(m['metric'])} dropped sharply versus the prior period"
    return f"no sharp drop in {label(m['metric'])}"


def _usage_idle(m, v, ctx) -> str:
    return f"last {_singular(label(m['metric']))} {_days_ago(v)}"


def _contract(m, v, ctx) -> str:
    what = label(m["what"])
    article = "an" if what[:1].lower() in "aeiou" else "a"
    return f"{'on' if _truthy(v) else 'not on'} {article} {what} contract"


def _flag(m, v, ctx) -> str:
    """A yes/no attribute: 'is_partner' -> 'partner' / 'not partner', else 'name: yes'."""
    name = m.string
    for prefix, yes, no in (("is_", "", "not "), ("has_", "has ", "no ")):
        if name.startswith(prefix):
            return f"{yes if _truthy(v) else no}{label(name[len(prefix) :])}"
    return f"{label(name)}: {'yes' if _truthy(v) else 'no'}"


def _category(m, v, ctx) -> str:
    text = str(v)
    # Region-like codes read as codes: "na" -> "NA", "emea" -> "EMEA".
    if m.string == "region" and text.isalpha() and len(text) <= 5:
        text = text.upper()
    return f"{label(m.string)}: {text}"


def _number(m, v, ctx) -> str:
    return f"{label(m.string)}: {_n(v)}"


@dataclass(frozen=True)
class _Definition:
    """One declared feature definition (see the module docstring)."""

    pattern: re.Pattern[str]
    describe: Describe
    about: str  # what it measures; {groups} of the pattern and the context are filled in
    missing: str  # what a missing value means, naming the metric
    kind: Kind | None  # None: decided by the data (static attributes)
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    risk: int = 0  # +1: more of it can only raise churn risk; -1: only lower it; 0: either
    learn_range: bool = True  # False: the intrinsic bounds are the range (scores, shares)
    maximum_from: str | None = None  # a context number that caps it (e.g. the look-back)
    # a usage window: from plan version 3 on, its {days} span whole weeks (features.plan)
    usage_window: bool = False


def _feature(
    pattern: str,
    describe: Describe,
    about: str,
    missing: str,
    kind: Kind | None = "number",
    **options: Any,
) -> _Definition:
    return _Definition(re.compile(pattern + r"$"), describe, about, missing, kind, **options)


def _say(template: str) -> Describe:
    """A description from a template: {v} the value, {n} as an amount, {groups} filled in."""

    def describe(m, v, ctx) -> str:
        groups = {k: label(g) for k, g in m.groupdict().items()}
        amount = _n(v) if isinstance(v, int | float) else v
        return template.format_map({**ctx, **groups, "v": v, "n": amount})

    return describe


def _count(word: str, rest: str) -> Describe:
    def describe(m, v, ctx) -> str:
        return f"{_plural(v, word)}{rest.format_map({**ctx, **m.groupdict()})}"

    return describe


COUNT = {"kind": "number", "minimum": 0.0, "integer": True}
DAYS = {"unit": "days", "minimum": 0.0}
SCORE = {"unit": "points (0-10)", "minimum": 0.0, "maximum": 10.0, "learn_range": False}
SHARE = {"unit": "share (0-1)", "minimum": 0.0, "maximum": 1.0, "learn_range": False}

# Most specific first: the first pattern that matches a name wins.
DEFINITIONS: tuple[_Definition, ...] = (
    # --- static attributes of the customer (the contract's, then any column by kind) ----
    _feature(
        r"tenure_days",
        _tenure,
        "Days since the customer signed up.",
        "signup date unknown",
        **DAYS,
    ),
    _feature(
        r"seats",
        _count("seat", ""),
        "Seats on the customer's plan.",
        "number of seats unknown",
        unit="seats",
        **COUNT,
    ),
    _feature(
        r"mrr",
        _say("MRR of {n}"),
        "Monthly recurring revenue.",
        "MRR unknown",
        unit="currency per month",
        minimum=0.0,
    ),
    _feature(
        r"arr",
        _say("ARR of {n}"),
        "Annual recurring revenue.",
        "ARR unknown",
        unit="currency per year",
        minimum=0.0,
    ),
    _feature(
        r"plan_tier",
        _say("on the {v} plan"),
        "The customer's plan.",
        "plan unknown",
        kind="category",
    ),
    _feature(
        r"(?P<what>.+)_contract",
        _contract,
        "Whether the customer is on {what} contract.",
        "{what} contract unknown",
        kind="boolean",
    ),
    # --- usage, per metric -------------------------------------------------------------
    _feature(
        r"usage_(?P<metric>.+)_(?P<days>\d+)d_per_(?P<unit>seat)",
        _usage_rate,
        "{metric} per day per seat over the last {days} days (license utilisation).",
        "{metric} per seat unknown (number of seats unknown or zero)",
        unit="per seat per day",
        minimum=0.0,
        risk=-1,
        usage_window=True,
    ),
    _feature(
        r"usage_(?P<metric>.+)_(?P<days>\d+)d_per_(?P<unit>[a-z]+)",
        _usage_rate,
        "{metric} per day per unit of {unit} over the last {days} days (use for the money).",
        "{metric} per unit of {unit} unknown ({unit} unknown or zero)",
        unit="per day per unit of account size",
        minimum=0.0,
        usage_window=True,
    ),
    _feature(
        r"usage_(?P<metric>.+)_vs_history",
        _usage_vs_history,
        "{metric} in the last {history_recent_weeks} whole weeks divided by the customer's own "
        "weekly level before that (up to {history_weeks} weeks back; 1: as usual).",
        "fewer than {min_history_weeks} earlier weeks of {metric}, or none used: no usual "
        "level to compare with",
        unit="ratio to the customer's usual level",
        minimum=0.0,
        risk=-1,
    ),
    _feature(
        r"usage_(?P<metric>.+)_history_z",
        _usage_history_z,
        "How far {metric} in the last {history_recent_weeks} whole weeks lies from the "
        "customer's own earlier weeks, in units of their week-to-week variability (z-score).",
        "fewer than {min_history_weeks} earlier weeks of {metric}, or no variation in them",
        unit="standard deviations",
        risk=-1,
    ),
    _feature(
        r"usage_(?P<metric>.+)_(?P<days>\d+)d",
        _usage_level,
        "{metric} per day, averaged over the last {days} days.",
        "no {metric} recorded in the last {days} days",
        unit="per day",
        minimum=0.0,
        risk=-1,
        usage_window=True,
    ),
    _feature(
        r"usage_(?P<metric>.+)_trend",
        _usage_trend,
        "Change of {metric} in the last {usage_recent_days} days versus the "
        "{usage_prior_days} before (-0.5: half as much).",
        "no {metric} in the prior {usage_prior_days} days to compare with",
        unit="relative change",
        minimum=-1.0,
        risk=-1,
    ),
    _feature(
        r"usage_(?P<metric>.+)_drop",
        _usage_drop,
        "Whether {metric} fell by at least {drop_share} versus the prior period.",
        "no {metric} in the prior period: no drop to see",
        kind="boolean",
        risk=+1,
    ),
    _feature(
        r"usage_(?P<metric>.+)_days_since_active",
        _usage_idle,
        "Days since the last day with any {metric} (within {usage_lookback} days).",
        "no {metric} recorded in the last {usage_lookback} days",
        maximum_from="usage_lookback",
        risk=+1,
        **DAYS,
    ),
    # --- tickets -----------------------------------------------------------------------
    _feature(
        r"tickets_open",
        _count("open ticket", " right now"),
        "Support tickets open at the as-of date.",
        "open tickets unknown (no ticket data)",
        risk=+1,
        unit="tickets",
        **COUNT,
    ),
    _feature(
        r"tickets_high_priority_open",
        _count("open high or urgent ticket", " right now"),
        "High or urgent support tickets open at the as-of date.",
        "open high or urgent tickets unknown (no ticket data)",
        risk=+1,
        unit="tickets",
        **COUNT,
    ),
    _feature(
        r"tickets_high_priority_(?P<days>\d+)d",
        _count("high or urgent ticket", " in the last {days} days"),
        "High or urgent support tickets opened in the last {days} days.",
        "high or urgent tickets unknown (no ticket data)",
        unit="tickets",
        **COUNT,
    ),
    _feature(
        r"tickets_resolution_hours_(?P<days>\d+)d",
        _say("tickets took {n} hours to resolve on average (last {days} days)"),
        "Mean hours to resolve the tickets opened in the last {days} days.",
        "no tickets resolved in the last {days} days",
        unit="hours",
        minimum=0.0,
    ),
    _feature(
        r"tickets_reopened_(?P<days>\d+)d",
        _count("ticket reopen", " in the last {days} days"),
        "Times tickets opened in the last {days} days were reopened.",
        "ticket reopens unknown (no ticket data)",
        unit="reopens",
        **COUNT,
    ),
    _feature(
        r"tickets_csat_(?P<days>\d+)d",
        lambda m, v, ctx: f"support CSAT averaged {float(v):.1f}/5 over the last {m['days']} days",
        "Mean support satisfaction rating (1-5) over the last {days} days.",
        "no support CSAT ratings in the last {days} days",
        unit="rating (1-5)",
        minimum=1.0,
        maximum=5.0,
        learn_range=False,
    ),
    _feature(
        r"tickets_csat_last",
        _say("last support CSAT rating was {n}/5"),
        "The latest support satisfaction rating (1-5).",
        "never rated support",
        unit="rating (1-5)",
        minimum=1.0,
        maximum=5.0,
        learn_range=False,
    ),
    _feature(
        r"tickets_days_since_last",
        lambda m, v, ctx: f"last ticket {_days_ago(v)}",
        "Days since the customer's latest support ticket.",
        "no support tickets yet",
        **DAYS,
    ),
    _feature(
        r"tickets_(?P<days>\d+)d_per_seat",
        _per_seat("tickets", " in the last {days} days"),
        "Support tickets opened in the last {days} days per seat.",
        "tickets per seat unknown (number of seats unknown or zero)",
        unit="tickets per seat",
        minimum=0.0,
    ),
    _feature(
        r"tickets_(?P<days>\d+)d",
        _count("ticket", " in the last {days} days"),
        "Support tickets opened in the last {days} days.",
        "tickets unknown (no ticket data)",
        unit="tickets",
        **COUNT,
    ),
    # --- chats -------------------------------------------------------------------------
    _feature(
        r"chat_conversations_(?P<days>\d+)d_per_seat",
        _per_seat("support chats", " in the last {days} days"),
        "Support chat conversations in the last {days} days per seat.",
        "support chats per seat unknown (number of seats unknown or zero)",
        unit="conversations per seat",
        minimum=0.0,
    ),
    _feature(
        r"chat_conversations_(?P<days>\d+)d",
        _count("support chat", " in the last {days} days"),
        "Support chat conversations in the last {days} days.",
        "support chats unknown (no chat data)",
        unit="conversations",
        **COUNT,
    ),
    _feature(
        r"chat_customer_messages_(?P<days>\d+)d",
        _count("customer message", " in support chats in the last {days} days"),
        "Messages the customer wrote in support chats in the last {days} days.",
        "customer chat messages unknown (no chat data)",
        unit="messages",
        **COUNT,
    ),
    _feature(
        r"chat_days_since_last",
        lambda m, v, ctx: f"last support chat {_days_ago(v)}",
        "Days since the customer's latest support chat (within {usage_lookback} days).",
        "no support chats in the last {usage_lookback} days",
        maximum_from="usage_lookback",
        **DAYS,
    ),
    # --- past NPS answers --------------------------------------------------------------
    _feature(
        r"nps_last_score",
        _say("last NPS answer was {n}"),
        "The customer's latest NPS answer (0-10).",
        "never answered an NPS survey",
        integer=True,
        **SCORE,
    ),
    _feature(
        r"nps_last_age_days",
        lambda m, v, ctx: f"last NPS answer {_days_ago(v)}",
        "Days since the customer's latest NPS answer.",
        "never answered an NPS survey",
        **DAYS,
    ),
    _feature(
        r"nps_mean",
        lambda m, v, ctx: f"past NPS answers averaged {float(v):.1f}",
        "Mean of the customer's past NPS answers (0-10).",
        "never answered an NPS survey",
        **SCORE,
    ),
    _feature(
        r"nps_trend",
        lambda m, v, ctx: (
            f"last NPS answer {abs(float(v)):.1f} points "
            f"{'below' if v < 0 else 'above'} earlier ones"
        ),
        "Latest NPS answer minus the mean of the earlier ones.",
        "only one NPS answer so far: no NPS trend",
        unit="points",
        minimum=-10.0,
        maximum=10.0,
        learn_range=False,
    ),
    _feature(
        r"nps_responses",
        _count("past NPS answer", ""),
        "NPS surveys the customer answered.",
        "past NPS answers unknown (no NPS data)",
        unit="answers",
        **COUNT,
    ),
    # --- customer-written texts --------------------------------------------------------
    _feature(
        r"text_messages_(?P<days>\d+)d",
        _count("message", " from the customer in the last {days} days"),
        "Chat messages and tickets the customer wrote in the last {days} days.",
        "customer messages unknown (no text data)",
        unit="messages",
        **COUNT,
    ),
    _feature(
        r"text_negative_share_trend",
        lambda m, v, ctx: (
            f"share of negative messages {'up' if v > 0 else 'down'} "
            f"{abs(float(v)) * 100:.0f} points versus the prior period"
        ),
        "Share of negative customer messages, last {trend_recent_days} days minus the "
        "{trend_prior_days} before.",
        "too few customer messages to see a trend in their tone",
        unit="share difference",
        minimum=-1.0,
        maximum=1.0,
        learn_range=False,
    ),
    _feature(
        r"text_negative_share_(?P<days>\d+)d",
        lambda m, v, ctx: (
            f"{float(v) * 100:.0f}% of the customer's messages in the last {m['days']} days "
            "were negative"
        ),
        "Share of the customer's messages of the last {days} days that read as negative.",
        "no messages from the customer in the last {days} days",
        **SHARE,
    ),
    _feature(
        r"text_mean_score_(?P<days>\d+)d",
        lambda m, v, ctx: (
            f"the customer's messages of the last {m['days']} days read like an NPS of "
            f"{float(v):.1f}"
        ),
        "The NPS the customer's messages of the last {days} days read like, on average.",
        "no messages from the customer in the last {days} days",
        **SCORE,
    ),
    _feature(
        r"text_worst_score_(?P<days>\d+)d",
        lambda m, v, ctx: (
            f"the most negative message in the last {m['days']} days reads like an NPS of "
            f"{float(v):.1f}"
        ),
        "The NPS the customer's most negative message of the last {days} days reads like.",
        "no messages from the customer in the last {days} days",
        **SCORE,
    ),
    # Stated intent (intent themes of the taxonomy): counted whatever the message's tone.
    _feature(
        r"text_intent_mentions_(?P<days>\d+)d",
        _count("message", " stating an intent to leave, cut or review in the last {days} days"),
        "Customer messages of the last {days} days that state an intent to leave, cut spend or"
        " seats, or review the renewal (any intent theme of the taxonomy).",
        "messages stating an intent unknown (no text data)",
        unit="messages",
        risk=+1,
        **COUNT,
    ),
    _feature(
        r"text_intent_days_since",
        lambda m, v, ctx: f"last stated an intent to leave, cut or review {_days_ago(v)}",
        "Days since the customer's latest message stating an intent (within {text_lookback} days).",
        "no message stating an intent in the last {text_lookback} days",
        maximum_from="text_lookback",
        **DAYS,
    ),
    _feature(
        r"text_intent_(?P<theme>.+)_(?P<days>\d+)d",
        lambda m, v, ctx: (
            f"{_plural(v, 'message')} about {ctx['theme_label']} in the last {m['days']} days"
        ),
        "Customer messages about {theme_label} (a stated intent) in the last {days} days.",
        "messages about {theme_label} unknown (no text data)",
        unit="messages",
        risk=+1,
        **COUNT,
    ),
    _feature(
        r"text_negative_(?P<theme>.+)_(?P<days>\d+)d",
        lambda m, v, ctx: (
            f"{_plural(v, 'negative message')} about {ctx['theme_label']} "
            f"in the last {m['days']} days"
        ),
        "Negative customer messages about {theme_label} in the last {days} days.",
        "negative messages about {theme_label} unknown (no text data)",
        unit="messages",
        **COUNT,
    ),
)

# Static attributes of any other name, by the kind the data gave them.
_ATTRIBUTE: dict[str, _Definition] = {
    "category": _feature(
        r".+", _category, "Customer attribute '{name}'.", "{label} unknown", "category"
    ),
    "boolean": _feature(
        r".+", _flag, "Customer attribute '{name}' (yes/no).", "{label} unknown", "boolean"
    ),
    "number": _feature(r".+", _number, "Customer attribute '{name}'.", "{label} unknown"),
}


def _definition_of(name: str, kind: Kind | None = None) -> tuple[_Definition, re.Match[str]]:
    """The declaration for a feature name; an attribute of the given kind when none matches."""
    for definition in DEFINITIONS:
        match = definition.pattern.match(name)
        if match and (kind is None or definition.kind in (None, kind)):
            return definition, match
    generic = _ATTRIBUTE[kind or "number"]
    return generic, generic.pattern.match(name)  # type: ignore[return-value]


def risk_direction(name: str) -> int:
    """+1 if more of this feature can only raise churn risk, -1 if only lower it, 0 if either."""
    definition, _ = _definition_of(name)
    return definition.risk


# --- one model's catalogue -----------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of one model: what it is and the values it accepts."""

    name: str
    kind: Kind
    description: str
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    categories: tuple[str, ...] | None = None
    risk_direction: int = 0
    missing: str = ""
    observed: tuple[float, float] | None = None  # the training frame's min and max

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = list(self.categories) if self.categories is not None else None
        data["observed"] = list(self.observed) if self.observed is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        values = dict(data)
        if values.get("categories") is not None:
            values["categories"] = tuple(values["categories"])
        if values.get("observed") is not None:
            values["observed"] = tuple(values["observed"])
        return cls(**values)

    def bounds(self) -> str:
        """The accepted values in words, for error messages."""
        if self.kind == "category" and self.categories is None:
            return "a text value"
        if self.kind == "category":
            shown = ", ".join(repr(c) for c in (self.categories or ())[:30])
            more = len(self.categories or ()) - 30
            return f"one of {shown}" + (f" (and {more} more)" if more > 0 else "")
        if self.kind == "boolean":
            return "true, false, 0 or 1"
        low = "-inf" if self.minimum is None else _n(self.minimum)
        high = "inf" if self.maximum is None else _n(self.maximum)
        whole = "a whole number" if self.integer else "a number"
        return f"{whole} from {low} to {high}" + (f" ({self.unit})" if self.unit else "")

    def check(self, value: Any) -> tuple[Any, str | None]:
        """The value to score with, or a problem naming what is accepted. None is missing."""
        if value is None:
            return None, None
        if self.kind == "category":
            if isinstance(value, str) and (self.categories is None or value in self.categories):
                return value, None
            return None, f"{value!r} is not a known {label(self.name)}: use {self.bounds()}"
        if self.kind == "boolean":
            if isinstance(value, bool):
                return float(value), None
            if isinstance(value, int | float) and value in (0, 1):
                return float(value), None
            return None, f"{value!r} is not a yes/no value: use {self.bounds()}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"{value!r} is not a number: use {self.bounds()}"
        try:
            number = float(value)
        except OverflowError:  # an integer with hundreds of digits
            number = math.inf
        if not math.isfinite(number):
            return None, f"{value!r} is not a finite number: use {self.bounds()}"
        if self.integer and not number.is_integer():
            return None, f"{value!r} is not a whole number: use {self.bounds()}"
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= number <= high:
            return None, f"{value!r} is out of range: use {self.bounds()}"
        return number, None

    def json_schema(self) -> dict[str, Any]:
        """This feature's value in a record, as JSON Schema (null: missing)."""
        text = self.description + (f" Unit: {self.unit}." if self.unit else "")
        if self.kind == "category":
            if self.categories is None:  # a model trained before categories were recorded
                return {"type": ["string", "null"], "description": text}
            return {"enum": [*self.categories, None], "description": text}
        if self.kind == "boolean":
            return {"enum": [False, True, 0, 1, None], "description": text}
        schema: dict[str, Any] = {
            "type": ["integer" if self.integer else "number", "null"],
            "description": text,
        }
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


RECORD_ID = "customer_id"


class Problem(NamedTuple):
    """What is wrong with one value of a record: where, a machine code, and what to send."""

    field: str
    code: str  # unknown_feature | invalid_value
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


RECORD_ID_MAX_LENGTH = 200


@dataclass
class FeatureCatalog:
    """Every feature of one model, in the model's order; see the module docstring."""

    features: dict[str, FeatureSpec]
    context: dict[str, Any] = field(default_factory=dict)  # words the descriptions use
    _words: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __contains__(self, name: str) -> bool:
        return name in self.features

    def __getitem__(self, name: str) -> FeatureSpec:
        return self.features[name]

    @property
    def names(self) -> list[str]:
        return list(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [spec.to_dict() for spec in self.features.values()],
            "context": dict(self.context),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureCatalog:
        specs = [FeatureSpec.from_dict(d) for d in data["features"]]
        return cls({s.name: s for s in specs}, dict(data.get("context", {})))

    # --- words ---------------------------------------------------------------------------
    def describe(self, name: str, value: Any) -> str:
        """A sentence a success manager can act on, e.g. '4 open tickets right now'."""
        key = (name, value if not isinstance(value, float) or value == value else None)
        try:
            return self._words[key]
        except (KeyError, TypeError):  # TypeError: an unhashable value
            pass
        spec = self.features.get(name)
        text = _describe(name, value, spec.kind if spec else None, self.context)
        try:
            if len(self._words) < 200_000:
                self._words[key] = text
        except TypeError:
            pass
        return text

    # --- records ---------------------------------------------------------------------------
    def check_record(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """A record ready to score (values as the encoder takes them), and its problems."""
        clean: dict[str, Any] = {}
        problems: list[Problem] = []
        for name, value in record.items():
            if name == RECORD_ID:
                if value is not None and not isinstance(value, str):
                    problems.append(Problem(name, "invalid_value", f"{value!r} is not a string"))
                elif value is not None and len(value) > RECORD_ID_MAX_LENGTH:
                    problems.append(
                        Problem(name, "invalid_value", f"longer than {RECORD_ID_MAX_LENGTH} chars")
                    )
                clean[name] = value
                continue
            spec = self.features.get(name)
            if spec is None:
                problems.append(Problem(name, "unknown_feature", "not a feature of this model"))
                continue
            clean[name], problem = spec.check(value)
            if problem:
                problems.append(Problem(name, "invalid_value", problem))
        return clean, problems

    def record_schema(self) -> dict[str, Any]:
        """One ``/predict_features`` record as JSON Schema: exactly the accepted names."""
        return {
            "type": "object",
            "description": "Feature values of one record (null or absent: missing). An "
            "optional customer_id is echoed back.",
            "properties": {
                RECORD_ID: {
                    "type": ["string", "null"],
                    "maxLength": RECORD_ID_MAX_LENGTH,
                    "description": "Echoed back in the prediction.",
                },
                **{name: spec.json_schema() for name, spec in self.features.items()},
            },
            "additionalProperties": False,
        }


def _context_words(definition: _Definition, match: re.Match[str], context: Mapping) -> dict:
    words = dict(context)
    # Catalogues shipped before plan version 3's words were added: their trend periods.
    words.setdefault("usage_recent_days", context.get("trend_recent_days"))
    words.setdefault("usage_prior_days", context.get("trend_prior_days"))
    words.update({k: label(v) for k, v in match.groupdict().items()})
    if definition.usage_window and "days" in words:
        words["days"] = str(usage_span(int(words["days"]), bool(context.get("whole_weeks"))))
    theme = match.groupdict().get("theme")
    if theme is not None:
        words["theme_label"] = context.get("theme_labels", {}).get(theme, label(theme))
    words["name"] = match.string
    words["label"] = label(match.string)
    return words


def _describe(name: str, value: Any, kind: Kind | None, context: Mapping[str, Any]) -> str:
    definition, match = _definition_of(name, kind)
    words = _context_words(definition, match, context)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return definition.missing.format(**words)
    describe = definition.describe
    if kind == "category" and definition.kind is None:
        describe = _category
    try:
        if isinstance(value, str) and (kind or definition.kind) != "category":
            value = float(value)
        return describe(match, value, words)
    except (TypeError, ValueError, KeyError):
        return f"{label(name)}: {value}"


MIN_HISTORY_WEEKS = 4  # earlier whole weeks a customer needs before its own history counts


def history_weeks(settings: Any) -> tuple[int, int]:
    """Recent and total whole weeks of the own-history features: the trend's recent period
    and the usage look-back, each cut to whole weeks so a weekly export puts exactly one
    value in every week whatever the weekday of the as-of date."""
    recent = max(1, settings.trend_recent_days // 7)
    total = max(recent + MIN_HISTORY_WEEKS, settings.usage_lookback_days // 7)
    return recent, total


def _context_of(
    settings: Any = None, theme_labels: Mapping[str, str] | None = None, whole_weeks: bool = False
) -> dict:
    """The numbers descriptions mention (look-backs, periods), from feature settings;
    ``whole_weeks``: the plan cuts usage windows to whole weeks (features.plan.usage_span), so a
    feature named ``usage_logins_30d`` covers 28 days and says so."""
    if settings is None:
        from npsrisk.settings import FeatureSettings

        settings = FeatureSettings()
    return {
        "whole_weeks": whole_weeks,
        "usage_recent_days": usage_span(settings.trend_recent_days, whole_weeks),
        "usage_prior_days": usage_span(settings.trend_prior_days, whole_weeks),
        "usage_lookback": max(
            settings.usage_lookback_days,
            max(settings.windows_days),
            settings.trend_recent_days + settings.trend_prior_days,
        ),
        "trend_recent_days": settings.trend_recent_days,
        "trend_prior_days": settings.trend_prior_days,
        "drop_share": f"{settings.drop_threshold:.0%}",
        "history_recent_weeks": history_weeks(settings)[0],
        "history_weeks": history_weeks(settings)[1],
        "min_history_weeks": MIN_HISTORY_WEEKS,
        "text_lookback": text_lookback(settings),
        "theme_labels": dict(theme_labels or {}),
    }


def describe_feature(
    name: str, value: Any, theme_labels: Mapping[str, str] | None = None, kind: Kind | None = None
) -> str:
    """A value in words without a model's catalogue (default feature settings)."""
    if kind is None and isinstance(value, str):
        kind = "category"
    elif kind is None and isinstance(value, bool):
        kind = "boolean"
    return _describe(name, value, kind, _context_of(None, theme_labels))


# --- learning one at training ----------------------------------------------------------------


def _round_out(x: float, up: bool) -> float:
    """Outward to two significant digits: 3417.3 -> 3500 (up), -3.2 -> -3.3 (down)."""
    if x == 0 or not math.isfinite(x):
        return x
    step = 10 ** (math.floor(math.log10(abs(x))) - 1)
    return (math.ceil(x / step) if up else math.floor(x / step)) * step


WIDEN = 3.0  # margins of the plausible range, in units of the observed scale


def plausible_range(
    low: float, high: float, minimum: float | None, maximum: float | None, integer: bool
) -> tuple[float | None, float | None]:
    """The training range widened by ``WIDEN`` times its scale each way, rounded outward to
    two significant digits, inside the feature's intrinsic bounds.

    The scale is the largest of the span, |low|, |high| and 1, so a count seen up to 12 is
    accepted up to 48, a tenure seen up to 2,900 days up to 12,000: a what-if well past
    anything trained on still scores (trees extrapolate flat), while 1e308 days is refused.
    """
    scale = max(high - low, abs(low), abs(high), 1.0)
    lo, hi = _round_out(low - WIDEN * scale, False), _round_out(high + WIDEN * scale, True)
    if minimum is not None:
        lo = max(lo, minimum)
    if maximum is not None:
        hi = min(hi, maximum)
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
    return float(lo), float(hi)


MAX_CATEGORIES_LISTED = 1000


def _observed(series: pd.Series) -> tuple[float, float] | None:
    import numpy as np

    values = np.asarray(series, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    return float(values.min()), float(values.max())


def build_spec(
    name: str,
    kind: Kind,
    context: Mapping[str, Any],
    values: pd.Series | None = None,
    bounds: tuple[float | None, float | None] = (None, None),
    integer: bool = False,
) -> FeatureSpec:
    """One feature's spec from its declaration and (at training) the values it took.

    ``bounds`` and ``integer`` add what the data contract knows of an attribute column
    (e.g. seats >= 0, whole).
    """
    definition, match = _definition_of(name, kind)
    words = _context_words(definition, match, context)
    minimum, maximum = definition.minimum, definition.maximum
    if bounds[0] is not None:
        minimum = bounds[0] if minimum is None else max(minimum, bounds[0])
    if bounds[1] is not None:
        maximum = bounds[1] if maximum is None else min(maximum, bounds[1])
    if definition.maximum_from:
        maximum = float(context[definition.maximum_from])
    integer = integer or definition.integer
    observed = categories = None
    if kind == "category":
        if values is not None:
            levels = values.dropna().astype(str)
            categories = tuple(sorted(levels.unique()))[:MAX_CATEGORIES_LISTED]
    elif kind == "number" and values is not None:
        observed = _observed(values)
        if observed is not None and definition.learn_range:
            minimum, maximum = plausible_range(*observed, minimum, maximum, integer)
    return FeatureSpec(
        name=name,
        kind=kind,
        description=definition.about.format(**words),
        unit=definition.unit,
        minimum=None if kind != "number" else minimum,
        maximum=None if kind != "number" else maximum,
        integer=integer and kind == "number",
        categories=categories,
        risk_direction=definition.risk,
        missing=definition.missing.format(**words),
        observed=observed,
    )


def learn_catalog(plan: FeaturePlan, frame: pd.DataFrame | None = None) -> FeatureCatalog:
    """The catalogue of a feature plan, with ranges and categories seen in ``frame``.

    Without a frame (models trained before the catalogue existed) the intrinsic bounds
    alone apply and categories are not checked against a list.
    """
    from features.contract import CUSTOMERS

    context = _context_of(plan.settings, plan.text_themes, plan.whole_weeks)
    contract = {c.name: c for c in CUSTOMERS.columns}
    specs: dict[str, FeatureSpec] = {}
    attrs = plan.attributes
    for name in plan.feature_names:
        if name in attrs.categorical:
            kind: Kind = "category"
        elif name in attrs.boolean:
            kind = "boolean"
        else:
            definition, _ = _definition_of(name)
            kind = "number" if definition.kind in (None, "category") else definition.kind
        column = contract.get(name)
        values = frame[name] if frame is not None and name in frame.columns else None
        specs[name] = build_spec(
            name,
            kind,
            context,
            values,
            bounds=(column.minimum, column.maximum) if column else (None, None),
            integer=bool(column and column.kind == "integer"),
        )
    return FeatureCatalog(specs, context)


def check_records(
    catalog: FeatureCatalog, records: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Every record checked: the clean records, and each problem with where it is
    (``records[i].name``)."""
    clean, problems = [], []
    for i, record in enumerate(records):
        checked, found = catalog.check_record(record)
        clean.append(checked)
        problems += [p._replace(field=f"records[{i}].{p.field}") for p in found]
    return clean, problems
