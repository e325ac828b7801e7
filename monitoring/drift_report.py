"""`npsrisk monitor drift`: a current window against the model's reference, through
Evidently overall and per segment, written as HTML + JSON, with the verdict."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.drift import (
    PREDICTION_FEATURES,
    ColumnDrift,
    drift_verdict,
    is_by_construction,
    segment_drift,
)
from monitoring.reference import Reference
from monitoring.report_pages import page, table, verdict_class, write_index, write_summary
from monitoring.windows import Window, reference_window

TOP_FEATURES = 15


@dataclass
class DriftResult:
    summary: dict
    folder: Path
    segments: pd.DataFrame

    @property
    def drift(self) -> bool:
        return self.summary["verdict"] == "drift"


def _sample(frame: pd.DataFrame, limit: int, seed: int) -> tuple[pd.DataFrame, dict | None]:
    if len(frame) <= limit:
        return frame.reset_index(drop=True), None
    return frame.sample(limit, random_state=seed).reset_index(drop=True), {
        "rows": len(frame),
        "used": limit,
    }


def choose_columns(
    ref: pd.DataFrame, cur: pd.DataFrame, reference: Reference, has_features: bool
) -> tuple[list[str], list[str], list[str]]:
    """(numerical, categorical, notes): the columns both windows can be compared on."""
    categorical_features = set(reference.categorical)
    candidates = (list(reference.features) if has_features else []) + list(PREDICTION_FEATURES)
    numerical, categorical, notes = [], [], []
    for column in candidates:
        if column not in ref or column not in cur:
            continue
        is_cat = column in categorical_features or column == "nps_category"
        if ref[column].isna().all() or cur[column].isna().all():
            notes.append(f"{column}: empty in one window, not compared")
            continue
        if not is_cat and ref[column].nunique(dropna=True) < 2:
            notes.append(f"{column}: constant in the reference, not compared")
            continue
        (categorical if is_cat else numerical).append(column)
    return numerical, categorical, notes


def _prepare(frame: pd.DataFrame, numerical: list[str], categorical: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in numerical:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    for column in categorical:
        out[column] = out[column].astype(object).where(out[column].notna(), None).astype("str")
        out.loc[frame[column].isna().to_numpy(), column] = None
    return out


def run_drift(
    settings, reference: Reference, window: Window, folder: Path, seed: int = 0
) -> DriftResult:
    """Compare ``window`` with the reference; write report.html, evidently.html and
    summary.json into ``folder``; update the reports index."""
    from monitoring.evidently_run import run_evidently

    m = settings.monitoring
    base = reference_window(reference)
    ref, ref_sampled = _sample(base.frame, m.sample_rows, seed)
    cur, cur_sampled = _sample(window.frame, m.sample_rows, seed)
    numerical, categorical, notes = choose_columns(ref, cur, reference, window.has_features)
    notes = window.notes + notes
    if not numerical and not categorical:
        from npsrisk.settings import ConfigError

        raise ConfigError("no column can be compared between the reference and this window")
    ref, cur = _prepare(ref, numerical, categorical), _prepare(cur, numerical, categorical)
    folder.mkdir(parents=True, exist_ok=True)
    parsed = run_evidently(ref, cur, numerical, categorical, settings, folder / "evidently.html")
    notes += parsed.problems
    by_construction = list(m.by_construction)
    columns = [
        ColumnDrift(
            column,
            "prediction" if column in PREDICTION_FEATURES else "feature",
            str(v["method"]),
            float(v["threshold"]) if v["threshold"] is not None else float("nan"),
            float(v["score"]) if v["score"] is not None else float("nan"),
            bool(v["drifted"]),
            is_by_construction(column, by_construction),
        )
        for column, v in parsed.columns.items()
    ]
    segments = segment_drift(
        ref,
        cur,
        numerical + categorical,
        set(categorical),
        m.segment_columns,
        m.min_segment_rows,
        m.fdr_alpha,
        m.numerical_threshold,
        m.categorical_threshold,
        m.segment_match_on,
        m.segment_match_bins,
        "as_of" if m.segment_calm_baseline else None,
    )
    missing_segments = [s for s in m.segment_columns if s not in ref or s not in cur]
    if missing_segments and window.has_features:
        notes.append(f"segments not in both windows: {', '.join(missing_segments)}")
    verdict = drift_verdict(
        columns, segments, m.drift_share, by_construction, m.segment_min_columns
    )
    for one in verdict.segments_uncorroborated:
        notes.append(
            f"segment {one['segment']}={one['value']}: only {', '.join(one['columns'])} moved "
            f"({one['top_effect']:.3f}), its predictions did not; reported, not counted "
            "(monitoring.segment_min_columns)"
        )
    ranked = sorted(
        (c for c in columns if c.kind == "feature"), key=lambda c: -np.nan_to_num(c.score)
    )
    summary = {
        "kind": "drift",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"name": reference.model_name, "version": reference.version},
        "verdict": verdict.label,
        "reasons": verdict.reasons,
        "headline": _headline(verdict, columns),
        "share_drifted": round(verdict.share_drifted, 4),
        "evidently_drifted_share": parsed.drifted_share,
        "top_features": [c.to_dict() for c in ranked[:TOP_FEATURES]],
        "drifted_features": [c.column for c in ranked if c.drifted and not c.by_construction],
        "by_construction": [c.to_dict() for c in columns if c.by_construction],
        "predictions": [c.to_dict() for c in columns if c.kind == "prediction"],
        "segments_moved": verdict.segments_moved,
        "segments_uncorroborated": verdict.segments_uncorroborated,
        "segment_tests": len(segments),
        "windows": {"reference": base.describe(), "current": window.describe()},
        "rows": {"reference": len(base.frame), "current": len(window.frame)},
        "sampled": {"reference": ref_sampled, "current": cur_sampled}
        if (ref_sampled or cur_sampled)
        else None,
        "current_means": {
            c: _mean(cur, c) for c in ("churn_probability", "predicted_nps") if c in cur
        },
        "reference_means": {
            c: _mean(ref, c) for c in ("churn_probability", "predicted_nps") if c in ref
        },
        "settings": m.model_dump(mode="json"),
        "notes": notes,
        "files": {"html": "report.html", "evidently": "evidently.html", "segments": "segments.csv"},
    }
    segments.to_csv(folder / "segments.csv", index=False)
    write_summary(folder, summary)
    (folder / "report.html").write_text(_html(summary, segments))
    write_index(settings.reports_path)
    return DriftResult(summary, folder, segments)


def _mean(frame: pd.DataFrame, column: str) -> float | None:
    value = pd.to_numeric(frame[column], errors="coerce").mean()
    return None if pd.isna(value) else round(float(value), 6)


def _headline(verdict, columns: list[ColumnDrift]) -> str:
    if not verdict.drift:
        return f"{verdict.share_drifted:.0%} of features drifted; no segment moved"
    if verdict.segments_moved:
        top = verdict.segments_moved[0]
        lead = f"segment {top['segment']}={top['value']} moved"
        first = verdict.reasons[0]
        return first if first.startswith(lead) else f"{lead}; {first}"
    return verdict.reasons[0]


def _html(summary: dict, segments: pd.DataFrame) -> str:
    w = summary["windows"]
    sampled = summary["sampled"]
    parts = [
        f"<p>Model {html.escape(summary['model']['name'])} v{summary['model']['version']}. "
        f"Verdict: <span class='{verdict_class(summary['verdict'])}'>{summary['verdict']}"
        "</span></p>",
        "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in summary["reasons"]) + "</ul>",
        "<h2>Windows</h2>",
        table(pd.DataFrame([{"window": k, **v} for k, v in w.items()])),
    ]
    if sampled:
        parts.append(
            "<p class='note'>Sampled: "
            + "; ".join(f"{k} {v['used']:,} of {v['rows']:,} rows" for k, v in sampled.items() if v)
            + " (monitoring.sample_rows).</p>"
        )
    parts += [
        "<h2>Predictions</h2>",
        table(pd.DataFrame(summary["predictions"])),
        f"<h2>Top features (share drifted {summary['share_drifted']:.1%}, by-construction "
        "features excluded)</h2>",
        table(pd.DataFrame(summary["top_features"])),
        "<h2>Drift by construction (reported, never raising the verdict)</h2>",
        table(pd.DataFrame(summary["by_construction"])),
        "<h2>Segments that moved (Benjamini-Hochberg over "
        f"{summary['segment_tests']} column x segment tests)</h2>",
        table(
            pd.DataFrame(summary["segments_moved"]).assign(
                columns=lambda f: f["columns"].map(", ".join)
            )
            if summary["segments_moved"]
            else pd.DataFrame()
        ),
    ]
    moved = segments[segments["moved"]] if len(segments) else segments
    if len(moved):
        parts += [
            "<h3>Moved column x segment tests</h3>",
            table(moved.sort_values("effect", ascending=False).head(50)),
        ]
    if summary["notes"]:
        parts += [
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in summary["notes"])
            + "</ul>"
        ]
    parts.append(
        "<p><a href='evidently.html'>Evidently's full report</a> · "
        "<a href='summary.json'>summary.json</a> · <a href='segments.csv'>all segment "
        "tests</a> · <a href='../../index.html'>all reports</a></p>"
    )
    return page("Drift report", "".join(parts))
