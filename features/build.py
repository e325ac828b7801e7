"""One entry point that builds features for any (customer_id, as_of) pairs: training and scoring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from features.attributes import AttributeSchema, infer_attribute_schema, static_attributes
from features.definitions import (
    KEYS,
    FeatureContext,
    chat_features,
    intent_feature_names,
    metric_slug,
    nps_features,
    static_features,
    text_features,
    text_windows,
    ticket_features,
    usage_features,
    with_cutoff,
)
from features.validation import ValidatedTables
from npsrisk.settings import DataSettings, FeatureSettings

EVENT_TABLES = ("usage", "tickets", "chats", "nps_responses")
TEXT_SIGNALS = "text_signals"  # derived table: one scored customer text per row
Progress = Callable[[str], None]


@dataclass
class FeaturePlan:
    """Which features exist, decided once from training data and reused verbatim for scoring."""

    settings: FeatureSettings
    tables: list[str]
    metrics: dict[str, list[str]]
    attributes: AttributeSchema
    skipped_metrics: list[str] = field(default_factory=list)
    text_themes: dict[str, str] = field(default_factory=dict)  # theme id -> label; {}: no text
    text_intents: list[str] = field(default_factory=list)  # the intent themes among them

    # --- names --------------------------------------------------------------------------
    def group_columns(self) -> dict[str, list[tuple[str, bool]]]:
        """Feature names per source table, each with whether "no event" means 0 (a count)."""
        s = self.settings
        long = max(s.windows_days)
        attrs = self.attributes
        groups: dict[str, list[tuple[str, bool]]] = {
            "static": [
                (c, False)
                for c in ("tenure_days", *attrs.numeric, *attrs.boolean, *attrs.categorical)
            ],
        }
        if "usage" in self.tables:
            groups["usage"] = [
                (name, zero)
                for slug in self.metrics
                for name, zero in (
                    *[(f"usage_{slug}_{w}d", True) for w in s.windows_days],
                    (f"usage_{slug}_trend", False),
                    (f"usage_{slug}_drop", True),
                    (f"usage_{slug}_days_since_active", False),
                )
            ]
        if "tickets" in self.tables:
            groups["tickets"] = [
                *[(f"tickets_{w}d", True) for w in s.windows_days],
                ("tickets_open", True),
                ("tickets_high_priority_open", True),
                (f"tickets_high_priority_{long}d", True),
                (f"tickets_resolution_hours_{long}d", False),
                (f"tickets_reopened_{long}d", True),
                (f"tickets_csat_{long}d", False),
                ("tickets_csat_last", False),
                ("tickets_days_since_last", False),
            ]
        if "chats" in self.tables:
            groups["chats"] = [
                *[
                    (f"chat_{kind}_{w}d", True)
                    for w in s.windows_days
                    for kind in ("conversations", "customer_messages")
                ],
                ("chat_days_since_last", False),
            ]
        if self.text_themes:
            short, long = text_windows(s)
            groups["text"] = [
                *[(f"text_messages_{w}d", True) for w in (short, long)],
                *[(f"text_negative_share_{w}d", False) for w in (short, long)],
                ("text_negative_share_trend", False),
                (f"text_worst_score_{long}d", False),
                (f"text_mean_score_{long}d", False),
                *[
                    (f"text_negative_{t}_{short}d", True)
                    for t in self.text_themes
                    if t not in self.text_intents
                ],
                *[
                    (name, name != "text_intent_days_since")
                    for name in (
                        intent_feature_names(s, self.text_intents) if self.text_intents else []
                    )
                ],
            ]
        if "nps_responses" in self.tables:
            groups["nps_responses"] = [
                ("nps_last_score", False),
                ("nps_last_age_days", False),
                ("nps_mean", False),
                ("nps_trend", False),
                ("nps_responses", True),
            ]
        return groups

    @property
    def feature_names(self) -> list[str]:
        return [name for cols in self.group_columns().values() for name, _ in cols]

    @property
    def categorical(self) -> list[str]:
        return list(self.attributes.categorical)

    def zero_when_absent(self) -> list[str]:
        """Counts and levels: no event in the window means 0, not unknown."""
        return [name for cols in self.group_columns().values() for name, zero in cols if zero]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.model_dump(),
            "tables": self.tables,
            "metrics": self.metrics,
            "attributes": self.attributes.to_dict(),
            "skipped_metrics": self.skipped_metrics,
            "text_themes": self.text_themes,
            "text_intents": self.text_intents,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePlan:
        return cls(
            settings=FeatureSettings(**data["settings"]),
            tables=list(data["tables"]),
            metrics={k: list(v) for k, v in data["metrics"].items()},
            attributes=AttributeSchema(**data["attributes"]),
            skipped_metrics=list(data.get("skipped_metrics", [])),
            text_themes=dict(data.get("text_themes", {})),
            text_intents=list(data.get("text_intents", [])),
        )


MAX_METRICS = 40


def plan_features(
    tables: ValidatedTables,
    features: FeatureSettings,
    data: DataSettings,
    text_themes: dict[str, str] | None = None,
    text_intents: list[str] | None = None,
) -> tuple[FeaturePlan, list[str]]:
    """Decide the feature set from the data present; return it with notes for the user."""
    notes: list[str] = []
    present = [t for t in EVENT_TABLES if tables.has(t) and len(tables[t])]
    for t in EVENT_TABLES:
        if t not in present:
            notes.append(f"table '{t}' is absent or empty: its features are not built")
    metrics: dict[str, list[str]] = {}
    skipped: list[str] = []
    if "usage" in present:
        counts = tables["usage"]["metric"].value_counts()
        for raw in counts.index[:MAX_METRICS]:
            metrics.setdefault(metric_slug(raw), []).append(str(raw))
        skipped = [str(m) for m in counts.index[MAX_METRICS:]]
        if skipped:
            notes.append(
                f"{len(skipped)} rare usage metrics skipped (only the {MAX_METRICS} most "
                f"frequent get features): {', '.join(skipped[:10])}"
            )
    attributes = infer_attribute_schema(
        tables["customers"], data.excluded_columns, data.personal_data_columns
    )
    for column, reason in attributes.excluded.items():
        notes.append(f"customers.{column} is not a feature ({reason})")
    plan = FeaturePlan(features, present, dict(sorted(metrics.items())), attributes, skipped)
    if text_themes:
        if len(tables.derived.get(TEXT_SIGNALS, ())):
            plan.text_themes = dict(text_themes)
            plan.text_intents = [t for t in text_intents or [] if t in text_themes]
        else:
            notes.append("no customer chat messages or tickets with text: no text features")
    return plan, notes


def attach_text_signals(tables: ValidatedTables, scorer) -> None:
    """Score every customer-written text with a ``text_analytics.signals.TextScorer``.

    Idempotent per scorer: tables already scored by this scorer are left as they are.
    """
    if tables.engine_cache.get("_text_scorer") is scorer and TEXT_SIGNALS in tables.derived:
        return
    tables.derived[TEXT_SIGNALS] = scorer.signals(tables.frames)
    tables.engine_cache.pop(TEXT_SIGNALS, None)
    tables.engine_cache["_text_scorer"] = scorer


def make_spine(pairs: pd.DataFrame) -> pd.DataFrame:
    """(customer_id, as_of) rows with the cutoff: the first second after the as-of date."""
    spine = pd.DataFrame(
        {
            "customer_id": pairs["customer_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(pairs["as_of"])
            .dt.normalize()
            .astype("datetime64[ns]")
            .to_numpy(),
        }
    )
    cutoff = spine["as_of"] + pd.Timedelta(days=1)
    spine["_cutoff"] = cutoff.astype("int64") // 10**9
    return spine


def connect(backend: str = "duckdb", spark: Any | None = None) -> ibis.BaseBackend:
    """An Ibis connection to the engine that runs the definitions (``spark``: on the given
    session, or a local one; features.spark builds sessions from the settings)."""
    if backend == "duckdb":
        return ibis.duckdb.connect()
    if backend in ("spark", "pyspark"):
        if spark is None:
            from pyspark.sql import SparkSession  # optional dependency: the `spark` extra

            spark = (
                SparkSession.builder.master("local[*]")
                .appName("npsrisk-features")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.ui.enabled", "false")
                .getOrCreate()
            )
        return ibis.pyspark.connect(spark)
    raise ValueError(f"Unknown feature backend {backend!r}: use 'duckdb' or 'spark'.")


# The columns each definition reads: only these are handed to the engine.
INPUT_COLUMNS = {
    "usage": ("customer_id", "timestamp", "metric", "value"),
    "tickets": ("customer_id", "created_at", "resolved_at", "priority", "csat", "reopened"),
    "chats": ("customer_id", "sent_at", "conversation_id", "author"),
    "nps_responses": ("customer_id", "responded_at", "score"),
}


def _arrow(frame: pd.DataFrame) -> pa.Table:
    frame = frame.copy(deep=False)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(object)
    return pa.Table.from_pandas(frame, preserve_index=False)


def _memtable(frame: pd.DataFrame | pa.Table) -> ir.Table:
    # Arrow in, with its schema: Ibis then neither re-infers types nor converts again.
    return ibis.memtable(frame if isinstance(frame, pa.Table) else _arrow(frame))


def event_table(tables: ValidatedTables, name: str) -> pa.Table:
    """A contract table's feature inputs as Arrow, converted once per tables object."""
    cache = tables.engine_cache
    if name not in cache:
        frame = tables.derived[name] if name in tables.derived else tables[name]
        if name in INPUT_COLUMNS:
            frame = frame[[c for c in INPUT_COLUMNS[name] if c in frame.columns]]
        cache[name] = _arrow(frame)
    return cache[name]


