"""The feature plan: which features a model has, decided once from training data.

Kept apart from ``features.build`` (Ibis, DuckDB) so that whatever only needs the names and
kinds of features (the feature store a service worker opens, the catalogue) stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from features.attributes import AttributeSchema
from npsrisk.settings import FeatureSettings


def usage_span(days: int, whole_weeks: bool) -> int:
    """The days a usage window covers: ``days``, or (plan version 3 on) ``days`` cut to whole
    weeks. Any run of 7k days holds each weekday k times, so a weekly export puts the same
    number of values in the window whatever the weekday of the as-of date; a 30-day window
    held four or five, and its level moved by a fifth with the date alone."""
    return max(1, days // 7) * 7 if whole_weeks else days


def text_windows(settings: FeatureSettings) -> tuple[int, int]:
    """The short and long text windows: the trend's recent period and the longest window."""
    return settings.trend_recent_days, max(settings.windows_days)


def text_lookback(settings: FeatureSettings) -> int:
    """How far back text features look: the long window, or the trend's two periods."""
    return max(text_windows(settings)[1], settings.trend_recent_days + settings.trend_prior_days)


def intent_feature_names(settings: FeatureSettings, intents: tuple[str, ...] | list[str]):
    """Names of the intent features: mentions of any intent and of each, days since the last."""
    long = text_windows(settings)[1]
    return [
        f"text_intent_mentions_{long}d",
        "text_intent_days_since",
        *[f"text_intent_{t}_{long}d" for t in intents],
    ]


PLAN_VERSION = 3  # 2: own-history and size-rate features; 3: usage windows in whole weeks
# (plans saved before version 2 load as 1)


