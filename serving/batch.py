"""Batch scoring: every active customer at a date, with drivers, to Parquet or CSV.

Rows go through the same ``predict_rows`` as `/predict`, so a customer's batch row equals
the service's answer for the same features. Work is chunked, so memory stays flat in the
number of customers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.chunks import CUSTOMER_CHUNK, ChunkedRun, Progress, feature_chunks
from npsrisk.settings import RiskTierSettings
from serving.predictions import ModelCard, predict_rows
from training.bundle import NpsRiskModel

PREDICT_ROWS = 50_000  # rows scored at once: bounds the SHAP matrices' memory
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
    run: ChunkedRun

    @property
    def features_as_of(self) -> str:
        return str(self.run.as_of.date())


def score_source(
    source: Path,
    bundle: NpsRiskModel,
    card: ModelCard,
    out: Path,
    as_of: pd.Timestamp | None,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
    chunk_size: int = CUSTOMER_CHUNK,
    progress: Progress | None = None,
    data=None,
) -> BatchResult:
    """Score every customer active at ``as_of`` (default: the export's latest date) and write
    ``out`` (.parquet or .csv), reading the export one slice of customers at a time."""
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"--out must end in .parquet or .csv, not {out.name!r}")
    run, chunks = feature_chunks(source, bundle, as_of, chunk_size, progress, data=data)
    as_of_text = str(run.as_of.date())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.unlink(missing_ok=True)
    writer = None
    done = 0
    try:
        for features in chunks:
            for start in range(0, len(features), PREDICT_ROWS):
                part = features.iloc[start : start + PREDICT_ROWS]
                frame = predictions_frame(bundle, part, card, as_of_text, explain, top_k, tiers)
                if suffix == ".parquet":
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                else:
                    frame.to_csv(tmp, mode="a", header=done == 0, index=False)
                done += len(frame)
        if done == 0:
            empty = pd.DataFrame(columns=list(COLUMNS))
            if suffix == ".parquet":
                pq.write_table(pa.Table.from_pandas(empty, preserve_index=False), tmp)
            else:
                empty.to_csv(tmp, index=False)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(out)  # readers never see a half-written file
    return BatchResult(out, done, run)


def read_batch_output(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A `npsrisk score` output, read back: the columns asked for (default: all but
    ``drivers``, whose encoding is the writer's business), ``drivers`` as JSON text if asked."""
    path = Path(path)
    wanted = [c for c in (columns or COLUMNS) if columns is not None or c != "drivers"]
    if path.suffix.lower() == ".parquet":
        available = pq.read_schema(path).names
        frame = pd.read_parquet(path, columns=[c for c in wanted if c in available])
    else:
        frame = pd.read_csv(path, usecols=lambda c: c in wanted, dtype={"model_version": str})
    if "drivers" in frame:
        frame["drivers"] = [
            d if d is None or isinstance(d, str) else json.dumps(list(d), default=str)
            for d in frame["drivers"]
        ]
    if "model_version" in frame:
        frame["model_version"] = frame["model_version"].astype(str)
    return frame