@dataclass
class FeatureInputs:
    """The Ibis tables the definitions read, whichever engine holds them: the spine
    ``(customer_id, as_of, _cutoff)``, the typed static attributes, and each event table
    present (``INPUT_COLUMNS``; the derived ``text_signals`` too when the plan has text)."""

    spine: ir.Table
    attributes: ir.Table
    events: dict[str, ir.Table]


def memory_inputs(tables: ValidatedTables, spine: pd.DataFrame, plan: FeaturePlan) -> FeatureInputs:
    """Inputs from validated in-memory tables, handed to the engine as Arrow."""
    events = {
        name: _memtable(event_table(tables, name)) for name in plan.tables if tables.has(name)
    }
    if plan.text_themes and TEXT_SIGNALS in tables.derived:
        events[TEXT_SIGNALS] = _memtable(event_table(tables, TEXT_SIGNALS))
    return FeatureInputs(
        _memtable(spine if "_cutoff" in spine else make_spine(spine)),
        _memtable(static_attributes(tables["customers"], plan.attributes)),
        events,
    )


def assemble_features(inputs: FeatureInputs, plan: FeaturePlan) -> ir.Table:
    """The whole feature frame as one Ibis expression (nothing runs yet), on any engine."""
    ctx = FeatureContext(
        plan.settings,
        {k: tuple(v) for k, v in plan.metrics.items()},
        tuple(plan.text_themes),
        tuple(getattr(plan, "text_intents", ())),
    )
    sp = inputs.spine if "_cutoff" in inputs.spine.columns else with_cutoff(inputs.spine)
    parts: list[ir.Table] = [static_features(sp, inputs.attributes, ctx)]
    builders = {
        "usage": usage_features,
        "tickets": ticket_features,
        "chats": chat_features,
        "nps_responses": nps_features,
    }
    for table in plan.tables:
        if table in inputs.events:
            parts.append(builders[table](sp, inputs.events[table], ctx))
    if plan.text_themes:
        if TEXT_SIGNALS not in inputs.events:
            raise ValueError(
                "this feature plan has text features: score the texts first "
                "(features.build.attach_text_signals with the model's text scorer)"
            )
        parts.append(text_features(sp, inputs.events[TEXT_SIGNALS], ctx))
    out = sp.select(*KEYS)
    for part in parts:
        joined = out.left_join(part, list(KEYS))
        out = joined.select(*out.columns, *[c for c in part.columns if c not in KEYS])
    present = set(out.columns)
    fills = {c: 0 for c in plan.zero_when_absent() if c in present}
    if fills:
        out = out.fill_null(fills)
    # Columns whose source table is missing at scoring time still exist, as unknown.
    missing = {c: ibis.null("float64") for c in plan.feature_names if c not in present}
    if missing:
        out = out.mutate(**missing)
    return out.select(*KEYS, *plan.feature_names)


