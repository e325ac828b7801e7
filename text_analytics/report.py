"""The theme report for people: detractor themes, NPS impact, sentiment trends and verbatims."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from features.privacy import mask_personal_data
from text_analytics.sentiment import DETRACTOR_MAX
from text_analytics.signals import THEME_PREFIX, find_theme_columns, parse_timestamps

PROMOTER_MIN = 9
# A theme is flagged in a window when at least MIN_CUSTOMERS distinct customers raised it
# there AND its daily rate of mentions is at least RISE times its rate over the PRIOR_WINDOWS
# windows of the same length before: a theme that is always this loud is no news.
MIN_CUSTOMERS = 3
RISE = 1.5
PRIOR_WINDOWS = 3
NPS_SOURCE = "nps_responses"
REPORT_FILES = {
    "html": "theme_report.html",
    "detractor_themes": "detractor_themes.csv",
    "theme_impact": "theme_impact.csv",
    "sentiment_trend": "sentiment_trend.csv",
    "verbatims": "verbatims.csv",
}


def compute_nps(scores: pd.Series | np.ndarray | Sequence[float]) -> float:
    """Net Promoter Score: % promoters (9-10) minus % detractors (0-6); NaN without answers."""
    values = np.asarray(scores, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan")
    return float(100 * ((values >= PROMOTER_MIN).mean() - (values <= DETRACTOR_MAX).mean()))


def _timestamps(values: pd.Series) -> pd.Series:
    return parse_timestamps(pd.Series(values))


def _in_window(timestamps: pd.Series, as_of: pd.Timestamp, days: int) -> np.ndarray:
    """Rows dated in (as_of - days, as_of]."""
    ts = _timestamps(timestamps)
    inside = (ts > as_of - pd.Timedelta(days=days)) & (ts <= as_of)
    return inside.fillna(False).to_numpy(dtype=bool)


def _flags(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[column].fillna(False).to_numpy(dtype=bool)


def _theme_ids(*frames: pd.DataFrame) -> list[str]:
    ids: list[str] = []
    for frame in frames:
        for column in find_theme_columns(frame):
            theme = column[len(THEME_PREFIX) :]
            if theme not in ids:
                ids.append(theme)
    return ids


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; score it with score_messages first")


def _customers(frame: pd.DataFrame) -> set[str]:
    return set(frame["customer_id"].astype(str)) if "customer_id" in frame.columns else set()


def _theme_label(theme: str, labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(theme, theme.replace("_", " "))


def count_detractor_themes(
    messages_scored: pd.DataFrame,
    nps_responses_scored: pd.DataFrame,
    as_of: pd.Timestamp,
    windows: Sequence[int] = (7, 30),
    min_customers: int = MIN_CUSTOMERS,
    labels: Mapping[str, str] | None = None,
    rise: float = RISE,
    prior_windows: int = PRIOR_WINDOWS,
) -> pd.DataFrame:
    """Themes of detractor NPS comments and negative messages, per look-back window.

    One row per (window_days, theme): ``label`` (the taxonomy's words), ``mentions`` =
    ``detractor_comments`` (NPS comments with a score <= 6 coded with the theme) +
    ``negative_messages`` (messages flagged ``negative`` coded with it; NPS comments among
    the messages are skipped there, they count through their score), ``customers`` (distinct
    authors), ``per_day`` and ``prior_per_day`` (mentions a day in the window and over the
    ``prior_windows`` windows before it) and ``flagged``: at least ``min_customers``
    customers AND a rate at least ``rise`` times the prior one (see MIN_CUSTOMERS).
    Windows are (as_of - days, as_of].
    """
    _require(nps_responses_scored, ["responded_at", "score"], "nps_responses_scored")
    _require(messages_scored, ["timestamp", "negative"], "messages_scored")
    messages = messages_scored
    if "source" in messages.columns:
        messages = messages[messages["source"].astype(str).to_numpy() != NPS_SOURCE]
    negative = messages[_flags(messages, "negative")]
    scores = pd.to_numeric(nps_responses_scored["score"], errors="coerce")
    detractors = nps_responses_scored[(scores <= DETRACTOR_MAX).to_numpy(dtype=bool)]
    themes = _theme_ids(nps_responses_scored, messages_scored)
    rows = []
    for days in windows:
        prior_end = as_of - pd.Timedelta(days=days)
        periods = {
            "now": (
                negative[_in_window(negative["timestamp"], as_of, days)],
                detractors[_in_window(detractors["responded_at"], as_of, days)],
            ),
            "prior": (
                negative[_in_window(negative["timestamp"], prior_end, prior_windows * days)],
                detractors[_in_window(detractors["responded_at"], prior_end, prior_windows * days)],
            ),
        }
        for theme in themes:
            column = THEME_PREFIX + theme
            in_messages, in_nps = (f[_flags(f, column)] for f in periods["now"])
            prior = sum(int(_flags(f, column).sum()) for f in periods["prior"])
            mentions = len(in_messages) + len(in_nps)
            customers = len(_customers(in_messages) | _customers(in_nps))
            per_day, prior_per_day = mentions / days, prior / (prior_windows * days)
            rows.append(
                {
                    "window_days": days,
                    "theme": theme,
                    "label": _theme_label(theme, labels),
                    "mentions": mentions,
                    "detractor_comments": len(in_nps),
                    "negative_messages": len(in_messages),
                    "customers": customers,
                    "per_day": per_day,
                    "prior_per_day": prior_per_day,
                    "flagged": bool(
                        customers >= min_customers
                        and per_day > prior_per_day
                        and per_day >= rise * prior_per_day
                    ),
                }
            )
    columns = [
        "window_days",
        "theme",
        "label",
        "mentions",
        "detractor_comments",
        "negative_messages",
        "customers",
        "per_day",
        "prior_per_day",
        "flagged",
    ]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(
        ["window_days", "mentions"], ascending=[True, False], kind="stable"
    ).reset_index(drop=True)


def measure_theme_impact(
    nps_responses_scored: pd.DataFrame,
    as_of: pd.Timestamp,
    windows: Sequence[int] = (30, 90),
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Each theme's impact on NPS: NPS minus NPS recomputed without that theme's responses.

    Over the responses dated in (as_of - days, as_of] (with or without a comment). A negative
    impact means the theme drags NPS down by that many points. One row per (window_days,
    theme): responses, theme_responses, nps, nps_without_theme, impact.
    """
    _require(nps_responses_scored, ["responded_at", "score"], "nps_responses_scored")
    rows = []
    for days in windows:
        window = nps_responses_scored[_in_window(nps_responses_scored["responded_at"], as_of, days)]
        scores = pd.to_numeric(window["score"], errors="coerce").to_numpy(dtype=float)
        overall = compute_nps(scores)
        for theme in _theme_ids(nps_responses_scored):
            has_theme = _flags(window, THEME_PREFIX + theme)
            without = compute_nps(scores[~has_theme])
            rows.append(
                {
                    "window_days": days,
                    "theme": theme,
                    "label": _theme_label(theme, labels),
                    "responses": len(window),
                    "theme_responses": int(has_theme.sum()),
                    "nps": overall,
                    "nps_without_theme": without,
                    "impact": overall - without,
                }
            )
    columns = [
        "window_days",
        "theme",
        "label",
        "responses",
        "theme_responses",
        "nps",
        "nps_without_theme",
        "impact",
    ]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["window_days", "impact"], kind="stable").reset_index(drop=True)


