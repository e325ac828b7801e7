"""An independent plain-pandas implementation of the feature definitions: the test oracle and benchmark baseline."""  # noqa: E501

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pandas as pd

from features.attributes import static_attributes
from features.build import FeaturePlan, make_spine
from features.catalog import MIN_HISTORY_WEEKS, history_weeks
from features.definitions import DAY, HIGH_PRIORITIES, KEYS
from features.plan import usage_span
from features.validation import ValidatedTables

# Written from the documented semantics, without Ibis, DuckDB or SQL:
#
# * cutoff = the as-of date + 1 day (the spine's ``_cutoff``, epoch seconds); an event counts
#   only if its time is < cutoff; "the last N days" means time >= cutoff - N days.
# * Times are epoch seconds as floats (microseconds / 1e6), as DuckDB's ``epoch()`` gives.
# * "Last" values (``tickets_csat_last`` by resolution time, ``nps_last_score`` by response
#   time) break ties by taking the row that comes LAST in the input table. The engine
#   (``FIRST(... ORDER BY key DESC)``) leaves ties unspecified, so a tie whose rows carry
#   different values may legitimately differ; ``ambiguous_last_values`` finds those cells.
#
# * Own history: weeks are counted back from the cutoff, week k holding times in
#   [cutoff - (k+1) weeks, cutoff - k weeks); a metric's history starts at its oldest week
#   with any row (within the look-back's whole weeks) and weeks after it without rows are 0.
# * Size rates divide the finished (zero-filled) count or level by the size column, when
#   that is > 0.
#
# Events are processed one distinct cutoff at a time: filter them to the window
# [cutoff - look-back, cutoff), inner-merge them on customer_id with that cutoff's spine rows,
# and group by spine row. Spine rows without a matching event get 0 for the count-like
# columns (``plan.zero_when_absent()``) and NaN otherwise; a table absent at scoring time
# leaves all its columns NaN, as the engine does.

_LAST_COLUMNS = {
    "tickets": ("tickets_csat_last",),
    "nps_responses": ("nps_last_score", "nps_trend"),
}


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    """Float epoch seconds (NaN where missing), to the microsecond."""
    us = pd.to_datetime(values).to_numpy(dtype="datetime64[us]")
    out = us.astype("int64").astype(float) / 1e6
    out[np.isnat(us)] = np.nan
    return out


def _spine(pairs: pd.DataFrame) -> pd.DataFrame:
    spine = make_spine(pairs).drop_duplicates(list(KEYS), ignore_index=True)
    spine["_row"] = np.arange(len(spine))
    return spine


def _joined(
    spine: pd.DataFrame,
    events: pd.DataFrame,
    time_column: str,
    lookback_days: int | None,
    columns: dict[str, np.ndarray],
    keep: np.ndarray | None = None,
) -> Iterator[pd.DataFrame]:
    """Per distinct cutoff: its spine rows merged on customer_id with their customers' events
    dated in [cutoff - look-back, cutoff) (no lower bound without a look-back).

    Every frame yielded has ``_row`` (spine row), ``_cutoff``, ``_ts``, ``_order`` (position in
    the input table) and the requested columns. ``keep`` drops event rows up front.
    """
    ts = _epoch_seconds(events[time_column])
    # customer_id as integer codes, so that every merge below is on integers, not strings.
    codes, uniques = pd.factorize(events["customer_id"].astype(object).to_numpy())
    spine_codes = pd.Index(uniques).get_indexer(spine["customer_id"].to_numpy())
    spine = spine.assign(_cid=spine_codes)[spine_codes >= 0]  # customers with any event
    usable = np.ones(len(events), dtype=bool) if keep is None else keep
    for cutoff, rows in spine.groupby("_cutoff", sort=True):
        in_window = usable & (ts < cutoff)
        if lookback_days is not None:
            in_window &= ts >= cutoff - lookback_days * DAY
        idx = np.flatnonzero(in_window)
        window = pd.DataFrame(
            {
                "_cid": codes[idx],
                "_ts": ts[idx],
                "_order": idx,
                **{name: values[idx] for name, values in columns.items()},
            }
        )
        yield rows[["_cid", "_row", "_cutoff"]].merge(window, on="_cid")


def _last_by(
    frame: pd.DataFrame, key: str, value: str, where: np.ndarray, ties: bool
) -> tuple[pd.Series, pd.Series]:
    """Per ``_row``: ``value`` of the row with the largest ``key`` among rows ``where`` holds
    (ties: the row last in the input table) and, if ``ties``, whether a tie between different
    values made that choice matter (else an empty Series)."""
    candidates = frame.loc[where, ["_row", key, "_order", value]]
    ordered = candidates.sort_values(["_row", key, "_order"], kind="stable")
    last = ordered.drop_duplicates("_row", keep="last").set_index("_row")[value]
    if not ties:
        return last, pd.Series(dtype=bool)
    top = candidates.groupby("_row")[key].transform("max")
    at_top = candidates[candidates[key] == top]
    return last, at_top.groupby("_row")[value].nunique(dropna=False) > 1