def feature_expression(tables: ValidatedTables, spine: pd.DataFrame, plan: FeaturePlan) -> ir.Table:
    """The whole feature frame of in-memory tables as one Ibis expression."""
    if plan.text_themes and TEXT_SIGNALS not in tables.derived:
        raise ValueError(
            "this feature plan has text features: score the texts first "
            "(features.build.attach_text_signals with the model's text scorer)"
        )
    return assemble_features(memory_inputs(tables, spine, plan), plan)


def typed_features(frame: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """An engine's feature rows as the models expect them: floats, and strings or None."""
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[ns]")
    for column in plan.feature_names:
        if column not in plan.categorical:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        else:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def build_features(
    tables: ValidatedTables,
    pairs: pd.DataFrame,
    plan: FeaturePlan,
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """Features for each (customer_id, as_of) pair, using only rows dated on or before as_of."""
    pairs = make_spine(pairs).drop_duplicates(list(KEYS), ignore_index=True)
    if len(pairs) == 0:
        return pd.DataFrame(columns=[*KEYS, *plan.feature_names])
    # The engine is the caller's choice (settings at run time), never the plan's: a model
    # trained on Spark still scores one customer in the service on DuckDB.
    con = con or connect("duckdb")
    frame = typed_features(con.to_pandas(feature_expression(tables, pairs, plan)), plan)
    # Row order follows the pairs, whatever the engine did.
    return pairs[list(KEYS)].merge(frame, on=list(KEYS), how="left", validate="one_to_one")
