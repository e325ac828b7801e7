"""Contract-breaking rows for the demo data, each breaking exactly one rule, counted."""

from __future__ import annotations

import numpy as np
import pandas as pd

# table -> list of (reason as validation reports it, how to break a copied row)
_BREAKS: dict[str, list[tuple[str, dict[str, str]]]] = {
    "customers": [
        ("missing_id:customer_id", {"customer_id": ""}),
        ("unparsable_date:signup_date", {"signup_date": "last tuesday"}),
        ("out_of_range:seats", {"seats": "-5"}),
        ("duplicate_id:customer_id", {"plan_tier": "enterprise"}),
    ],
    "usage": [
        ("unknown_customer:customer_id", {"customer_id": "C-UNKNOWN"}),
        ("unparsable_date:timestamp", {"timestamp": "2024-13-45"}),
        ("not_a_number:value", {"value": "twelve"}),
    ],
    "tickets": [
        ("duplicate_id:ticket_id", {}),
        ("out_of_range:csat", {"csat": "9"}),
        ("unknown_customer:customer_id", {"customer_id": "C-UNKNOWN"}),
        ("resolved_before_created:resolved_at", {"resolved_at": "2000-01-01T00:00:00"}),
    ],
    "chats": [
        ("invalid_value:author", {"author": "robot"}),
        ("missing_id:conversation_id", {"conversation_id": ""}),
        ("unknown_customer:customer_id", {"customer_id": "C-UNKNOWN"}),
    ],
    "nps_responses": [
        ("out_of_range:score", {"score": "11"}),
        ("unparsable_date:responded_at", {"responded_at": "yesterday"}),
        ("unknown_customer:customer_id", {"customer_id": "C-UNKNOWN"}),
        ("duplicate_id:response_id", {}),
    ],
    "churn": [
        ("unknown_customer:customer_id", {"customer_id": "C-UNKNOWN"}),
        ("unparsable_date:churned_at", {"churned_at": "soon"}),
    ],
}


def _as_text(series: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Render a column as an export would: ISO timestamps (some with a zone), plain numbers."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.to_numpy(dtype="datetime64[s]")
        text = np.datetime_as_string(values, unit="s").astype(object)
        # A tenth of the instants are written in UTC+02:00: the same moment, zoned.
        zoned = (rng.random(len(values)) < 0.1) & ~np.isnat(values)
        shifted = np.datetime_as_string(values[zoned] + np.timedelta64(2, "h"), unit="s").astype(
            object
        )
        text[zoned] = shifted + "+02:00"
        text[np.isnat(values)] = None
        return pd.Series(text, index=series.index, dtype=object)
    if pd.api.types.is_bool_dtype(series):
        return series.map({True: "true", False: "false"}).astype(object)
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy()
        finite = ~np.isnan(values)
        if np.all(values[finite] == np.round(values[finite])):
            text = series.astype("Int64").astype(str)
        else:
            text = series.astype(str)
        return text.astype(object).where(series.notna(), None)
    if pd.api.types.is_integer_dtype(series):
        return series.astype(str).astype(object)
    return series.astype(object)


def inject_bad_rows(
    tables: dict[str, pd.DataFrame], fraction: float, rng: np.random.Generator
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]]]:
    """Append corrupted copies of real rows; return the new tables and counts per reason."""
    out: dict[str, pd.DataFrame] = {}
    counts: dict[str, dict[str, int]] = {}
    for name, frame in tables.items():
        text = pd.DataFrame({col: _as_text(frame[col], rng) for col in frame.columns})
        breaks = _BREAKS.get(name, [])
        per_reason = max(2, round(fraction * len(frame) / max(len(breaks), 1)))
        extra = []
        counts[name] = {}
        for reason, changes in breaks:
            if len(text) == 0:
                break
            rows = text.iloc[rng.integers(0, len(text), per_reason)].copy()
            for col, value in changes.items():
                rows[col] = value if value != "" else None
            if reason.startswith("duplicate_id"):
                # Copies of distinct rows, so each copy is one duplicate of its original.
                rows = text.iloc[
                    rng.choice(len(text), min(per_reason, len(text)), replace=False)
                ].copy()
                for col, value in changes.items():
                    rows[col] = value
            extra.append(rows)
            counts[name][reason] = len(rows)
        out[name] = pd.concat([text, *extra], ignore_index=True) if extra else text
    return out, counts
