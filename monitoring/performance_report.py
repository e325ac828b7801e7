"""`npsrisk monitor performance`: realized figures per period and segment, next to the
training-time figures and the CBPE estimate, with decay flags; HTML + JSON + index."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.performance import (
    join_outcomes,
    latest_per_period,
    performance_table,
    predictions_from_batches,
    predictions_from_log,
    training_figures,
)
from monitoring.reference import Reference
from monitoring.report_pages import page, table, verdict_class, write_index, write_summary
from npsrisk.settings import ConfigError

PERIOD_DAYS = 31
SHOWN = [
    "period", "segment", "value", "model_version", "n", "churn_rate", "expected_churn_rate",
    "roc_auc", "roc_auc_low", "roc_auc_high", "expected_roc_auc", "training_roc_auc", "pr_auc",
    "calibration_error", "expected_calibration_error", "brier", "n_answered", "mae",
    "training_mae", "detractor_recall", "detractor_precision", "predicted_nps", "decayed",
    "decay_reasons",
]  # fmt: skip


@dataclass
class PerformanceResult:
    summary: dict
    folder: Path
    table: pd.DataFrame

    @property
    def decayed(self) -> bool:
        return self.summary["verdict"] == "decay"


def _clean(value):
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else round(float(value), 6)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def run_performance(
    settings,
    reference: Reference,
    data_path: Path,
    batch_paths: list[Path],
    use_log: bool,
    folder: Path,
) -> PerformanceResult:
    from features.loading import load_tables
    from features.validation import validate_tables

    sources = []
    parts = []
    if batch_paths:
        parts.append(predictions_from_batches(batch_paths))
        sources.append(f"{len(batch_paths)} batch output(s)")
    if use_log:
        logged = predictions_from_log(settings.inference_log_path)
        if len(logged):
            parts.append(logged)
            sources.append("the inference log")
    predictions = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if predictions.empty:
        raise ConfigError(
            "no predictions to judge: give --batch FILE (a `npsrisk score` output) or serve "
            "with serving.inference_log on"
        )
    predictions["predicted_at"] = pd.to_datetime(predictions["predicted_at"]).dt.normalize()
    periods = sorted(predictions["predicted_at"].unique())
    picked = latest_per_period(predictions, [pd.Timestamp(p) for p in periods], PERIOD_DAYS)
    tables = validate_tables(load_tables(data_path))
    horizon = int(reference.bundle.info.get("horizon_days", settings.training.horizon_days))
    joined, notes = join_outcomes(picked, tables, horizon)
    if joined.empty:
        raise ConfigError("no period has known outcomes yet: " + "; ".join(notes))
    training = training_figures(reference.frame, settings.monitoring.segment_columns)
    result = performance_table(joined, training, settings)
    overall = result[result["segment"] == "all"]
    decayed = result[result["decayed"]]
    reasons = [f"{r.period} {r.segment}={r.value}: {r.decay_reasons}" for r in decayed.itertuples()]
    periods_rows = [
        {k: _clean(v) for k, v in row.items() if k in SHOWN} for row in overall.to_dict("records")
    ]
    summary = {
        "kind": "performance",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"name": reference.model_name, "version": reference.version},
        "verdict": "decay" if reasons else "no decay",
        "reasons": reasons,
        "headline": (
            reasons[0]
            if reasons
            else f"{len(overall)} period(s) judged; realized ROC-AUC "
            + ", ".join(f"{r['roc_auc']:.3f}" for r in periods_rows if r.get("roc_auc"))
        ),
        "sources": sources,
        "periods": periods_rows,
        "training": {k: _clean(v) for k, v in training.get(("all", "all"), {}).items()},
        "rows": {"predictions": len(predictions), "joined": len(joined)},
        "horizon_days": horizon,
        "notes": notes,
        "settings": settings.monitoring.model_dump(mode="json"),
        "files": {"html": "report.html", "table": "performance.csv"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    result.to_csv(folder / "performance.csv", index=False)
    write_summary(folder, summary)
    (folder / "report.html").write_text(_html(summary, result))
    write_index(settings.reports_path)
    return PerformanceResult(summary, folder, result)


def _html(summary: dict, result: pd.DataFrame) -> str:
    shown = result[[c for c in SHOWN if c in result]]
    parts = [
        f"<p>Model {html.escape(summary['model']['name'])} v{summary['model']['version']}, "
        f"predictions from {html.escape(', '.join(summary['sources']))}, outcomes within "
        f"{summary['horizon_days']} days. Verdict: <span class='"
        f"{verdict_class(summary['verdict'])}'>{summary['verdict']}</span></p>",
        "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in summary["reasons"]) + "</ul>",
        "<p class='note'>Decay is flagged when a figure moved the wrong way by more than the "
        "threshold (monitoring.decay_auc, monitoring.decay_mae) and its 90% bootstrap "
        "interval excludes the training-time figure, on at least monitoring.min_labelled_rows "
        "rows. expected_* columns are the CBPE estimate from the predictions alone.</p>",
        "<h2>By period</h2>",
        table(shown[shown["segment"] == "all"]),
        "<h2>By period and segment</h2>",
        table(shown[shown["segment"] != "all"]),
    ]
    if summary["notes"]:
        parts += [
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in summary["notes"])
            + "</ul>"
        ]
    parts.append(
        "<p><a href='performance.csv'>full table</a> · <a href='summary.json'>"
        "summary.json</a> · <a href='../../index.html'>all reports</a></p>"
    )
    return page("Performance report", "".join(parts))