@dataclass
class FeaturePlan:
    """Which features exist, decided once from training data and reused verbatim for scoring."""

    settings: FeatureSettings
    tables: list[str]
    metrics: dict[str, list[str]]
    attributes: AttributeSchema
    skipped_metrics: list[str] = field(default_factory=list)
    text_themes: dict[str, str] = field(default_factory=dict)  # theme id -> label; {}: no text
    text_intents: list[str] = field(default_factory=list)  # the intent themes among them
    # account-size unit -> the customers column measuring it ({"seat": "seats", "mrr": "mrr"})
    sizes: dict[str, str] = field(default_factory=dict)
    # 1: the features before own-history and size rates (models trained then keep their set)
    version: int = PLAN_VERSION

    @property
    def whole_weeks(self) -> bool:
        """Usage windows and trend periods cut to whole weeks (plan version 3 on)."""
        return self.version >= 3

    @property
    def history(self) -> bool:
        """Usage against the customer's own weekly history (plan version 2 on)."""
        return self.version >= 2 and "usage" in self.tables

    def size_rates(self) -> dict[str, tuple[str, str]]:
        """Each rate per unit of account size: its name -> (numerator feature, unit)."""
        if self.version < 2 or not self.sizes:
            return {}
        long = max(self.settings.windows_days)
        numerators: list[str] = []
        if "usage" in self.tables:
            numerators += [f"usage_{slug}_{long}d" for slug in self.metrics]
        rates: dict[str, tuple[str, str]] = {}
        for unit in self.sizes:
            for numerator in numerators:
                rates[f"{numerator}_per_{unit}"] = (numerator, unit)
        # Support load per seat: a 500-seat account filing 10 tickets is quieter than a 5-seat one.
        if "seat" in self.sizes:
            if "tickets" in self.tables:
                rates[f"tickets_{long}d_per_seat"] = (f"tickets_{long}d", "seat")
            if "chats" in self.tables:
                rates[f"chat_conversations_{long}d_per_seat"] = (
                    f"chat_conversations_{long}d",
                    "seat",
                )
        return rates

    # --- names --------------------------------------------------------------------------
    def group_columns(self) -> dict[str, list[tuple[str, bool]]]:
        """Feature names per source table, each with whether "no event" means 0 (a count)."""
        s = self.settings
        long = max(s.windows_days)
        attrs = self.attributes
        groups: dict[str, list[tuple[str, bool]]] = {
            "static": [
                (c, False)
                for c in ("tenure_days", *attrs.numeric, *attrs.boolean, *attrs.categorical)
            ],
        }
        if "usage" in self.tables:
            groups["usage"] = [
                (name, zero)
                for slug in self.metrics
                for name, zero in (
                    *[(f"usage_{slug}_{w}d", True) for w in s.windows_days],
                    (f"usage_{slug}_trend", False),
                    (f"usage_{slug}_drop", True),
                    (f"usage_{slug}_days_since_active", False),
                    *(
                        [(f"usage_{slug}_vs_history", False), (f"usage_{slug}_history_z", False)]
                        if self.history
                        else []
                    ),
                )
            ]
        if "tickets" in self.tables:
            groups["tickets"] = [
                *[(f"tickets_{w}d", True) for w in s.windows_days],
                ("tickets_open", True),
                ("tickets_high_priority_open", True),
                (f"tickets_high_priority_{long}d", True),
                (f"tickets_resolution_hours_{long}d", False),
                (f"tickets_reopened_{long}d", True),
                (f"tickets_csat_{long}d", False),
                ("tickets_csat_last", False),
                ("tickets_days_since_last", False),
            ]
        if "chats" in self.tables:
            groups["chats"] = [
                *[
                    (f"chat_{kind}_{w}d", True)
                    for w in s.windows_days
                    for kind in ("conversations", "customer_messages")
                ],
                ("chat_days_since_last", False),
            ]
        if self.text_themes:
            short, long = text_windows(s)
            groups["text"] = [
                *[(f"text_messages_{w}d", True) for w in (short, long)],
                *[(f"text_negative_share_{w}d", False) for w in (short, long)],
                ("text_negative_share_trend", False),
                (f"text_worst_score_{long}d", False),
                (f"text_mean_score_{long}d", False),
                *[
                    (f"text_negative_{t}_{short}d", True)
                    for t in self.text_themes
                    if t not in self.text_intents
                ],
                *[
                    (name, name != "text_intent_days_since")
                    for name in (
                        intent_feature_names(s, self.text_intents) if self.text_intents else []
                    )
                ],
            ]
        if "nps_responses" in self.tables:
            groups["nps_responses"] = [
                ("nps_last_score", False),
                ("nps_last_age_days", False),
                ("nps_mean", False),
                ("nps_trend", False),
                ("nps_responses", True),
            ]
        rates = self.size_rates()
        if rates:
            groups["account_size"] = [(name, False) for name in rates]
        return groups

    @property
    def feature_names(self) -> list[str]:
        return [name for cols in self.group_columns().values() for name, _ in cols]

    @property
    def categorical(self) -> list[str]:
        return list(self.attributes.categorical)

    def zero_when_absent(self) -> list[str]:
        """Counts and levels: no event in the window means 0, not unknown."""
        return [name for cols in self.group_columns().values() for name, zero in cols if zero]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.model_dump(),
            "tables": self.tables,
            "metrics": self.metrics,
            "attributes": self.attributes.to_dict(),
            "skipped_metrics": self.skipped_metrics,
            "text_themes": self.text_themes,
            "sizes": self.sizes,
            "version": self.version,
            "text_intents": self.text_intents,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePlan:
        return cls(
            settings=FeatureSettings(**data["settings"]),
            tables=list(data["tables"]),
            metrics={k: list(v) for k, v in data["metrics"].items()},
            attributes=AttributeSchema(**data["attributes"]),
            skipped_metrics=list(data.get("skipped_metrics", [])),
            text_themes=dict(data.get("text_themes", {})),
            sizes=dict(data.get("sizes", {})),
            version=int(data.get("version", 1)),
            text_intents=list(data.get("text_intents", [])),
        )
