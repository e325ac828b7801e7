"""Point-in-time feature definitions, written once in Ibis (DuckDB by default, PySpark too).

Every definition takes the spine ``(customer_id, as_of, _cutoff)`` and one contract table and
returns one row per spine row that has any matching event. ``_cutoff`` is the first second
after the as-of date, in epoch seconds: a row dated at or after it is in the future and
never reaches a feature. Anything learnt after the as-of date (a resolution, its CSAT, its
reopen count) is used only once it had happened by then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from npsrisk.settings import FeatureSettings

DAY = 86400
KEYS = ("customer_id", "as_of")
HIGH_PRIORITIES = ("high", "urgent", "critical")


@dataclass(frozen=True)
class FeatureContext:
    """What the definitions need besides the tables."""

    settings: FeatureSettings
    metrics: dict[str, tuple[str, ...]]  # feature-safe metric name -> raw metric labels
    themes: tuple[str, ...] = ()  # theme ids of the text signals
    intents: tuple[str, ...] = ()  # the intent themes among them (own features, no tone filter)


def metric_slug(raw: str) -> str:
    """A metric label as a feature-name part: 'Active Users' -> 'active_users'."""
    slug = re.sub(r"[^0-9a-z]+", "_", str(raw).strip().lower()).strip("_")
    return slug or "metric"


def _seconds(column: ir.Column) -> ir.NumericColumn:
    return column.epoch_seconds()


def with_cutoff(spine: ir.Table) -> ir.Table:
    """A ``(customer_id, as_of)`` spine with its ``_cutoff`` (as features.build.make_spine
    computes it in memory), for spines that live on the engine (Spark)."""
    return spine.mutate(_cutoff=(_seconds(spine.as_of) + DAY).cast("int64"))


def _number(column: ir.NumericColumn) -> ir.NumericColumn:
    """NaN as NULL: Spark keeps a pandas NaN as a value (AVG over it is NaN); DuckDB does not."""
    as_float = column.cast("float64")
    return as_float.isnan().ifelse(ibis.null("float64"), as_float)


def _events(
    spine: ir.Table, events: ir.Table, time_column: str, lookback_days: int | None, **columns
) -> ir.Table:
    """Spine rows joined to their customer's events dated before the cutoff."""
    ev = events.select(_cid=events.customer_id, _ts=_seconds(events[time_column]), **columns)
    predicates = [spine.customer_id == ev._cid, ev._ts < spine._cutoff]
    if lookback_days is not None:
        predicates.append(ev._ts >= spine._cutoff - lookback_days * DAY)
    return spine.join(ev, predicates, how="inner")


def _within(j: ir.Table, days: int, column: str = "_ts") -> ir.BooleanColumn:
    return j[column] >= j._cutoff - days * DAY


