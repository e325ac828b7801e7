"""Batch scoring: every active customer at a date, with drivers, to Parquet or CSV.

Rows go through the same ``predict_rows`` as `/predict`, so a customer's batch row equals
the service's answer for the same features. Work is chunked, so memory stays flat in the
number of customers. In Parquet the drivers are a typed list of structs
(``PREDICTIONS_SCHEMA``); in CSV, JSON text. ``read_predictions`` reads either back, and
the folders Spark writes (serving.distributed), with drivers as the API's dicts.
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
from training.bundle import ModelBundle

PREDICT_ROWS = 50_000  # rows scored at once: bounds the SHAP matrices' memory
# A driver's value is a number, or a category's text: two typed fields, one of them null.
DRIVER = pa.struct(
    [
        ("feature", pa.string()),
        ("target", pa.string()),
        ("value", pa.float64()),
        ("category", pa.string()),
        ("contribution", pa.float64()),
        ("effect", pa.float64()),
        ("description", pa.string()),
    ]
)
PREDICTIONS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("churn_probability", pa.float64()),
        ("predicted_nps", pa.float64()),
        ("nps_category", pa.string()),
        ("p_detractor", pa.float64()),
        ("p_passive", pa.float64()),
        ("p_promoter", pa.float64()),
        ("risk_tier", pa.string()),
        ("drivers", pa.list_(DRIVER)),
        ("features_as_of", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
    ]
)
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
    bundle: ModelBundle,
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
    frame["drivers"] = [typed_drivers(d) for d in frame["drivers"]] if explain else None
    frame["features_as_of"] = features_as_of
    frame["model_name"] = card.name
    frame["model_version"] = card.version
    return frame[list(COLUMNS)]


def typed_drivers(drivers: list[dict]) -> list[dict]:
    """API drivers in the Parquet shape: a numeric ``value`` or a text ``category``."""
    out = []
    for d in drivers:
        value = d["value"]
        text = isinstance(value, str)
        out.append(
            {
                "feature": d["feature"],
                "target": d["target"],
                "value": None if text or value is None else float(value),
                "category": value if text else None,
                "contribution": d["contribution"],
                "effect": d.get("effect"),
                "description": d["description"],
            }
        )
    return out


def api_drivers(drivers) -> list[dict]:
    """Typed drivers (or their JSON text) back in the API's shape."""
    if drivers is None or (isinstance(drivers, float) and np.isnan(drivers)):
        return []
    if isinstance(drivers, str):
        drivers = json.loads(drivers)
    out = []
    for d in drivers:
        value = d["category"] if d.get("category") is not None else d.get("value")
        out.append(
            {
                "feature": d["feature"],
                "value": value,
                "contribution": d["contribution"],
                "effect": d.get("effect"),
                "target": d["target"],
                "description": d["description"],
            }
        )
    return out


def predictions_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=PREDICTIONS_SCHEMA, preserve_index=False)


def predictions_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV holds no nested values: drivers as JSON text, in the API's shape."""
    return frame.assign(
        drivers=[
            None if d is None else json.dumps(api_drivers(d), separators=(",", ":"))
            for d in frame["drivers"]
        ]
    )


def read_predictions(path: Path | str) -> pd.DataFrame:
    """Batch predictions as written by ``npsrisk score`` (a .parquet file, a .csv file or a
    Spark output folder), with ``drivers`` as lists of the API's driver dicts: what
    monitoring and reports read."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={"model_version": str, "customer_id": str})
    elif path.is_dir():
        if not (path / "_SUCCESS").exists():
            raise FileNotFoundError(f"{path} has no _SUCCESS marker: the run did not finish")
        frame = pq.read_table(path).to_pandas()
    else:
        frame = pq.read_table(path).to_pandas()
    frame["drivers"] = [api_drivers(d) for d in frame["drivers"]]
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
    bundle: ModelBundle,
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
                    writer = writer or pq.ParquetWriter(tmp, PREDICTIONS_SCHEMA)
                    writer.write_table(predictions_table(frame))
                else:
                    predictions_csv(frame).to_csv(tmp, mode="a", header=done == 0, index=False)
                done += len(frame)
        if done == 0:
            empty = pd.DataFrame(columns=list(COLUMNS))
            if suffix == ".parquet":
                pq.write_table(PREDICTIONS_SCHEMA.empty_table(), tmp)
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