def summarize_sentiment_trend(
    messages_scored: pd.DataFrame,
    customers: pd.DataFrame,
    segment: str = "plan_tier",
) -> pd.DataFrame:
    """Monthly mean text_score and share of negative messages per customer segment.

    Columns month (first day), segment, messages, mean_text_score, share_negative. Customers
    without a segment value fall under 'unknown'; without the column, everyone is 'all'.
    """
    _require(messages_scored, ["timestamp", "text_score", "negative"], "messages_scored")
    frame = messages_scored[["customer_id", "timestamp", "text_score", "negative"]].copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    if segment in customers.columns:
        segments = customers[["customer_id", segment]].copy()
        segments["customer_id"] = segments["customer_id"].astype(str)
        segments = segments.drop_duplicates("customer_id").rename(columns={segment: "segment"})
        frame = frame.merge(segments, on="customer_id", how="left")
        frame["segment"] = (
            frame["segment"].astype(object).where(frame["segment"].notna(), "unknown")
        )
    else:
        frame["segment"] = "all"
    frame = frame[frame["text_score"].notna()]
    frame["month"] = _timestamps(frame["timestamp"]).dt.to_period("M").dt.to_timestamp()
    frame["negative"] = frame["negative"].astype(float)
    trend = (
        frame.groupby(["month", "segment"], observed=True)
        .agg(
            messages=("text_score", "size"),
            mean_text_score=("text_score", "mean"),
            share_negative=("negative", "mean"),
        )
        .reset_index()
    )
    trend["segment"] = trend["segment"].astype(str)
    return trend.sort_values(["segment", "month"], kind="stable").reset_index(drop=True)


