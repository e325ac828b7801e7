"""Batch scoring: every active customer at a date, with drivers, to Parquet or CSV.

Rows are scored by the same ``bundle.score`` and explained by the same ``explain_picks`` and
catalogue descriptions as `/predict` (``predict_rows``), so a customer's batch row equals the
service's answer for the same features; the batch path builds Arrow columns, not a dict
per row. Work is chunked, so memory stays flat in the
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
from features.contract import NPS_CATEGORIES
from npsrisk.settings import RiskTierSettings
from serving.changes import plain_value
from serving.predictions import ModelCard, explain_picks, risk_tiers
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


def predictions_batch(
    bundle: ModelBundle,
    features: pd.DataFrame,
    card: ModelCard,
    features_as_of: str,
    explain: bool,
    top_k: int,
    tiers: RiskTierSettings,
) -> pa.Table:
    """Prediction rows of one chunk of feature rows, as an Arrow table in
    ``PREDICTIONS_SCHEMA``, built column by column.

    The same numbers as ``predict_rows`` (hence `/predict`) for the same rows: the same
    scores, the same ``explain_picks`` drivers and the same catalogue descriptions (once per
    feature and distinct value), rounded the same way; only no dict is made per row or
    driver, so the path costs little beyond the model's own contributions."""
    n = len(features)
    X = bundle.encoder.transform(features)
    scores, contributions = bundle.score(X, explain=explain)
    churn, nps = scores["churn_probability"], scores["predicted_nps"]
    probs = np.column_stack([scores[f"p_{c}"] for c in NPS_CATEGORIES])
    has_nps = ~np.isnan(nps)
    category = np.full(n, None, dtype=object)
    if has_nps.any():
        names = np.array(NPS_CATEGORIES, dtype=object)
        category[has_nps] = names[np.argmax(probs[has_nps], axis=1)]
    p_nps = np.where(has_nps[:, None], probs, np.nan)
    if explain:
        picks = explain_picks(bundle, scores, contributions, top_k)
        drivers = _driver_lists(bundle, features, picks, n)
    else:
        drivers = pa.nulls(n, pa.list_(DRIVER))
    ids = features["customer_id"].to_numpy(dtype=object)
    columns = {
        "customer_id": pa.array([None if c is None else str(c) for c in ids], pa.string()),
        "churn_probability": _rounded(churn, 6),
        "predicted_nps": _rounded(nps, 4),
        "nps_category": pa.array(category, pa.string()),
        "p_detractor": _rounded(p_nps[:, 0], 6),
        "p_passive": _rounded(p_nps[:, 1], 6),
        "p_promoter": _rounded(p_nps[:, 2], 6),
        "risk_tier": pa.array(risk_tiers(churn, probs[:, 0], tiers), pa.string()),
        "drivers": drivers,
        "features_as_of": pa.array([features_as_of] * n, pa.string()),
        "model_name": pa.array([card.name] * n, pa.string()),
        "model_version": pa.array([card.version] * n, pa.string()),
    }
    return pa.Table.from_arrays([columns[c] for c in COLUMNS], schema=PREDICTIONS_SCHEMA)


def _rounded(values: np.ndarray, digits: int) -> pa.Array:
    """Python's ``round`` (the service's rounding, digit for digit), NaN as null."""
    return pa.array(
        [None if v != v else round(v, digits) for v in np.asarray(values, float).tolist()],
        pa.float64(),
    )


def _driver_lists(bundle: ModelBundle, features: pd.DataFrame, picks: dict, n: int) -> pa.Array:
    """Every row's drivers (churn first, then NPS, each largest first) as list<DRIVER>."""
    targets = list(picks)
    index = np.hstack([picks[t][0] for t in targets]) if targets else np.empty((n, 0), int)
    picked = np.hstack([picks[t][1] for t in targets]) if targets else np.empty((n, 0))
    effect = np.hstack([picks[t][2] for t in targets]) if targets else np.empty((n, 0))
    label = np.repeat(np.array(targets, dtype=object), [picks[t][0].shape[1] for t in targets])
    mask = index >= 0  # -1 only ever follows the last driver of a target
    rows, slots = np.nonzero(mask)
    feature_at = index[rows, slots]
    offsets = np.r_[0, np.cumsum(mask.sum(axis=1))].astype(np.int32)
    m = len(rows)
    values = np.full(m, np.nan)
    texts = np.full(m, None, dtype=object)
    descriptions = np.full(m, None, dtype=object)
    describe = bundle.catalog.describe
    names = bundle.features
    for i in np.unique(feature_at):
        at = np.flatnonzero(feature_at == i)
        feature = names[i]
        column = features[feature].to_numpy()[rows[at]] if feature in features else None
        if column is None:
            descriptions[at] = describe(feature, None)
            continue
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        plain = [plain_value(u) for u in uniques]
        said = np.array([describe(feature, v) for v in plain] + [describe(feature, None)], object)
        descriptions[at] = said[codes]  # code -1 (missing) takes the last: "no data" wording
        for code, v in enumerate(plain):
            hit = at[codes == code]
            if isinstance(v, str):
                texts[hit] = v
            elif v is not None:
                values[hit] = float(v)
    struct = pa.StructArray.from_arrays(
        [
            pa.array(np.array(names, dtype=object)[feature_at] if m else [], pa.string()),
            pa.array(label[slots] if m else [], pa.string()),
            pa.array(values, pa.float64(), from_pandas=True),
            pa.array(texts, pa.string()),
            _rounded(picked[rows, slots], 6),
            _rounded(effect[rows, slots], 6),
            pa.array(descriptions, pa.string()),
        ],
        fields=list(DRIVER),
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct, type=pa.list_(DRIVER))


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


def predictions_csv(table: pa.Table) -> pd.DataFrame:
    """CSV holds no nested values: drivers as JSON text, in the API's shape."""
    drivers = table.column("drivers").to_pylist()
    return (
        table.drop_columns(["drivers"])
        .to_pandas()
        .assign(
            drivers=[
                None if d is None else json.dumps(api_drivers(d), separators=(",", ":"))
                for d in drivers
            ]
        )[list(COLUMNS)]
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
                table = predictions_batch(bundle, part, card, as_of_text, explain, top_k, tiers)
                if suffix == ".parquet":
                    writer = writer or pq.ParquetWriter(tmp, PREDICTIONS_SCHEMA)
                    writer.write_table(table)
                else:
                    predictions_csv(table).to_csv(tmp, mode="a", header=done == 0, index=False)
                done += table.num_rows
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
