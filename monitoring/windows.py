"""The current window to monitor: from the inference log (a date range), from a batch-scoring
output, or from a fresh export scored with the model's own feature plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import NPS_CATEGORIES
from monitoring.reference import PREDICTION_COLUMNS, PROBABILITY_COLUMNS, Reference
from npsrisk.settings import ConfigError
from training.evaluation import tenure_band


class WindowError(ConfigError):
    """The window cannot be built (empty, unreadable); the message says why."""


@dataclass
class Window:
    frame: pd.DataFrame
    source: str
    start: str | None
    end: str | None
    has_features: bool
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        return {
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "rows": len(self.frame),
            "has_features": self.has_features,
        }


def with_segments(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the derived segment columns (tenure band) monitoring compares by."""
    if "tenure_days" in frame and "tenure_band" not in frame:
        frame = frame.assign(tenure_band=tenure_band(pd.to_numeric(frame["tenure_days"])).values)
    return frame


def _check(frame: pd.DataFrame, what: str) -> None:
    if frame.empty:
        raise WindowError(f"the current window is empty: {what}")


def window_from_log(
    log_path: Path, reference: Reference, start: pd.Timestamp, end: pd.Timestamp
) -> Window:
    """Predictions logged in [start, end] by the reference's model version; a customer
    predicted several times counts once (their latest prediction), so busy accounts do not
    outweigh the rest."""
    from serving.inference_log import read_inference_log

    # Day folders are the UTC day of logging, as logged_at is: only the window's are read.
    log = read_inference_log(log_path, start.date(), end.date())
    if log.empty:
        raise WindowError(
            f"the inference log at {log_path} holds nothing from {start.date()} to "
            f"{end.date()} (is serving.inference_log on?)"
        )
    logged = pd.to_datetime(log["logged_at"], utc=True).dt.tz_localize(None)
    inside = (logged >= start) & (logged < end + pd.Timedelta(days=1))
    notes = []
    same_model = log["model_version"].astype(str) == str(reference.version)
    if (inside & ~same_model).any():
        notes.append(
            f"{int((inside & ~same_model).sum()):,} logged predictions by other model versions "
            f"left out (comparing v{reference.version})"
        )
    log = log[inside & same_model].assign(_t=logged[inside & same_model])
    span = f"no predictions by v{reference.version} logged from {start.date()} to {end.date()}"
    _check(log, span)
    with_id = (
        log[log["customer_id"].notna()]
        .sort_values("_t")
        .drop_duplicates("customer_id", keep="last")
    )
    log = pd.concat([with_id, log[log["customer_id"].isna()]], ignore_index=True)
    features = pd.DataFrame.from_records(log["features"].tolist())
    outputs = pd.DataFrame.from_records(log["outputs"].tolist())
    probs = outputs.pop("category_probabilities") if "category_probabilities" in outputs else None
    frame = pd.concat([features.reset_index(drop=True), outputs.reset_index(drop=True)], axis=1)
    for name in NPS_CATEGORIES:
        frame[f"p_{name}"] = [
            np.nan if not isinstance(p, dict) else p.get(name, np.nan)
            for p in (probs if probs is not None else [None] * len(frame))
        ]
    return Window(
        with_segments(_typed(frame, reference)),
        f"inference log {log_path}",
        str(start.date()),
        str(end.date()),
        True,
        notes,
    )


def window_from_batch(path: Path, reference: Reference) -> Window:
    """A `npsrisk score` output: predictions only (it holds no features), read through the
    project's own reader so the drivers column's encoding never matters here."""
    from serving.batch import read_batch_output

    if not Path(path).is_file():
        raise WindowError(f"batch output {path} does not exist")
    wanted = ["customer_id", *PREDICTION_COLUMNS, *PROBABILITY_COLUMNS]
    frame = read_batch_output(path, [*wanted, "features_as_of", "model_version"])
    _check(frame, f"{path} has no rows")
    notes = [
        "a batch output holds predictions, not features: feature and segment drift need "
        "the inference log or --data"
    ]
    versions = sorted(frame["model_version"].dropna().astype(str).unique())
    if versions and versions != [str(reference.version)]:
        notes.append(f"scored by v{', v'.join(versions)}; the reference is v{reference.version}")
    as_of = sorted(frame["features_as_of"].dropna().astype(str).unique())
    return Window(
        frame.drop(columns=["features_as_of", "model_version"]),
        f"batch output {path}",
        as_of[0] if as_of else None,
        as_of[-1] if as_of else None,
        False,
        notes,
    )


def window_from_data(data_path: Path, reference: Reference, as_of: pd.Timestamp | None) -> Window:
    """Every customer active at ``as_of`` in a fresh export, featurized with the reference
    model's own plan and text model, and scored by it."""
    from features.chunks import feature_chunks

    run, chunks = feature_chunks(data_path, reference.bundle, as_of)
    parts = []
    for features in chunks:
        scored = reference.bundle.predict_frame(features)
        parts.append(
            pd.concat([features.reset_index(drop=True), scored.reset_index(drop=True)], axis=1)
        )
    _check(pd.DataFrame() if not parts else parts[0], f"no active customers at {run.as_of.date()}")
    frame = pd.concat(parts, ignore_index=True)
    notes = []
    if run.rows_set_aside:
        notes.append(f"{run.rows_set_aside:,} rows broke the data contract and were set aside")
    day = str(run.as_of.date())
    return Window(
        with_segments(_typed(frame, reference)), f"export {data_path}", day, day, True, notes
    )


def reference_window(reference: Reference) -> Window:
    frame = with_segments(reference.frame)
    days = frame["as_of"].dt.date
    return Window(
        frame,
        f"validation window of v{reference.version}",
        str(days.min()),
        str(days.max()),
        True,
    )


def _typed(frame: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """Categorical features as text and the rest as numbers, as in the reference."""
    frame = frame.copy()
    categorical = set(reference.categorical)
    for column in reference.features:
        if column not in frame:
            frame[column] = np.nan if column not in categorical else None
        if column in categorical:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
