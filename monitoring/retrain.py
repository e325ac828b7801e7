"""`npsrisk retrain [--if-needed] DATA`: decide from monitoring (drift, decay, model age)
whether to retrain, then run the same training entry point and promotion gate as
`npsrisk train`, recording in MLflow what triggered it."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from monitoring.report_pages import page, read_summaries, write_index, write_summary


@dataclass
class Triggers:
    reasons: list[str] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    age_days: float | None = None

    @property
    def needed(self) -> bool:
        return bool(self.reasons)


def model_age_days(trained_at: str | None, now: datetime | None = None) -> float | None:
    if not trained_at:
        return None
    then = pd.Timestamp(trained_at)
    then = then.tz_localize("UTC") if then.tzinfo is None else then
    return (pd.Timestamp(now or datetime.now(UTC)) - then).total_seconds() / 86400


def decide_triggers(
    drift: dict | None,
    performance: dict | None,
    age_days: float | None,
    max_age_days: int,
) -> Triggers:
    """Pure: which monitoring results call for a retrain."""
    t = Triggers(age_days=age_days)
    for kind, summary, bad in (("drift", drift, "drift"), ("performance", performance, "decay")):
        if summary is None:
            continue
        t.verdicts[kind] = summary["verdict"]
        if "_folder" in summary:
            t.reports[kind] = str(Path(summary["_folder"]) / "report.html")
        if summary["verdict"] == bad:
            t.reasons.append(f"{kind}: {summary.get('headline', bad)}")
    if age_days is not None and age_days > max_age_days:
        t.reasons.append(f"model age: {age_days:.0f} days > {max_age_days}")
    return t


def latest_summary(reports_path: Path, kind: str, version: str) -> dict | None:
    for summary in read_summaries(reports_path):
        if summary.get("kind") == kind and str(summary.get("model", {}).get("version")) == version:
            return summary
    return None


def record_trigger(settings, run_id: str, triggers: Triggers, if_needed: bool) -> None:
    """Tags and an artifact on the retrain's MLflow run: what triggered it and the reports."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    reason = "; ".join(triggers.reasons) if triggers.reasons else "unconditional retrain"
    client.set_tag(run_id, "stage", "retrain")
    client.set_tag(run_id, "retrain.trigger", reason[:5000])
    client.set_tag(run_id, "retrain.if_needed", str(if_needed).lower())
    for kind, verdict in triggers.verdicts.items():
        client.set_tag(run_id, f"retrain.{kind}_verdict", verdict)
    client.log_dict(
        run_id,
        {
            "reasons": triggers.reasons,
            "reports": triggers.reports,
            "verdicts": triggers.verdicts,
            "model_age_days": triggers.age_days,
            "if_needed": if_needed,
        },
        "retrain_trigger.json",
    )


def write_retrain_report(settings, folder: Path, summary: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_summary(folder, summary)
    body = (
        f"<p>Decision: <b>{html.escape(summary['verdict'])}</b>. "
        f"{html.escape(summary['headline'])}</p><h2>Triggers</h2><ul>"
        + "".join(f"<li>{html.escape(r)}</li>" for r in summary["reasons"] or ["none"])
        + "</ul><h2>Reports read</h2><ul>"
        + "".join(
            f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in summary["reports"].items()
        )
        + f"</ul><pre>{html.escape(json.dumps(summary.get('training', {}), indent=2))}</pre>"
        + "<p><a href='../../index.html'>all reports</a></p>"
    )
    (folder / "report.html").write_text(page("Retrain decision", body))
    write_index(settings.reports_path)
