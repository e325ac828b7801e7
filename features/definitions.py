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
import pandas as pd

from features.catalog import MIN_HISTORY_WEEKS, history_weeks
from features.plan import text_lookback, text_windows, usage_span
from npsrisk.settings import FeatureSettings

DAY = 86400
KEYS = ("customer_id", "as_of")
ROW = "_row"  # a spine row's number, where the caller gives one (features.build.in_given_order)
HIGH_PRIORITIES = ("high", "urgent", "critical")


@dataclass(frozen=True)
class FeatureContext:
    """What the definitions need besides the tables."""

    settings: FeatureSettings
    metrics: dict[str, tuple[str, ...]]  # feature-safe metric name -> raw metric labels
    themes: tuple[str, ...] = ()  # theme ids of the text signals
    # account-size unit -> the customers column that measures it ({"seat": "seats"}); empty:
    # no per-seat or per-MRR rates (and none for plans made before they existed)
    sizes: dict[str, str] | None = None
    history: bool = False  # usage against the customer's own weekly history (plan version 2+)
    whole_weeks: bool = False  # usage windows cut to whole weeks (plan version 3+)

    intents: tuple[str, ...] = ()  # the intent themes among them (own features, no tone filter)
    cutoffs: tuple[int, int] | None = None  # the spine's first and last cutoff, when known


WEEK = 7 * DAY


def spine_keys(spine: ir.Table) -> list[str]:
    """What identifies a spine row in a definition's output: its ``ROW`` number where the
    spine carries one (one integer groups and joins faster than an id and a date), else its
    keys."""
    return [ROW] if ROW in spine.columns else list(KEYS)


def metric_slug(raw: str) -> str:
    """A metric label as a feature-name part: 'Active Users' -> 'active_users'."""
    slug = re.sub(r"[^0-9a-z]+", "_", str(raw).strip().lower()).strip("_")
    return slug or "metric"


def _seconds(column: ir.Column) -> ir.NumericColumn:
    return column.epoch_seconds()


def with_cutoff(spine: ir.Table) -> ir.Table:
    """A ``(customer_id, as_of)`` spine with its ``_cutoff`` (as features.build.make_spine
    computes it in memory), for spines that live on the engine (Spark). An as-of time within
    its day counts as that day: every window starts at midnight (see _daily_usage)."""
    return spine.mutate(_cutoff=_day_start(_seconds(spine.as_of)) + DAY)


def _day_start(seconds: ir.NumericColumn) -> ir.IntegerColumn:
    """Epoch seconds to the first second of their (UTC) day."""
    return ((seconds / DAY).floor() * DAY).cast("int64")


def _number(column: ir.NumericColumn) -> ir.NumericColumn:
    """NaN as NULL: Spark keeps a pandas NaN as a value (AVG over it is NaN); DuckDB does not."""
    as_float = column.cast("float64")
    return as_float.isnan().ifelse(ibis.null("float64"), as_float)


def _events(
    spine: ir.Table, events: ir.Table, time_column: str, lookback_days: int | None, **columns
) -> ir.Table:
    """Spine rows joined to their customer's events dated before the cutoff."""
    ev = events.select(_cid=events.customer_id, _ts=_seconds(events[time_column]), **columns)
    return _join_events(spine, ev, lookback_days)


def _join_events(spine: ir.Table, ev: ir.Table, lookback_days: int | None) -> ir.Table:
    """Spine rows joined to the rows of ``ev`` (``_cid``, ``_ts`` in epoch seconds) of their
    customer dated before the cutoff and, with ``lookback_days``, within that many days."""
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
    days = _daily_usage(_reached(spine, usage, "timestamp", lookback, ctx), ctx)
    keys = spine_keys(spine)
    if ctx.whole_weeks:
        agg = _by_weeks(_weekly_totals(spine, days, lookback, ctx), keys, ctx)
    else:
        agg = _by_days(_join_events(spine, days, lookback), keys, ctx)
        if ctx.history:
            weekly = _weekly_totals(spine, days, lookback, ctx, history_weeks(s)[1])
            agg = _with_weekly_history(agg, weekly, keys, ctx)

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
        if ctx.history:
            derived.update(_history_features(agg, slug, ctx.settings))
    out = agg.mutate(**derived)
    return out.select(*keys, *[c for c in out.columns if c.startswith("usage_")])