def usage_features(spine: ir.Table, usage: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Per metric: level over each window, recent-vs-prior trend, days since active, drop flag."""
    s = ctx.settings
    lookback = max(
        s.usage_lookback_days, max(s.windows_days), s.trend_recent_days + s.trend_prior_days
    )
    j = _events(
        spine, usage, "timestamp", lookback, metric=usage.metric, value=_number(usage.value)
    )
    aggs: dict[str, ir.Scalar] = {}
    for slug, labels in ctx.metrics.items():
        is_metric = j.metric.isin(list(labels))
        for w in s.windows_days:
            aggs[f"usage_{slug}_{w}d"] = j.value.sum(where=is_metric & _within(j, w)) / w
        recent = _within(j, s.trend_recent_days)
        prior = ~recent & _within(j, s.trend_recent_days + s.trend_prior_days)
        aggs[f"_recent_{slug}"] = j.value.sum(where=is_metric & recent) / s.trend_recent_days
        aggs[f"_prior_{slug}"] = j.value.sum(where=is_metric & prior) / s.trend_prior_days
        aggs[f"_last_{slug}"] = j._ts.max(where=is_metric & (j.value > 0))
    agg = j.group_by([*KEYS, "_cutoff"]).aggregate(**aggs)

    derived: dict[str, ir.Value] = {}
    for slug in ctx.metrics:
        recent = agg[f"_recent_{slug}"].fill_null(0)
        prior = agg[f"_prior_{slug}"].fill_null(0)
        trend = (prior > 0).ifelse((recent - prior) / prior, ibis.null("float64"))
        derived[f"usage_{slug}_trend"] = trend
        derived[f"usage_{slug}_drop"] = ((prior > 0) & (trend <= -s.drop_threshold)).ifelse(
            1.0, 0.0
        )
        derived[f"usage_{slug}_days_since_active"] = (agg._cutoff - agg[f"_last_{slug}"]) / DAY
    out = agg.mutate(**derived)
    return out.select(*KEYS, *[c for c in out.columns if c.startswith("usage_")])


def ticket_features(spine: ir.Table, tickets: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Volume, open now, high or urgent, resolution time, reopens, CSAT level and last value."""
    windows = ctx.settings.windows_days
    long = max(windows)
    j = _events(
        spine,
        tickets,
        "created_at",
        None,  # a ticket opened long ago can still be open today
        _resolved=_seconds(tickets.resolved_at),
        priority=tickets.priority.lower(),
        csat=_number(tickets.csat),
        reopened=_number(tickets.reopened),
    )
    resolved_by_then = j._resolved.notnull() & (j._resolved < j._cutoff)
    recent = _within(j, long)
    aggs: dict[str, ir.Scalar] = {
        f"tickets_{w}d": j._ts.count(where=_within(j, w)) for w in windows
    }
    aggs.update(
        tickets_open=j._ts.count(where=~resolved_by_then),
        tickets_high_priority_open=j._ts.count(
            where=~resolved_by_then & j.priority.isin(list(HIGH_PRIORITIES))
        ),
        **{
            f"tickets_high_priority_{long}d": j._ts.count(
                where=recent & j.priority.isin(list(HIGH_PRIORITIES))
            )
        },
        **{
            f"tickets_resolution_hours_{long}d": ((j._resolved - j._ts) / 3600).mean(
                where=recent & resolved_by_then
            )
        },
        **{f"tickets_reopened_{long}d": j.reopened.sum(where=recent & resolved_by_then)},
        **{
            f"tickets_csat_{long}d": j.csat.mean(
                where=resolved_by_then & _within(j, long, "_resolved")
            )
        },
        tickets_csat_last=j.csat.argmax(j._resolved, where=resolved_by_then & j.csat.notnull()),
        _last_ticket=j._ts.max(),
    )
    agg = j.group_by([*KEYS, "_cutoff"]).aggregate(**aggs)
    agg = agg.mutate(tickets_days_since_last=(agg._cutoff - agg._last_ticket) / DAY)
    return agg.select(*KEYS, *[c for c in agg.columns if c.startswith("tickets_")])


def chat_features(spine: ir.Table, chats: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Conversations and customer-authored messages per window, days since the last chat."""
    windows = ctx.settings.windows_days
    j = _events(
        spine,
        chats,
        "sent_at",
        max(ctx.settings.usage_lookback_days, max(windows)),
        conversation_id=chats.conversation_id,
        author=chats.author,
    )
    aggs: dict[str, ir.Scalar] = {}
    for w in windows:
        aggs[f"chat_conversations_{w}d"] = j.conversation_id.nunique(where=_within(j, w))
        aggs[f"chat_customer_messages_{w}d"] = j._ts.count(
            where=_within(j, w) & (j.author == "customer")
        )
    aggs["_last_chat"] = j._ts.max()
    agg = j.group_by([*KEYS, "_cutoff"]).aggregate(**aggs)
    agg = agg.mutate(chat_days_since_last=(agg._cutoff - agg._last_chat) / DAY)
    return agg.select(*KEYS, *[c for c in agg.columns if c.startswith("chat_")])


def nps_features(spine: ir.Table, nps: ir.Table, ctx: FeatureContext) -> ir.Table:
    """NPS history: last score and its age, mean, trend (last vs earlier mean), count."""
    j = _events(spine, nps, "responded_at", None, score=_number(nps.score))
    agg = j.group_by([*KEYS, "_cutoff"]).aggregate(
        nps_last_score=j.score.argmax(j._ts),
        nps_mean=j.score.mean(),
        nps_responses=j._ts.count(),
        _sum=j.score.sum(),
        _last=j._ts.max(),
    )
    earlier_mean = (agg._sum - agg.nps_last_score) / (agg.nps_responses - 1)
    agg = agg.mutate(
        nps_last_age_days=(agg._cutoff - agg._last) / DAY,
        nps_trend=(agg.nps_responses > 1).ifelse(
            agg.nps_last_score - earlier_mean, ibis.null("float64")
        ),
    )
    return agg.select(
        *KEYS, "nps_last_score", "nps_last_age_days", "nps_mean", "nps_trend", "nps_responses"
    )


def static_features(spine: ir.Table, attributes: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Tenure and the static attributes of each customer."""
    a = attributes.rename(_cid="customer_id")
    j = spine.join(a, spine.customer_id == a._cid, how="inner")
    extra = [c for c in attributes.columns if c not in ("customer_id", "signup_date")]
    return j.select(
        *KEYS,
        tenure_days=(j._cutoff - _seconds(j.signup_date)) / DAY,
        **{c: j[c] for c in extra},
    )


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


def text_features(spine: ir.Table, signals: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Customer-written texts: volume, share negative and its trend, the worst and the mean
    message score, and negative mentions per theme. ``signals`` has one scored text per row
    (text_analytics)."""
    s = ctx.settings
    short, long = text_windows(s)
    lookback = text_lookback(s)
    themes = {f"_t_{t}": signals[f"theme_{t}"] for t in ctx.themes}
    j = _events(
        spine,
        signals,
        "timestamp",
        lookback,
        negative=signals.negative,
        score=_number(signals.text_score),
        **themes,
    )
    recent = _within(j, s.trend_recent_days)
    prior = ~recent & _within(j, s.trend_recent_days + s.trend_prior_days)
    aggs: dict[str, ir.Scalar] = {
        "_n_recent": j._ts.count(where=recent),
        "_neg_recent": j._ts.count(where=recent & j.negative),
        "_n_prior": j._ts.count(where=prior),
        "_neg_prior": j._ts.count(where=prior & j.negative),
        f"text_worst_score_{long}d": j.score.min(where=_within(j, long)),
        f"text_mean_score_{long}d": j.score.mean(where=_within(j, long)),
    }
    for w in (short, long):
        aggs[f"text_messages_{w}d"] = j._ts.count(where=_within(j, w))
        aggs[f"_neg_{w}"] = j._ts.count(where=_within(j, w) & j.negative)
    # Per theme over the short window only: twice as many sparse counts added noise, not lift.
    for t in ctx.themes:
        if t not in ctx.intents:
            aggs[f"text_negative_{t}_{short}d"] = j._ts.count(
                where=_within(j, short) & j.negative & j[f"_t_{t}"]
            )
    if ctx.intents:
        # A stated intent counts whatever its tone ("we are reviewing renewals" is calm), over
        # the long window: intent is rare, and it precedes leaving by weeks to months.
        stated = ibis.literal(False)
        for t in ctx.intents:
            stated = stated | j[f"_t_{t}"]
            aggs[f"text_intent_{t}_{long}d"] = j._ts.count(where=_within(j, long) & j[f"_t_{t}"])
        aggs[f"text_intent_mentions_{long}d"] = j._ts.count(where=_within(j, long) & stated)
        aggs["_intent_last"] = j._ts.max(where=stated)
    agg = j.group_by([*KEYS, "_cutoff"]).aggregate(**aggs)

    def share(negative: ir.Value, total: ir.Value) -> ir.Value:
        return (total > 0).ifelse(negative / total, ibis.null("float64"))

    derived = {
        f"text_negative_share_{w}d": share(agg[f"_neg_{w}"], agg[f"text_messages_{w}d"])
        for w in (short, long)
    }
    derived["text_negative_share_trend"] = share(agg._neg_recent, agg._n_recent) - share(
        agg._neg_prior, agg._n_prior
    )
    if ctx.intents:
        derived["text_intent_days_since"] = (agg._cutoff - agg._intent_last) / DAY
    out = agg.mutate(**derived)
    return out.select(*KEYS, *[c for c in out.columns if c.startswith("text_")])
