"""Static customer attributes: which columns become numeric or categorical features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a frame is read: a serving worker never needs it
    import pandas as pd

_KEYS = ("customer_id", "signup_date")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
NUMERIC_SHARE = 0.95


@dataclass
class AttributeSchema:
    """How each customers column is used; ``excluded`` maps a column to the reason."""

    numeric: list[str] = field(default_factory=list)
    boolean: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "numeric": self.numeric,
            "boolean": self.boolean,
            "categorical": self.categorical,
            "excluded": self.excluded,
        }


def _as_bool(series: pd.Series) -> pd.Series | None:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    text = series.dropna().astype(str).str.strip().str.lower()
    if text.empty or not text.isin(_TRUE | _FALSE).all():
        return None
    mapped = series.astype("string").str.strip().str.lower()
    return mapped.map(lambda v: 1.0 if v in _TRUE else (0.0 if v in _FALSE else np.nan)).astype(
        float
    )


def infer_attribute_schema(
    customers: pd.DataFrame,
    excluded_columns: list[str] | None = None,
    personal_data_columns: list[str] | None = None,
) -> AttributeSchema:
    """Decide, from the data alone, how every customers column may be used."""
    import pandas as pd

    from features.privacy import detect_personal_data

    schema = AttributeSchema()
    excluded_set = {c.lower() for c in (excluded_columns or [])}
    personal = detect_personal_data(customers, personal_data_columns)
    n = len(customers)
    for column in customers.columns:
        if column in _KEYS or column.startswith("_"):
            continue
        series = customers[column]
        if column.lower() in excluded_set:
            schema.excluded[column] = "excluded by data.excluded_columns"
        elif column in personal:
            schema.excluded[column] = f"personal data: {personal[column]}"
        elif series.notna().sum() == 0:
            schema.excluded[column] = "empty"
        elif _as_bool(series) is not None:
            schema.boolean.append(column)
        elif pd.api.types.is_numeric_dtype(series):
            schema.numeric.append(column)
        else:
            non_null = series.dropna()
            parsed = pd.to_numeric(non_null, errors="coerce")
            if parsed.notna().mean() >= NUMERIC_SHARE:
                schema.numeric.append(column)
            elif non_null.nunique() > max(50, 0.5 * n):
                schema.excluded[column] = "identifier-like: too many distinct values"
            else:
                schema.categorical.append(column)
    return schema


def static_attributes(customers: pd.DataFrame, schema: AttributeSchema) -> pd.DataFrame:
    """customer_id, signup_date and the usable attributes, typed (floats and strings)."""
    import pandas as pd

    out = customers[list(_KEYS)].copy()
    for column in schema.numeric:
        out[column] = pd.to_numeric(customers[column], errors="coerce").astype(float)
    for column in schema.boolean:
        out[column] = _as_bool(customers[column])
    for column in schema.categorical:
        text = customers[column].astype("string").str.strip()
        out[column] = text.where(text.notna() & (text != ""), None).astype(object)
    return out