def _reached(
    spine: ir.Table, events: ir.Table, time_column: str, lookback: int, ctx: FeatureContext
) -> ir.Table:
    """The event rows some as-of date of the spine reaches (before its cutoff, within
    ``lookback`` days of it): the others are left out before anything is grouped. With the
    cutoffs known (``ctx.cutoffs``) the bounds are literals, which a file scan can use."""
    if ctx.cutoffs is not None:
        first, last = (pd.Timestamp(c, unit="s") for c in ctx.cutoffs)
        at = events[time_column]
        return events.filter((at < last) & (at >= first - pd.Timedelta(days=lookback)))
    first, last = spine._cutoff.min().as_scalar(), spine._cutoff.max().as_scalar()
    ts = _seconds(events[time_column])
    return events.filter((ts < last) & (ts >= first - lookback * DAY))


def _by_days(j: ir.Table, keys: list[str], ctx: FeatureContext) -> ir.Table:
    """The usage sums per as-of date straight from the joined days (plans before version 3,
    whose windows are not whole weeks)."""
    s = ctx.settings
    recent_days, prior_days = s.trend_recent_days, s.trend_prior_days
    recent = _within(j, recent_days)
    prior = ~recent & _within(j, recent_days + prior_days)
    aggs: dict[str, ir.Scalar] = {}
    for slug in ctx.metrics:
        v = j[f"_v_{slug}"]
        for w in s.windows_days:
            aggs[f"usage_{slug}_{w}d"] = v.sum(where=_within(j, w)) / w
        aggs[f"_recent_{slug}"] = v.sum(where=recent) / recent_days
        aggs[f"_prior_{slug}"] = v.sum(where=prior) / prior_days
        aggs[f"_last_{slug}"] = j[f"_a_{slug}"].max()
    return j.group_by([*keys, "_cutoff"]).aggregate(**aggs)


def _by_weeks(weekly: ir.Table, keys: list[str], ctx: FeatureContext) -> ir.Table:
    """The usage sums per as-of date from weekly totals (plan version 3 on). Every window,
    trend period and history week is then whole weeks back from the cutoff, so one grouping
    of the joined days into weeks serves them all, and the joined rows are read once, not once
    for the windows and again for the history."""
    s = ctx.settings

    def weeks(days: int) -> int:
        return usage_span(days, whole_weeks=True) // 7

    wk = weekly._week
    recent_w, prior_w = weeks(s.trend_recent_days), weeks(s.trend_prior_days)
    recent, prior = wk < recent_w, (wk >= recent_w) & (wk < recent_w + prior_w)
    aggs: dict[str, ir.Scalar] = {}
    for slug in ctx.metrics:
        v = weekly[f"_wv_{slug}"]
        for w in s.windows_days:
            aggs[f"usage_{slug}_{w}d"] = v.sum(where=wk < weeks(w)) / (7 * weeks(w))
        aggs[f"_recent_{slug}"] = v.sum(where=recent) / (7 * recent_w)
        aggs[f"_prior_{slug}"] = v.sum(where=prior) / (7 * prior_w)
        aggs[f"_last_{slug}"] = weekly[f"_wa_{slug}"].max()
        if ctx.history:
            aggs.update(_history_sums(weekly, slug, ctx))
    return weekly.group_by([*keys, "_cutoff"]).aggregate(**aggs)


def _history_sums(weekly: ir.Table, slug: str, ctx: FeatureContext) -> dict[str, ir.Scalar]:
    """What the own-history features (_history_features) need of a metric's weekly totals:
    the sum of the recent weeks, of the earlier weeks and of their squares, and the oldest
    week with a value (the customer's history starts there, not before signup). A week with
    no value of the metric has a null total, which no sum counts."""
    recent, total = history_weeks(ctx.settings)
    v, wk = weekly[f"_wv_{slug}"], weekly._week
    earlier = (wk >= recent) & (wk < total)
    return {
        f"_hr_{slug}": v.sum(where=wk < min(recent, total)),
        f"_he_{slug}": v.sum(where=earlier),
        f"_hq_{slug}": (v * v).sum(where=earlier),
        f"_hk_{slug}": wk.max(where=v.notnull() & (wk < total)),
    }


