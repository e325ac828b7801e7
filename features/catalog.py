"""What each feature means: a plain-language description of a value, and its risk direction.

Descriptions are written for feature *definitions* (patterns such as ``usage_<metric>_trend``),
so they work for whatever metric names or attributes a company's data has.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Describe = Callable[[re.Match[str], float | str | None], str]


def _n(value: float) -> str:
    """A count or amount, without noise digits."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def _plural(count: float, word: str) -> str:
    return f"{_n(count)} {word}" + ("" if count == 1 else "s")


def _label(slug: str) -> str:
    return slug.replace("_", " ")


def _usage_level(m: re.Match[str], v) -> str:
    return f"{_label(m['metric'])} averaged {_n(v)} a day over the last {m['days']} days"


def _usage_trend(m: re.Match[str], v) -> str:
    direction = "down" if v < 0 else "up"
    return f"{_label(m['metric'])} {direction} {abs(v) * 100:.0f}% versus the prior period"


def _usage_drop(m: re.Match[str], v) -> str:
    if v >= 0.5:
        return f"{_label(m['metric'])} dropped sharply versus the prior period"
    return f"no sharp drop in {_label(m['metric'])}"


def _usage_idle(m: re.Match[str], v) -> str:
    return f"last {_label(m['metric'])} activity {_plural(round(v), 'day')} ago"


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    describe: Describe
    risk_direction: int  # +1: more of it means more churn risk; -1: less risk; 0: unconstrained
    missing: str  # what a missing value means, in words


def _rule(pattern: str, describe: Describe, risk: int = 0, missing: str = "no data") -> _Rule:
    return _Rule(re.compile(pattern + r"$"), describe, risk, missing)