def select_verbatims(
    messages_scored: pd.DataFrame,
    as_of: pd.Timestamp,
    text_column: str = "text",
    per_theme: int = 3,
    days: int = 30,
) -> pd.DataFrame:
    """The most negative recent texts per theme, personal data masked.

    Texts of the last ``days`` (all time for a theme with none), lowest text_score first, one
    per distinct text. Columns theme, timestamp, source, customer_id, text_score, text.
    """
    _require(messages_scored, ["timestamp", "text_score", text_column], "messages_scored")
    recent = _in_window(messages_scored["timestamp"], as_of, days)
    rows = []
    for theme in _theme_ids(messages_scored):
        about = _flags(messages_scored, THEME_PREFIX + theme)
        pool = messages_scored[about & recent]
        if pool.empty:
            pool = messages_scored[about & (_timestamps(messages_scored["timestamp"]) <= as_of)]
        pool = pool.sort_values("text_score", kind="stable").drop_duplicates(text_column)
        for _, row in pool.head(per_theme).iterrows():
            rows.append(
                {
                    "theme": theme,
                    "timestamp": row["timestamp"],
                    "source": row.get("source", ""),
                    "customer_id": row.get("customer_id", ""),
                    "text_score": row["text_score"],
                    "text": mask_personal_data(str(row[text_column])),
                }
            )
    columns = ["theme", "timestamp", "source", "customer_id", "text_score", "text"]
    return pd.DataFrame(rows, columns=columns)


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plot_detractor_themes(table: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    pivot = table.pivot_table(
        index="label", columns="window_days", values="mentions", aggfunc="sum"
    )
    if pivot.empty:
        ax.text(0.5, 0.5, "no detractor mentions", ha="center", va="center")
    else:
        pivot = pivot.sort_values(pivot.columns[-1])
        pivot.columns = [f"last {d} days" for d in pivot.columns]
        pivot.plot.barh(ax=ax)
        ax.set_xlabel("mentions in detractor comments and negative messages")
    ax.set_title("Detractor themes")
    return _png(fig)


def _plot_impact(table: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    latest = table[table["window_days"] == table["window_days"].max()] if len(table) else table
    latest = latest.dropna(subset=["impact"])
    if latest.empty:
        ax.text(0.5, 0.5, "no NPS responses in the window", ha="center", va="center")
    else:
        latest = latest.sort_values("impact")
        colors = ["#c0392b" if v < 0 else "#27ae60" for v in latest["impact"]]
        ax.barh(latest["label"], latest["impact"], color=colors)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel("NPS points (NPS minus NPS without the theme's responses)")
        ax.set_title(f"Theme impact on NPS, last {int(latest['window_days'].iloc[0])} days")
    return _png(fig)


def _plot_trend(trend: pd.DataFrame) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    if trend.empty:
        axes[0].text(0.5, 0.5, "no scored messages", ha="center", va="center")
    for segment, part in trend.groupby("segment"):
        axes[0].plot(part["month"], part["mean_text_score"], marker=".", label=str(segment))
        axes[1].plot(part["month"], 100 * part["share_negative"], marker=".", label=str(segment))
    axes[0].set_title("Mean text score (0-10) per month")
    axes[1].set_title("Negative messages (%) per month")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=45)
    if not trend.empty:
        axes[1].legend(title="segment", fontsize=8)
    return _png(fig)


def _table_html(frame: pd.DataFrame, floats: str = "{:.1f}") -> str:
    if frame.empty:
        return "<p><em>nothing in this window</em></p>"
    return frame.to_html(
        index=False, escape=True, float_format=floats.format, border=0, classes="data"
    )


def _as_timestamp(
    as_of: pd.Timestamp | date | datetime | str | None, *frames: pd.Series
) -> pd.Timestamp:
    if as_of is not None:
        return _timestamps(pd.Series([as_of])).iloc[0]
    latest = [_timestamps(f).max() for f in frames if len(f)]
    latest = [t for t in latest if pd.notna(t)]
    if not latest:
        raise ValueError("no dated rows to report on; pass as_of")
    return max(latest)


def render_theme_report(
    detractors: pd.DataFrame,
    impact: pd.DataFrame,
    trend: pd.DataFrame,
    verbatims: pd.DataFrame,
    as_of: pd.Timestamp,
    model_description: str | None = None,
    min_customers: int = MIN_CUSTOMERS,
    labels: Mapping[str, str] | None = None,
) -> str:
    """The report as one self-contained HTML page (plots embedded as PNG)."""
    esc = html.escape
    flagged = detractors[detractors["flagged"]]
    flags = (
        "".join(
            f"<li><strong>{esc(r.label)}</strong>: {r.mentions} mentions from {r.customers} "
            f"customers in the last {r.window_days} days, {r.per_day:.2f} a day against "
            f"{r.prior_per_day:.2f} before</li>"
            for r in flagged.itertuples()
        )
        or "<li>none</li>"
    )
    blocks = []
    for theme, part in verbatims.groupby("theme", sort=False):
        items = "".join(
            f"<li><q>{esc(str(r.text))}</q> <small>({esc(str(r.source))}, "
            f"{esc(str(r.timestamp))[:10]}, score {r.text_score:.1f})</small></li>"
            for r in part.itertuples()
        )
        blocks.append(f"<h3>{esc(_theme_label(str(theme), labels))}</h3><ul>{items}</ul>")
    note = f"<p>Scores from: {esc(model_description)}.</p>" if model_description else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer themes report</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table.data {{ border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1.5em; }}
table.data td, table.data th {{ padding: 3px 10px; border-bottom: 1px solid #ddd; }}
.flag {{ background: #fdecea; padding: 0.5em 1em; border-left: 4px solid #c0392b; }}
q {{ font-style: italic; }}
</style></head><body>
<h1>Customer themes report</h1>
<p>As of {as_of:%Y-%m-%d} at {as_of:%H:%M} UTC. Texts are coded with themes by the
taxonomy's seed terms; text_score is the NPS score (0-10) a text suggests, negative means
P(detractor) &ge; 0.5.</p>
{note}
<h2>Detractor themes</h2>
<p>Themes mentioned in detractor NPS comments (score 0-6) and in negative messages.</p>
<div class="flag"><p>Rising themes: raised by {min_customers} or more customers in the window
and at least {RISE:g} times as often a day as in the {PRIOR_WINDOWS} windows before:</p>
<ul>{flags}</ul></div>
<img alt="detractor themes" src="data:image/png;base64,{_plot_detractor_themes(detractors)}">
{_table_html(detractors.drop(columns="theme"))}
<h2>Impact on NPS</h2>
<p>Impact = NPS minus NPS recomputed without the responses coded with the theme
(NPS = % promoters &minus; % detractors over the responses in the window).</p>
<img alt="theme impact on NPS" src="data:image/png;base64,{_plot_impact(impact)}">
{_table_html(impact.drop(columns="theme"))}
<h2>Sentiment trend per segment</h2>
<img alt="sentiment trend" src="data:image/png;base64,{_plot_trend(trend)}">
{_table_html(trend.tail(36), floats="{:.2f}")}
<h2>Verbatims per theme</h2>
<p>The most negative recent texts per theme; e-mail addresses and phone numbers masked.</p>
{"".join(blocks) or "<p><em>no themed texts</em></p>"}
</body></html>
"""


def write_theme_report(
    messages_scored: pd.DataFrame,
    nps_responses_scored: pd.DataFrame,
    customers: pd.DataFrame,
    out_dir: Path,
    as_of: pd.Timestamp | date | datetime | str | None = None,
    windows: Sequence[int] = (7, 30),
    impact_windows: Sequence[int] = (30, 90),
    min_customers: int = MIN_CUSTOMERS,
    segment: str = "plan_tier",
    text_column: str = "text",
    model_description: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write the HTML theme report and its tables as CSV; returns the paths by name.

    ``messages_scored`` is ``score_messages(extract_customer_texts(tables), "text", ...)``;
    ``nps_responses_scored`` is ``score_messages(tables["nps_responses"], "comment", ...)``.
    ``as_of`` defaults to the latest dated row. Every text written is masked again.
    """
    as_of_ts = _as_timestamp(
        as_of,
        messages_scored.get("timestamp", pd.Series(dtype="datetime64[ns]")),
        nps_responses_scored.get("responded_at", pd.Series(dtype="datetime64[ns]")),
    )
    detractors = count_detractor_themes(
        messages_scored, nps_responses_scored, as_of_ts, windows, min_customers, labels
    )
    impact = measure_theme_impact(nps_responses_scored, as_of_ts, impact_windows, labels)
    trend = summarize_sentiment_trend(messages_scored, customers, segment)
    verbatims = select_verbatims(messages_scored, as_of_ts, text_column, days=max(windows))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file_name for name, file_name in REPORT_FILES.items()}
    paths["html"].write_text(
        render_theme_report(
            detractors,
            impact,
            trend,
            verbatims,
            as_of_ts,
            model_description,
            min_customers,
            labels,
        ),
        encoding="utf-8",
    )
    detractors.to_csv(paths["detractor_themes"], index=False)
    impact.to_csv(paths["theme_impact"], index=False)
    trend.to_csv(paths["sentiment_trend"], index=False)
    verbatims.to_csv(paths["verbatims"], index=False)
    return paths