def _weekly_totals(
    spine: ir.Table, days: ir.Table, lookback: int, ctx: FeatureContext, max_week: int | None = None
) -> ir.Table:
    """The days (``_daily_usage`` rows) of each spine row's look-back as one row per spine
    row and whole week back from its cutoff (``_week``: 0 is the week before the cutoff),
    with per metric the week's sum (``_wv_``, null: no value that week) and the last time it
    was positive (``_wa_``); with ``max_week``, only weeks before that one.

    A day with no other day of its customer within 6 days before or after it (``_alone``) is
    the only day of its week, whatever the cutoff: it is its week's total as it is. Only the
    other days go through the grouping, which then costs nothing on an export of weekly
    totals and stays exact on daily or event-level ones."""

    def joined(part: ir.Table) -> ir.Table:
        j = _join_events(spine, part, lookback)
        j = j.mutate(_week=((j._cutoff - 1 - j._ts) / WEEK).floor().cast("int64"))
        return j if max_week is None else j.filter(j._week < max_week)

    keys = [*spine_keys(spine), "_cutoff", "_week"]
    alone = joined(days.filter(days._alone))
    clustered = joined(days.filter(~days._alone))
    as_is: dict[str, ir.Value] = {}
    per_week: dict[str, ir.Scalar] = {}
    for slug in ctx.metrics:
        as_is[f"_wv_{slug}"] = alone[f"_v_{slug}"]
        as_is[f"_wa_{slug}"] = alone[f"_a_{slug}"]
        per_week[f"_wv_{slug}"] = clustered[f"_v_{slug}"].sum()
        per_week[f"_wa_{slug}"] = clustered[f"_a_{slug}"].max()
    single = alone.select(*keys, **as_is)
    grouped = clustered.group_by(keys).aggregate(**per_week)
    return ibis.union(single, grouped.select(*single.columns), distinct=False)