_RULES: tuple[_Rule, ...] = (
    _rule(r"tenure_days", lambda m, v: f"customer for {_plural(round(v / 30.44), 'month')}"),
    _rule(r"usage_(?P<metric>.+)_(?P<days>\d+)d", _usage_level, -1),
    _rule(r"usage_(?P<metric>.+)_trend", _usage_trend, -1, "no usage in the prior period"),
    _rule(r"usage_(?P<metric>.+)_drop", _usage_drop, +1),
    _rule(r"usage_(?P<metric>.+)_days_since_active", _usage_idle, +1, "no recent activity"),
    _rule(r"tickets_open", lambda m, v: f"{_plural(v, 'open ticket')} right now", +1),
    _rule(
        r"tickets_high_priority_open",
        lambda m, v: f"{_plural(v, 'open high or urgent ticket')} right now",
        +1,
    ),
    _rule(
        r"tickets_high_priority_(?P<days>\d+)d",
        lambda m, v: f"{_plural(v, 'high or urgent ticket')} in the last {m['days']} days",
    ),
    _rule(
        r"tickets_resolution_hours_(?P<days>\d+)d",
        lambda m, v: f"tickets took {_n(v)} hours to resolve on average (last {m['days']} days)",
        missing="no resolved tickets recently",
    ),
    _rule(
        r"tickets_reopened_(?P<days>\d+)d",
        lambda m, v: f"{_plural(v, 'ticket reopen')} in the last {m['days']} days",
    ),
    _rule(
        r"tickets_csat_(?P<days>\d+)d",
        lambda m, v: f"support CSAT averaged {v:.1f}/5 over the last {m['days']} days",
        missing="no recent CSAT ratings",
    ),
    _rule(
        r"tickets_csat_last",
        lambda m, v: f"last support CSAT rating was {_n(v)}/5",
        missing="never rated support",
    ),
    _rule(
        r"tickets_days_since_last",
        lambda m, v: f"last ticket {_plural(round(v), 'day')} ago",
        missing="no tickets yet",
    ),
    _rule(
        r"tickets_(?P<days>\d+)d",
        lambda m, v: f"{_plural(v, 'ticket')} in the last {m['days']} days",
    ),
    _rule(
        r"chat_conversations_(?P<days>\d+)d",
        lambda m, v: f"{_plural(v, 'support chat')} in the last {m['days']} days",
    ),
    _rule(
        r"chat_customer_messages_(?P<days>\d+)d",
        lambda m, v: (
            f"{_plural(v, 'customer message')} in support chats in the last {m['days']} days"
        ),
    ),
    _rule(
        r"chat_days_since_last",
        lambda m, v: f"last support chat {_plural(round(v), 'day')} ago",
        missing="no recent chats",
    ),
    _rule(
        r"nps_last_score",
        lambda m, v: f"last NPS answer was {_n(v)}",
        missing="never answered an NPS survey",
    ),
    _rule(
        r"nps_last_age_days",
        lambda m, v: f"last NPS answer {_plural(round(v), 'day')} ago",
        missing="never answered an NPS survey",
    ),
    _rule(
        r"nps_mean",
        lambda m, v: f"past NPS answers averaged {v:.1f}",
        missing="never answered an NPS survey",
    ),
    _rule(
        r"nps_trend",
        lambda m, v: (
            f"last NPS answer {abs(v):.1f} points {'below' if v < 0 else 'above'} earlier ones"
        ),
        missing="only one NPS answer so far",
    ),
    _rule(r"nps_responses", lambda m, v: f"{_plural(v, 'past NPS answer')}"),
    _rule(
        r"text_messages_(?P<days>\d+)d",
        lambda m, v: f"{_plural(v, 'message')} from the customer in the last {m['days']} days",
    ),
    _rule(
        r"text_negative_share_(?P<days>\d+)d",
        lambda m, v: (
            f"{v * 100:.0f}% of the customer's messages in the last {m['days']} days were negative"
        ),
        missing="no messages from the customer recently",
    ),
    _rule(
        r"text_negative_share_trend",
        lambda m, v: (
            f"share of negative messages {'up' if v > 0 else 'down'} "
            f"{abs(v) * 100:.0f} points versus the prior period"
        ),
        missing="too few messages to see a trend",
    ),
    _rule(
        r"text_mean_score_(?P<days>\d+)d",
        lambda m, v: (
            f"the customer's messages of the last {m['days']} days read like an NPS of {v:.1f}"
        ),
        missing="no messages from the customer recently",
    ),
    _rule(
        r"text_worst_score_(?P<days>\d+)d",
        lambda m, v: (
            f"the most negative message in the last {m['days']} days reads like an NPS of {v:.1f}"
        ),
        missing="no messages from the customer recently",
    ),
)

_THEME_COUNT = re.compile(r"text_negative_(?P<theme>.+)_(?P<days>\d+)d$")


def _find(name: str) -> tuple[_Rule, re.Match[str]] | None:
    for rule in _RULES:
        match = rule.pattern.match(name)
        if match:
            return rule, match
    return None


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def describe_feature(
    name: str, value: float | str | None, theme_labels: Mapping[str, str] | None = None
) -> str:
    """A sentence a success manager can act on, e.g. '4 open tickets right now'.

    ``theme_labels`` (theme id -> words) names the themes of text features: "3 negative
    messages about billing and pricing in the last 30 days".
    """
    theme = _THEME_COUNT.match(name)
    if theme and not name.startswith("text_negative_share"):
        label = (theme_labels or {}).get(theme["theme"], _label(theme["theme"]))
        count = 0.0 if _is_missing(value) else float(value)
        return (
            f"{_plural(count, 'negative message')} about {label} in the last {theme['days']} days"
        )
    found = _find(name)
    if found is None:  # a static attribute of the customer
        label = _label(name)
        if _is_missing(value):
            return f"{label} unknown"
        if isinstance(value, str):
            return f"{label} is {value}"
        return f"{label} is {_n(float(value))}"
    rule, match = found
    if _is_missing(value):
        return rule.missing
    try:
        return rule.describe(match, float(value))
    except (TypeError, ValueError):
        return f"{_label(name)} is {value}"


def risk_direction(name: str) -> int:
    """+1 if more of this feature can only raise churn risk, -1 if only lower it, 0 if either."""
    found = _find(name)
    return found[0].risk_direction if found else 0
