"""Every monitoring report under <home>/reports/<kind>/<stamp>/ with a summary.json, and the
index page listing them (newest first) with a trend plot of the key figures."""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path

import pandas as pd

KINDS = ("drift", "performance", "retrain")
STYLE = """<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left}th{background:#f3f3f3}.drift,.decay,.retrain{color:#b00;font-weight:bold}
.ok{color:#070}.note{color:#555}</style>"""


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"{STYLE}</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def table(frame: pd.DataFrame, digits: int = 4) -> str:
    if frame is None or frame.empty:
        return "<p class='note'>none</p>"
    return frame.to_html(
        index=False, float_format=lambda v: f"{v:.{digits}f}", border=0, na_rep="", escape=True
    )


def verdict_class(verdict: str) -> str:
    return "ok" if verdict in ("no drift", "no decay", "kept", "not needed") else "drift"


def write_summary(folder: Path, summary: dict) -> Path:
    path = folder / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str, allow_nan=False))
    return path


def read_summaries(reports_path: Path) -> list[dict]:
    """Every report's summary, newest first, with its folder."""
    out = []
    for kind in KINDS:
        for path in (reports_path / kind).glob("*/summary.json"):
            try:
                summary = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            summary["_folder"] = path.parent
            out.append(summary)
    out.sort(key=lambda s: s.get("created_at", ""), reverse=True)
    return out


def _trend_plot(summaries: list[dict], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drift = [s for s in summaries if s.get("kind") == "drift"]
    perf = [s for s in summaries if s.get("kind") == "performance"]
    if not drift and not perf:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    if drift:
        d = pd.DataFrame(
            {
                "when": [
                    pd.Timestamp(s["windows"]["current"].get("end") or s["created_at"])
                    for s in drift
                ],
                "share": [s.get("share_drifted", float("nan")) for s in drift],
                "churn": [s.get("current_means", {}).get("churn_probability") for s in drift],
            }
        ).sort_values("when")
        axes[0].plot(d["when"], d["share"], "o-", label="share of features drifted")
        axes[0].plot(d["when"], d["churn"], "s--", label="mean churn probability")
        axes[0].set_title("Drift by current window")
        axes[0].legend()
        axes[0].tick_params(axis="x", rotation=30)
    if perf:
        rows = [r for s in perf for r in s.get("periods", [])]
        if rows:
            p = pd.DataFrame(rows).drop_duplicates("period", keep="first").sort_values("period")
            when = pd.to_datetime(p["period"])
            for column, style, label in (
                ("roc_auc", "o-", "realized ROC-AUC"),
                ("expected_roc_auc", "o--", "estimated ROC-AUC (CBPE)"),
                ("training_roc_auc", ":", "ROC-AUC at training"),
            ):
                if column in p:
                    axes[1].plot(when, p[column], style, label=label)
            axes[1].set_title("Churn ROC-AUC by period")
            axes[1].legend()
            axes[1].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_index(reports_path: Path) -> Path:
    """<home>/reports/index.html: every monitoring report, newest first, and the trend."""
    reports_path.mkdir(parents=True, exist_ok=True)
    summaries = read_summaries(reports_path)
    rows = []
    for s in summaries:
        folder: Path = s["_folder"]
        link = folder / "report.html"
        href = link.relative_to(reports_path).as_posix()
        model = s.get("model", {})
        rows.append(
            "<tr>"
            f"<td>{html.escape(str(s.get('created_at', ''))[:19].replace('T', ' '))}</td>"
            f"<td>{html.escape(s.get('kind', ''))}</td>"
            f"<td>{html.escape(str(model.get('name', '')))} v{html.escape(str(model.get('version', '')))}</td>"  # noqa: E501
            f"<td class='{verdict_class(s.get('verdict', ''))}'>{html.escape(s.get('verdict', ''))}</td>"  # noqa: E501
            f"<td>{html.escape(s.get('headline', ''))}</td>"
            f"<td><a href='{html.escape(href)}'>report</a></td></tr>"
        )
    plotted = _trend_plot(summaries, reports_path / "trend.png")
    body = (
        f"<p class='note'>{len(summaries)} reports, newest first; written "
        f"{datetime.now().isoformat(timespec='seconds')}.</p>"
        + (
            "<img src='trend.png' alt='trend of key figures' style='max-width:100%'>"
            if plotted
            else ""
        )
        + "<table><tr><th>date</th><th>kind</th><th>model</th><th>verdict</th><th>headline</th>"
        "<th></th></tr>" + "".join(rows) + "</table>"
    )
    path = reports_path / "index.html"
    path.write_text(page("npsrisk monitoring reports", body))
    return path