def _daily_usage(usage: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Usage as one row per customer and day (``_ts``: the day's first second) with, per
    metric, the day's sum (``_v_``, null: no value of it that day) and the last time it was
    positive (``_a_``), and whether it is ``_alone`` (see _weekly_totals). The join repeats
    each row for every as-of date it falls before, so it gets one row per day, not one per
    metric and event; every window starts at midnight (the cutoff is the first second after an
    as-of date), so each day falls wholly inside or outside it and the sums are those of the
    events."""
    value = _number(usage.value)
    ts = _seconds(usage.timestamp)
    per_metric: dict[str, ir.Value] = {}
    for slug, labels in ctx.metrics.items():
        is_metric = usage.metric.isin(list(labels))
        per_metric[f"_v_{slug}"] = is_metric.ifelse(value, ibis.null("float64"))
        per_metric[f"_a_{slug}"] = (is_metric & (value > 0)).ifelse(ts, ibis.null("int64"))
    rows = usage.select(_cid=usage.customer_id, _ts=_day_start(ts), **per_metric)
    daily: dict[str, ir.Scalar] = {}
    for slug in ctx.metrics:
        daily[f"_v_{slug}"] = rows[f"_v_{slug}"].sum()
        daily[f"_a_{slug}"] = rows[f"_a_{slug}"].max()
    days = rows.group_by(["_cid", "_ts"]).aggregate(**daily)
    # Alone in any week: no other day of the customer within 6 days (see _weekly_totals).
    by_day = ibis.window(group_by=days._cid, order_by=days._ts)
    after_previous = (days._ts - days._ts.lag().over(by_day)).fill_null(WEEK)
    before_next = (days._ts.lead().over(by_day) - days._ts).fill_null(WEEK)
    return days.mutate(_alone=(after_previous >= WEEK) & (before_next >= WEEK))


def _with_weekly_history(
    agg: ir.Table, weekly: ir.Table, keys: list[str], ctx: FeatureContext
) -> ir.Table:
    """``agg`` with, per metric, the own-history sums (_history_sums) of the weekly totals
    (plans before version 3, whose windows are summed from days)."""
    sums: dict[str, ir.Scalar] = {}
    for slug in ctx.metrics:
        sums.update(_history_sums(weekly, slug, ctx))
    hist = weekly.group_by(keys).aggregate(**sums)
    joined = agg.left_join(hist, keys)
    return joined.select(*agg.columns, *[c for c in hist.columns if c not in keys])


def _history_features(agg: ir.Table, slug: str, settings: FeatureSettings) -> dict:
    """The last weeks of a metric against the customer's own earlier weeks: their ratio
    (1: as usual) and the deviation in units of its own week-to-week variability (a z-score).
    Weeks without rows count as zero once the customer's history has started."""
    recent, total = history_weeks(settings)
    oldest = agg[f"_hk_{slug}"]
    n = (ibis.least(oldest.fill_null(-1), total - 1) - recent + 1).cast("float64")
    enough = n >= MIN_HISTORY_WEEKS
    # Never a division by zero, not even in a branch not taken (Spark's ANSI mode raises).
    weeks = ibis.greatest(n, 1.0)
    mean = agg[f"_he_{slug}"].fill_null(0) / weeks
    var = agg[f"_hq_{slug}"].fill_null(0) / weeks - mean * mean
    level = agg[f"_hr_{slug}"].fill_null(0) / recent
    # Float sums leave a constant history a variance of ~1e-16, not 0: no z-score from that.
    varies = var > 1e-12 * (mean * mean + 1)
    return {
        f"usage_{slug}_vs_history": (enough & (mean > 0)).ifelse(
            level / mean.nullif(0.0), ibis.null("float64")
        ),
        f"usage_{slug}_history_z": (enough & varies).ifelse(
            (level - mean) / varies.ifelse(var, 1.0).sqrt(), ibis.null("float64")
        ),
    }


def size_rates(table: ir.Table, ctx: FeatureContext, names: dict[str, tuple[str, str]]) -> dict:
    """Rates per unit of account size (per seat, per unit of MRR) over the assembled frame:
    ``names`` maps each rate's name to its numerator feature and size unit. Unknown or zero
    size: unknown rate."""
    out: dict[str, ir.Value] = {}
    for name, (numerator, unit) in names.items():
        size = table[(ctx.sizes or {})[unit]].cast("float64")
        out[name] = (size > 0).ifelse(table[numerator] / size.nullif(0.0), ibis.null("float64"))
    return out


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
    keys = spine_keys(spine)
    agg = j.group_by([*keys, "_cutoff"]).aggregate(**aggs)
    agg = agg.mutate(tickets_days_since_last=(agg._cutoff - agg._last_ticket) / DAY)
    return agg.select(*keys, *[c for c in agg.columns if c.startswith("tickets_")])


def chat_features(spine: ir.Table, chats: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Conversations and customer-authored messages per window, days since the last chat."""
    windows = ctx.settings.windows_days
    lookback = max(ctx.settings.usage_lookback_days, max(windows))
    chats = _reached(spine, chats, "sent_at", lookback, ctx)
    # One row per customer, day and conversation before the join (which repeats each row for
    # every as-of date it falls before), as _daily_usage does for usage.
    ts = _seconds(chats.sent_at)
    rows = chats.select(
        _cid=chats.customer_id,
        _day=_day_start(ts),
        conversation_id=chats.conversation_id,
        _sent=ts,
        _mine=(chats.author == "customer").ifelse(1, 0),
    )
    daily = rows.group_by(["_cid", "_day", "conversation_id"]).aggregate(
        _customer=rows._mine.sum(), _last=rows._sent.max()
    )
    daily = daily.select("_cid", "conversation_id", "_customer", "_last", _ts=daily._day)
    j = _join_events(spine, daily, lookback)
    aggs: dict[str, ir.Scalar] = {}
    for w in windows:
        aggs[f"chat_conversations_{w}d"] = j.conversation_id.nunique(where=_within(j, w))
        aggs[f"chat_customer_messages_{w}d"] = j._customer.sum(where=_within(j, w)).fill_null(0)
    aggs["_last_chat"] = j._last.max()
    keys = spine_keys(spine)
    agg = j.group_by([*keys, "_cutoff"]).aggregate(**aggs)
    agg = agg.mutate(chat_days_since_last=(agg._cutoff - agg._last_chat) / DAY)
    return agg.select(*keys, *[c for c in agg.columns if c.startswith("chat_")])


def nps_features(spine: ir.Table, nps: ir.Table, ctx: FeatureContext) -> ir.Table:
    """NPS history: last score and its age, mean, trend (last vs earlier mean), count."""
    j = _events(spine, nps, "responded_at", None, score=_number(nps.score))
    keys = spine_keys(spine)
    agg = j.group_by([*keys, "_cutoff"]).aggregate(
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
        *keys, "nps_last_score", "nps_last_age_days", "nps_mean", "nps_trend", "nps_responses"
    )


def static_features(spine: ir.Table, attributes: ir.Table, ctx: FeatureContext) -> ir.Table:
    """Tenure and the static attributes of each customer."""
    a = attributes.rename(_cid="customer_id")
    j = spine.join(a, spine.customer_id == a._cid, how="inner")
    extra = [c for c in attributes.columns if c not in ("customer_id", "signup_date")]
    return j.select(
        *spine_keys(spine),
        tenure_days=(j._cutoff - _seconds(j.signup_date)) / DAY,
        **{c: j[c] for c in extra},
    )


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
    keys = spine_keys(spine)
    agg = j.group_by([*keys, "_cutoff"]).aggregate(**aggs)

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
    return out.select(*keys, *[c for c in out.columns if c.startswith("text_")])