def _usage(spine: pd.DataFrame, usage: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    s = plan.settings
    lookback = max(
        s.usage_lookback_days, max(s.windows_days), s.trend_recent_days + s.trend_prior_days
    )
    span = partial(usage_span, whole_weeks=plan.whole_weeks)
    recent_days, prior_days = span(s.trend_recent_days), span(s.trend_prior_days)
    slugs = list(plan.metrics)
    slug_of = {label: i for i, labels in enumerate(plan.metrics.values()) for label in labels}
    slug = usage["metric"].astype(object).map(slug_of).fillna(-1).to_numpy(dtype=int)
    columns = {"_slug": slug, "value": usage["value"].to_numpy(dtype=float)}
    parts = []
    for j in _joined(spine, usage, "timestamp", lookback, columns, keep=slug >= 0):
        cutoff, ts, value = (j[c].to_numpy() for c in ("_cutoff", "_ts", "value"))
        recent = ts >= cutoff - recent_days * DAY
        prior = ~recent & (ts >= cutoff - (recent_days + prior_days) * DAY)
        sums = pd.DataFrame(
            {
                **{
                    f"w{w}": np.where(ts >= cutoff - span(w) * DAY, value, 0.0)
                    for w in s.windows_days
                },
                "recent": np.where(recent, value, 0.0),
                "prior": np.where(prior, value, 0.0),
                "last": np.where(value > 0, ts, np.nan),
                "_row": j["_row"].to_numpy(),
                "_slug": j["_slug"].to_numpy(),
                "_cutoff": cutoff,
            }
        )
        grouped = sums.groupby(["_row", "_slug"])
        agg = grouped[[f"w{w}" for w in s.windows_days] + ["recent", "prior"]].sum()
        agg["last"] = grouped["last"].max()
        agg["cutoff"] = grouped["_cutoff"].first()
        if plan.history:
            agg = agg.join(_weekly_history(j, s))
        parts.append(agg)
    if not parts:
        return pd.DataFrame()
    agg = pd.concat(parts)
    out = {}
    present = set(agg.index.get_level_values("_slug"))
    for code, slug in enumerate(slugs):
        if code in present:
            m = agg.xs(code, level="_slug")
        else:
            m = pd.DataFrame(columns=agg.columns, index=pd.Index([], name="_row"), dtype=float)
        for w in s.windows_days:
            out[f"usage_{slug}_{w}d"] = m[f"w{w}"] / span(w)
        recent_level = m["recent"] / recent_days
        prior_level = m["prior"] / prior_days
        has_prior = prior_level > 0
        trend = ((recent_level - prior_level) / prior_level).where(has_prior)
        out[f"usage_{slug}_trend"] = trend
        out[f"usage_{slug}_drop"] = (has_prior & (trend <= -s.drop_threshold)).astype(float)
        out[f"usage_{slug}_days_since_active"] = (m["cutoff"] - m["last"]) / DAY
        if plan.history:
            recent_weeks, total = history_weeks(s)
            n = np.minimum(m["oldest"].fillna(-1), total - 1) - recent_weeks + 1
            mean = m["earlier"].fillna(0) / n
            var = m["squares"].fillna(0) / n - mean**2
            level = m["recent_weeks"].fillna(0) / recent_weeks
            enough = n >= MIN_HISTORY_WEEKS
            out[f"usage_{slug}_vs_history"] = (level / mean).where(enough & (mean > 0))
            varies = var > 1e-12 * (mean**2 + 1)
            z = (level - mean) / np.sqrt(var.where(varies))
            out[f"usage_{slug}_history_z"] = z.where(enough & varies)
    return pd.DataFrame(out)


def _weekly_history(j: pd.DataFrame, s) -> pd.DataFrame:
    """Per (_row, _slug): sums of the recent and the earlier whole weeks, the earlier weeks'
    squares, and the oldest week with a row."""
    recent_weeks, total = history_weeks(s)
    week = np.floor((j["_cutoff"].to_numpy() - 1 - j["_ts"].to_numpy()) / (7 * DAY))
    frame = pd.DataFrame(
        {"_row": j["_row"].to_numpy(), "_slug": j["_slug"].to_numpy(), "week": week}
    )
    frame["value"] = j["value"].to_numpy()
    frame = frame[frame["week"] < total]
    weekly = frame.groupby(["_row", "_slug", "week"])["value"].sum(min_count=0).reset_index()
    earlier = weekly["week"] >= recent_weeks
    parts = pd.DataFrame(
        {
            "_row": weekly["_row"],
            "_slug": weekly["_slug"],
            "recent_weeks": np.where(earlier, 0.0, weekly["value"]),
            "earlier": np.where(earlier, weekly["value"], 0.0),
            "squares": np.where(earlier, weekly["value"] ** 2, 0.0),
            "oldest": weekly["week"],
        }
    )
    grouped = parts.groupby(["_row", "_slug"])
    out = grouped[["recent_weeks", "earlier", "squares"]].sum()
    out["oldest"] = grouped["oldest"].max()
    return out


def _tickets(
    spine: pd.DataFrame, tickets: pd.DataFrame, plan: FeaturePlan, ties: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    windows = plan.settings.windows_days
    long = max(windows)
    columns = {
        "_resolved": _epoch_seconds(tickets["resolved_at"]),
        "_high": tickets["priority"].astype(object).str.lower().isin(HIGH_PRIORITIES).to_numpy(),
        "csat": pd.to_numeric(tickets["csat"]).to_numpy(dtype=float),
        "reopened": pd.to_numeric(tickets["reopened"]).to_numpy(dtype=float),
    }
    parts, flags = [], []
    for j in _joined(spine, tickets, "created_at", None, columns):  # all history
        cutoff, ts, resolved = (j[c].to_numpy() for c in ("_cutoff", "_ts", "_resolved"))
        # Resolved by then: a ticket resolved at or after the cutoff is still open, and its
        # resolution time, CSAT and reopen count are not known yet.
        done = ~np.isnan(resolved) & (resolved < cutoff)
        created_recently = ts >= cutoff - long * DAY
        resolved_recently = done & (resolved >= cutoff - long * DAY)
        high = j["_high"].to_numpy(dtype=bool)
        csat, reopened = j["csat"].to_numpy(), j["reopened"].to_numpy()
        f = pd.DataFrame(
            {
                "_row": j["_row"].to_numpy(),
                **{f"tickets_{w}d": (ts >= cutoff - w * DAY).astype(float) for w in windows},
                "tickets_open": (~done).astype(float),
                "tickets_high_priority_open": (~done & high).astype(float),
                f"tickets_high_priority_{long}d": (created_recently & high).astype(float),
                "_hours": np.where(created_recently & done, (resolved - ts) / 3600, np.nan),
                f"tickets_reopened_{long}d": np.where(created_recently & done, reopened, np.nan),
                "_csat_recent": np.where(resolved_recently, csat, np.nan),
                "_last": ts,
                "_cutoff": cutoff,
            }
        )
        g = f.groupby("_row")
        counts = [f"tickets_{w}d" for w in windows] + [
            "tickets_open",
            "tickets_high_priority_open",
            f"tickets_high_priority_{long}d",
            f"tickets_reopened_{long}d",
        ]
        agg = g[counts].sum()  # NaN-skipping: no reopen count known counts as 0
        agg[f"tickets_resolution_hours_{long}d"] = g["_hours"].mean()
        agg[f"tickets_csat_{long}d"] = g["_csat_recent"].mean()
        last, tie = _last_by(j, "_resolved", "csat", done & ~np.isnan(csat), ties)
        agg["tickets_csat_last"] = last
        agg["tickets_days_since_last"] = (g["_cutoff"].first() - g["_last"].max()) / DAY
        parts.append(agg)
        flags.append(pd.DataFrame({"tickets_csat_last": tie}))
    return _concat(parts), _concat(flags)


def _chats(spine: pd.DataFrame, chats: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    windows = plan.settings.windows_days
    columns = {
        "conversation_id": chats["conversation_id"].astype(object).to_numpy(),
        "_customer": (chats["author"].astype(object) == "customer").to_numpy(),
    }
    parts = []
    # Chats look back usage_lookback_days, widened to the longest window.
    lookback = max(plan.settings.usage_lookback_days, max(plan.settings.windows_days))
    for j in _joined(spine, chats, "sent_at", lookback, columns):
        cutoff, ts = j["_cutoff"].to_numpy(), j["_ts"].to_numpy()
        conv, by_customer = j["conversation_id"], j["_customer"].to_numpy(dtype=bool)
        f = pd.DataFrame({"_row": j["_row"].to_numpy(), "_last": ts, "_cutoff": cutoff})
        for w in windows:
            within = ts >= cutoff - w * DAY
            f[f"chat_conversations_{w}d"] = conv.where(within).to_numpy()
            f[f"chat_customer_messages_{w}d"] = (within & by_customer).astype(float)
        g = f.groupby("_row")
        agg = pd.DataFrame(index=g.size().index)
        for w in windows:
            agg[f"chat_conversations_{w}d"] = g[f"chat_conversations_{w}d"].nunique()
            agg[f"chat_customer_messages_{w}d"] = g[f"chat_customer_messages_{w}d"].sum()
        agg["chat_days_since_last"] = (g["_cutoff"].first() - g["_last"].max()) / DAY
        parts.append(agg)
    return _concat(parts)


def _nps(spine: pd.DataFrame, nps: pd.DataFrame, ties: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = {"score": pd.to_numeric(nps["score"]).to_numpy(dtype=float)}
    parts, flags = [], []
    for j in _joined(spine, nps, "responded_at", None, columns):  # all history
        g = j.groupby("_row")
        agg = pd.DataFrame({"nps_mean": g["score"].mean(), "nps_responses": g["score"].size()})
        last, tie = _last_by(j, "_ts", "score", np.ones(len(j), dtype=bool), ties)
        agg["nps_last_score"] = last
        agg["nps_last_age_days"] = (g["_cutoff"].first() - g["_ts"].max()) / DAY
        n = agg["nps_responses"]
        earlier_mean = (g["score"].sum() - last) / (n - 1)
        agg["nps_trend"] = (last - earlier_mean).where(n > 1)
        parts.append(agg)
        flags.append(pd.DataFrame({"nps_last_score": tie, "nps_trend": tie}))
    return _concat(parts), _concat(flags)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts) if parts else pd.DataFrame()


def _static(spine: pd.DataFrame, tables: ValidatedTables, plan: FeaturePlan) -> pd.DataFrame:
    attributes = static_attributes(tables["customers"], plan.attributes)
    joined = spine[["customer_id", "_cutoff"]].merge(attributes, on="customer_id", how="left")
    out = joined.drop(columns=["customer_id", "_cutoff", "signup_date"])
    out.insert(0, "tenure_days", (joined["_cutoff"] - _epoch_seconds(joined["signup_date"])) / DAY)
    return out


def _build(
    tables: ValidatedTables, pairs: pd.DataFrame, plan: FeaturePlan, ties: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    spine = _spine(pairs)
    names = plan.feature_names
    ambiguous = pd.DataFrame(False, index=spine.index, columns=names)
    if len(spine) == 0:
        return pd.DataFrame(columns=[*KEYS, *names]), ambiguous
    out = spine[list(KEYS)].copy()
    columns: dict[str, pd.Series | np.ndarray] = {}
    static = _static(spine, tables, plan)
    for column in static.columns:
        columns[column] = static[column].to_numpy()
    zero = set(plan.zero_when_absent())
    rates = plan.size_rates()
    for table, group in plan.group_columns().items():
        if table == "static" or table == "account_size":
            continue
        if not tables.has(table):
            # Absent at scoring time: every column of the table is unknown, counts included.
            for name, _ in group:
                columns[name] = np.full(len(spine), np.nan)
            continue
        tied = pd.DataFrame()
        if table == "usage":
            part = _usage(spine, tables[table], plan)
        elif table == "tickets":
            part, tied = _tickets(spine, tables[table], plan, ties)
        elif table == "chats":
            part = _chats(spine, tables[table], plan)
        else:
            part, tied = _nps(spine, tables[table], ties)
        for name, _ in group:
            values = (
                part[name].reindex(spine["_row"]).to_numpy(dtype=float)
                if name in part.columns
                else np.full(len(spine), np.nan)
            )
            if name in zero:
                values = np.where(np.isnan(values), 0.0, values)
            columns[name] = values
        for name in _LAST_COLUMNS.get(table, ()):
            if name in tied.columns:
                hit = tied[name].reindex(spine["_row"], fill_value=False).to_numpy(dtype=bool)
                ambiguous[name] = hit
    for name, (numerator, unit) in rates.items():
        size = pd.to_numeric(pd.Series(columns[plan.sizes[unit]]), errors="coerce").to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[name] = np.where(size > 0, np.asarray(columns[numerator]) / size, np.nan)
    for name in names:
        values = columns[name]
        if name in plan.categorical:
            series = pd.Series(values, dtype=object)
            out[name] = series.where(series.notna(), None).to_numpy(dtype=object)
        else:
            out[name] = pd.to_numeric(pd.Series(values), errors="coerce").astype(float).to_numpy()
    return out, ambiguous


def build_features_pandas(
    tables: ValidatedTables, pairs: pd.DataFrame, plan: FeaturePlan
) -> pd.DataFrame:
    """The same frame as ``features.build.build_features``, computed with pandas alone."""
    frame, _ = _build(tables, pairs, plan)
    return frame


def ambiguous_last_values(
    tables: ValidatedTables, pairs: pd.DataFrame, plan: FeaturePlan
) -> pd.DataFrame:
    """Boolean frame (rows as ``build_features_pandas``, one column per feature): True where a
    "last" value depends on how a tie on its time is broken, so engines may disagree."""
    _, ambiguous = _build(tables, pairs, plan, ties=True)
    return ambiguous
