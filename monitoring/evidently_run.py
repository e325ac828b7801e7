"""Evidently 0.7 on two frames, and the parsing of its result format.

The 0.7 result has no per-column "drifted" flag: each column is a ``ValueDrift`` metric
(its score) with a bound ``ValueDriftTest`` whose status says whether it passed. We pair the
two through the metric id. Imported lazily by the CLI only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
DRIFTED_COUNT = "evidently:metric_v2:DriftedColumnsCount"


@dataclass
class ParsedDrift:
    """Per column: (method, threshold, score, drifted); plus Evidently's own count."""

    columns: dict[str, dict] = field(default_factory=dict)
    drifted_count: float | None = None
    drifted_share: float | None = None
    problems: list[str] = field(default_factory=list)


def parse_drift_result(result: dict) -> ParsedDrift:
    """Read ``Snapshot.dict()`` of a DataDriftPreset run made with ``include_tests=True``."""
    parsed = ParsedDrift()
    by_id: dict[str, str] = {}
    for metric in result.get("metrics", []):
        config = metric.get("config", {})
        kind = config.get("type")
        if kind == VALUE_DRIFT:
            column = config["column"]
            by_id[metric["id"]] = column
            parsed.columns[column] = {
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "score": float(metric["value"]) if metric.get("value") is not None else None,
                "drifted": None,
            }
        elif kind == DRIFTED_COUNT:
            value = metric.get("value") or {}
            parsed.drifted_count = value.get("count")
            parsed.drifted_share = value.get("share")
    for test in result.get("tests", []):
        metric_id = test.get("metric_config", {}).get("metric_id")
        column = by_id.get(metric_id)
        if column is None:
            continue
        status = test.get("status", "")
        # dict() holds a TestStatus enum, json() its value: accept both.
        status = str(getattr(status, "value", status)).upper()
        if status == "FAIL":
            parsed.columns[column]["drifted"] = True
        elif status == "SUCCESS":
            parsed.columns[column]["drifted"] = False
        else:  # ERROR / WARNING: say so rather than guess
            parsed.problems.append(f"{column}: Evidently test status {status}")
    missing = [c for c, v in parsed.columns.items() if v["drifted"] is None]
    if missing and not parsed.problems:
        parsed.problems.append(
            f"no drift test for {', '.join(missing[:5])}: was the report run with "
            "include_tests=True?"
        )
    return parsed


def run_evidently(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    settings,
    html_path: Path | None = None,
) -> ParsedDrift:
    """One DataDriftPreset report over the given columns (settings' methods and thresholds),
    parsed; with ``html_path``, Evidently's own HTML report is saved there too."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    m = settings.monitoring
    columns = [*numerical, *categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    report = Report(
        [
            DataDriftPreset(
                columns=columns,
                num_method=m.numerical_stattest,
                num_threshold=m.numerical_threshold,
                cat_method=m.categorical_stattest,
                cat_threshold=m.categorical_threshold,
                drift_share=m.drift_share,
            )
        ],
        include_tests=True,
    )
    run = report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    if html_path is not None:
        run.save_html(str(html_path))
    return parse_drift_result(run.dict())
