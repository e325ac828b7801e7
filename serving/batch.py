"""Batch scoring: every active customer at a date, with drivers, to Parquet or CSV.

Rows go through the same ``predict_rows`` as `/predict`, so a customer's batch row equals
the service's answer for the same features. Work is chunked, so memory stays flat in the
number of customers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.build import FeaturePlan, attach_text_signals, build_features
from features.validation import ValidatedTables
from npsrisk.settings import RiskTierSettings
from serving.predictions import ModelCard, predict_rows
from training.bundle import NpsRiskModel
from training.snapshots import active_customers

CHUNK_ROWS = 50_000
COLUMNS = (
    "customer_id",
    "churn_probability",
    "predicted_nps",
    "nps_category",
    "p_detractor",
    "p_passive",
    "p_promoter",
    "risk_tier",
    "drivers",
    "features_as_of",
    "model_name",
    "model_version",
)


def predictions_frame(
    bundle: NpsRiskModel,
    features: pd.DataFrame,
    card: ModelCard,
    features_as_of: str,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
) -> pd.DataFrame:
    """Prediction objects of one chunk of feature rows, flattened to columns."""
    X = bundle.encoder.transform(features)
    columns = {c: features[c].to_numpy() for c in features.columns}
    empty = np.full(len(features), None, dtype=object)

    def value_of(row: int, feature: str):
        return columns.get(feature, empty)[row]

    rows, _ = predict_rows(
        bundle, X, features["customer_id"].tolist(), value_of, explain, top_k, tiers
    )
    frame = pd.DataFrame.from_records(rows)
    probs = frame.pop("category_probabilities")
    for name in ("detractor", "passive", "promoter"):
        frame[f"p_{name}"] = [None if p is None else p[name] for p in probs]
    frame["drivers"] = (
        [json.dumps(d, separators=(",", ":")) for d in frame["drivers"]] if explain else None
    )
    frame["features_as_of"] = features_as_of
    frame["model_name"] = card.name
    frame["model_version"] = card.version
    return frame[list(COLUMNS)]


@dataclass
class BatchResult:
    path: Path
    rows: int
    features_as_of: str


def _chunks(ids: pd.Series, size: int) -> Iterator[pd.Series]:
    for start in range(0, len(ids), size):
        yield ids.iloc[start : start + size]


def score_customers(
    tables: ValidatedTables,
    bundle: NpsRiskModel,
    card: ModelCard,
    as_of: pd.Timestamp,
    out: Path,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Score every customer active at ``as_of`` and write ``out`` (.parquet or .csv)."""
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"--out must end in .parquet or .csv, not {out.name!r}")
    as_of = pd.Timestamp(as_of).normalize()
    plan = FeaturePlan.from_dict(bundle.plan)
    if plan.text_themes and bundle.text is not None:
        attach_text_signals(tables, bundle.text)
    ids = active_customers(tables, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    writer = None
    done = 0
    try:
        for chunk in _chunks(ids, CHUNK_ROWS):
            features = build_features(
                tables, pd.DataFrame({"customer_id": chunk, "as_of": as_of}), plan
            )
            frame = predictions_frame(
                bundle, features, card, str(as_of.date()), explain, top_k, tiers
            )
            if suffix == ".parquet":
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            else:
                frame.to_csv(tmp, mode="a", header=done == 0, index=False)
            done += len(frame)
            if progress:
                progress(done, len(ids))
        if writer is None and suffix == ".parquet":
            pq.write_table(pa.Table.from_pandas(pd.DataFrame(columns=list(COLUMNS))), tmp)
        elif done == 0:
            pd.DataFrame(columns=list(COLUMNS)).to_csv(tmp, index=False)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(out)  # readers never see a half-written file
    return BatchResult(out, done, str(as_of.date()))
