"""Request and response schemas of the CRM-facing API (../shared/API_CONTRACT.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Finite numbers only: 1e309, NaN, Infinity or a 400-digit integer is a 422 naming the field.
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]
FeatureValue = FiniteNumber | str | bool | None


def _integral(value):
    # JSON Schema counts 40.0 as an integer; so does the service (40.5, "5" and true are not).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInteger = Annotated[int, BeforeValidator(_integral)]
# A JSON boolean only (0, 1, "yes" are refused), for request models that cannot be strict as a
# whole (their dates arrive as strings).
StrictFlag = Annotated[bool, Field(strict=True)]
# JSON integers only (true, "5" and 40.5 are refused; 40.0 is 40), for the same models.
RequestInt = Annotated[int, BeforeValidator(_integral), Field(strict=True)]


def _iso(kind: type):
    def parse(value):
        if isinstance(value, kind) or value is None:
            return value
        if not isinstance(value, str):
            raise ValueError(f"send a {kind.__name__} as an ISO-8601 string")
        return kind.fromisoformat(value)  # ValueError (a 422) when it is not one

    return parse


# Dates and times as ISO-8601 strings only (a number is not a date).
RequestDate = Annotated[date, BeforeValidator(_iso(date))]
RequestTime = Annotated[datetime, BeforeValidator(_iso(datetime))]
# Requests are strict (no coercion): explain is a JSON boolean, top_k a JSON integer, ids are
# strings. The published schema says the same (additionalProperties false, every bound);
# maxima that are settings (top_k, ids, records) are filled in by serving.openapi.
STRICT = ConfigDict(extra="forbid", strict=True)


class PredictRequest(BaseModel):
    """Score customers from their latest materialized features."""

    model_config = STRICT

    customer_ids: list[CustomerId] = Field(
        min_length=1,
        description="Customers to score; at most serving.max_ids_per_request (default 1000). "
        "Duplicates are scored once.",
        examples=[["C-000123", "C-000456"]],
    )
    explain: bool = Field(True, description="Return SHAP drivers with each prediction.")
    top_k: JsonInteger = Field(
        5, ge=1, description="Drivers per target (at most serving.max_top_k)."
    )


class PredictFeaturesRequest(BaseModel):
    """Score records supplied by the caller (what-if analysis, CRMs holding their own data)."""

    model_config = STRICT

    records: list[dict[str, FeatureValue]] = Field(
        min_length=1,
        description="Feature records named as in the model signature; missing features are "
        "allowed. An optional 'customer_id' key is echoed back. At most "
        "serving.max_records_per_request (default 1000).",
        examples=[[{"customer_id": "what-if-1", "plan_tier": "pro", "tickets_open": 4}]],
    )

    @field_validator("records")
    @classmethod
    def _ids_are_strings(cls, records: list[dict]) -> list[dict]:
        for i, record in enumerate(records):
            cid = record.get("customer_id")
            if cid is not None and not isinstance(cid, str):
                # A numeric id would come back as "12.0"; ids are strings.
                raise ValueError(f"records.{i}.customer_id must be a string")
        return records

    explain: bool = Field(True, description="Return SHAP drivers with each prediction.")
    top_k: JsonInteger = Field(
        5, ge=1, description="Drivers per target (at most serving.max_top_k)."
    )


class Driver(BaseModel):
    """One SHAP contribution, with the feature value in words."""

    feature: str = Field(description="Feature name as in the model signature.")
    value: FeatureValue = Field(description="The customer's value of the feature (null: missing).")
    contribution: float = Field(
        description="Exact SHAP value in the head's raw units, additive: for churn log-odds "
        "(a row's churn contributions plus the base value sum to the raw churn score the "
        "calibrator turns into churn_probability); for NPS raw score points (they sum to the "
        "raw score that score_distribution is a function of). Never add probabilities."
    )
    effect: float | None = Field(
        None,
        description="This driver's effect in the output's own units: churn_probability (or, "
        "for NPS, predicted_nps) minus its value with this contribution removed, computed "
        "through the calibration; effects of several drivers do not add up.",
    )
    target: Literal["churn", "nps"] = Field(description="Which prediction this driver explains.")
    description: str = Field(description="The value in plain words a person can act on.")


class CategoryProbabilities(BaseModel):
    """Probabilities of the three NPS categories (they sum to 1)."""

    detractor: float = Field(description="P(next score 0-6).")
    passive: float = Field(description="P(next score 7-8).")
    promoter: float = Field(description="P(next score 9-10).")


class ScoreMove(BaseModel):
    """One output at the previous materialization and now."""

    before: float = Field(description="At the previous materialization (same model).")
    after: float = Field(description="Now.")


class FeatureChange(BaseModel):
    """One feature whose value changed, and what that change moved the output by."""

    feature: str = Field(description="Feature name as in the model signature.")
    target: Literal["churn", "nps"] = Field(description="Which prediction it moved.")
    before: FeatureValue = Field(description="The value at the previous materialization.")
    after: FeatureValue = Field(description="The value now.")
    contribution_change: float = Field(
        description="Its SHAP contribution now minus then, in the head's raw units (churn "
        "log-odds, NPS raw points); over all features these add up to the raw score's move."
    )
    effect: float | None = Field(
        description="The output now minus the output with only this change undone, through "
        "the calibration (churn: probability, NPS: predicted score points), computed like a "
        "driver's effect; effects of several changes do not add up."
    )
    description: str = Field(description="The value now in plain words.")


class PredictionChange(BaseModel):
    """Why the score moved since the previous materialization, from the SHAP contributions of
    both dates (both scored by the serving model, so the move is the data's)."""

    since: str = Field(description="As-of date of the previous materialization.")
    churn_probability: ScoreMove | None = Field(description="Null without a churn model.")
    predicted_nps: ScoreMove | None = Field(description="Null without an NPS model.")
    previous_risk_tier: Literal["low", "medium", "high"] | None = Field(
        description="The risk tier then, by the same thresholds."
    )
    features: list[FeatureChange] = Field(
        description="The features whose value changed, top_k per target by decreasing "
        "|contribution_change| (churn first, then NPS)."
    )
    summary: str = Field(
        description="In words, e.g. 'churn risk 12% → 31% since 2025-05-31: tickets open 0 → "
        "4 (+9 points), ...'."
    )


class Prediction(BaseModel):
    """One customer's prediction. Fields a model cannot predict are null."""

    customer_id: str | None = Field(description="The customer (or the record's customer_id).")
    churn_probability: float | None = Field(
        description="Calibrated probability of churning within the horizon (null without a "
        "churn model)."
    )
    predicted_nps: float | None = Field(
        description="Expected next NPS score, 0-10: the mean of score_distribution."
    )
    nps_category: Literal["detractor", "passive", "promoter"] | None = Field(
        description="The most likely category under score_distribution (the largest of "
        "category_probabilities)."
    )
    category_probabilities: CategoryProbabilities | None = Field(
        description="Probabilities of the three NPS categories: sums of score_distribution "
        "over 0-6, 7-8 and 9-10."
    )
    score_distribution: list[float] | None = Field(
        None,
        description="P(next score = 0), ..., P(next score = 10): the one NPS distribution every "
        "other NPS field is derived from. Returned with explain=true.",
    )
    risk_tier: Literal["low", "medium", "high"] | None = Field(
        description="From the churn probability (or, without a churn model, the detractor "
        "probability) and the serving.risk_tiers thresholds."
    )
    drivers: list[Driver] | None = Field(
        None,
        description="Top drivers of each target (churn first, then NPS), each group by "
        "decreasing |contribution|. Omitted with explain=false.",
    )
    change: PredictionChange | None = Field(
        None,
        description="/predict with explain=true: why the score moved since the previous "
        "materialization kept beside the current one; null when none is kept or the customer "
        "was not in it. Omitted with explain=false and for /predict_features.",
    )


class ModelInfo(BaseModel):
    name: str = Field(description="Registered model name.")
    version: str = Field(description="Registered model version.")
    trained_at: str | None = Field(description="When the version was trained (UTC, ISO-8601).")
    predicts: list[Literal["churn", "nps"]] = Field(description="Targets this version predicts.")
    note: str | None = Field(
        None, description="Why some fields are null, when the version lacks a target."
    )


class PredictResponse(BaseModel):
    model: ModelInfo = Field(description="The model version that produced the predictions.")
    features_as_of: str | None = Field(
        description="As-of date of the materialized features used (null for inline records)."
    )
    predictions: list[Prediction] = Field(
        description="One per known customer (or record), in request order."
    )
    unknown_customer_ids: list[str] = Field(
        description="Requested ids with no materialized features; never an error."
    )


class HealthResponse(BaseModel):
    """/healthz and /livez: the process is alive."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["alive"] = Field(description="Always 'alive'.")


class ReadyResponse(BaseModel):
    """/readyz: a model and a feature store are loaded."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ready"] = Field(description="Always 'ready' (else a 503 error body).")
    model: ModelInfo = Field(description="The model version now serving.")
    features_as_of: str | None = Field(description="As-of date of the features now serving.")


class ReloadResponse(BaseModel):
    reloaded: bool = Field(description="Whether the model or feature store changed.")
    model: ModelInfo = Field(description="The model version now serving.")
    features_as_of: str | None = Field(description="As-of date of the features now serving.")
    detail: str = Field(description="What was loaded, or why nothing changed.")


class FeatureInfo(BaseModel):
    """One feature of the serving model (features.catalog)."""

    name: str = Field(description="Feature name, as accepted by /predict_features.")
    type: Literal["number", "boolean", "category"] = Field(description="Value type.")
    unit: str | None = Field(description="Unit of a number, e.g. days or tickets.")
    minimum: float | None = Field(description="Smallest accepted value (numbers).")
    maximum: float | None = Field(description="Largest accepted value (numbers).")
    integer: bool = Field(description="Whether only whole numbers are accepted.")
    categories: list[str] | None = Field(
        description="Accepted values of a category (seen in training); others are rejected."
    )
    description: str = Field(description="What the feature measures.")
    when_missing: str = Field(description="What a missing value means, in words.")
    risk_direction: Literal[-1, 0, 1] = Field(
        description="+1: more of it can only raise churn risk; -1: only lower it; 0: either."
    )


class ValidationSummary(BaseModel):
    window: list[str] | None = Field(description="As-of dates of the held-out window.")
    metrics: dict[str, dict[str, float]] | None = Field(
        description="Held-out metrics per head, e.g. churn.roc_auc, nps.mae."
    )


class ModelCardResponse(ModelInfo):
    """The serving model's card and its features (GET /model)."""

    heads: list[Literal["churn", "nps"]] = Field(description="Heads this version has.")
    horizon_days: int | None = Field(description="Label horizon the version was trained on.")
    validation: ValidationSummary = Field(description="How the version was validated.")
    features_as_of: str | None = Field(description="As-of date of the features now serving.")
    features: list[FeatureInfo] = Field(
        description="Every feature, in the model's order; /predict_features accepts exactly "
        "these names (and customer_id)."
    )


class ErrorResponse(BaseModel):
    """Every 4xx/5xx response body."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="Machine-readable code, e.g. validation_error.")
    detail: str = Field(description="What to fix.")


# --- acting on predictions (interventions/) -----------------------------------------------

Tier = Literal["low", "medium", "high"]
InterventionStatus = Literal["planned", "contacted", "resolved", "dismissed", "snoozed"]


class PresurveyRequest(BaseModel):
    """Customers about to be surveyed; the plan never suppresses or delays their survey."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerId] = Field(
        min_length=1,
        description="Customers the wave will survey; at most serving.max_ids_per_request.",
        examples=[["C-000123", "C-000456"]],
    )
    survey_date: RequestDate = Field(description="When the survey goes out (YYYY-MM-DD).")
    top_k: RequestInt = Field(5, ge=1, description="Drivers per target in each prediction.")
    dry_run: StrictFlag = Field(
        False, description="Plan without storing (no interventions opened, no webhooks)."
    )


class PresurveyItem(BaseModel):
    """One scheduled customer. Every requested id appears exactly once per request row."""

    customer_id: str
    survey_date: date
    known: bool = Field(description="False: no materialized features (still listed).")
    prediction: Prediction | None
    arm: Literal["treatment", "control", "none", "open_intervention", "unknown"] = Field(
        description="treatment: planned outreach; control: randomly held out (no outreach); "
        "none: no playbook applies; open_intervention: already being worked on."
    )
    intervene: bool = Field(description="Whether outreach is recommended before the survey.")
    intervention_id: str | None = Field(description="The stored intervention (new or open).")
    playbook: str | None
    action: str | None
    priority: str | None
    owner_role: str | None
    owner: str | None = Field(description="The person (from the owners file or customers.owner).")
    due_date: date | None
    too_soon: bool = Field(description="The survey leaves less than the lead time: act today.")
    why: list[str] = Field(description="The drivers and themes behind the playbook, in words.")
    drivers: list[str]
    themes: list[str]
    revenue_at_risk: float | None = Field(description="MRR x churn probability.")
    survey_suppressed: Literal[False] = Field(
        False, description="Always false: planning never suppresses or delays a survey."
    )


class PresurveyResponse(BaseModel):
    wave_id: str
    planned_on: date
    seed: int = Field(description="Seed of the control assignment, recorded with the plan.")
    control_share: float
    stored: bool
    model: ModelInfo
    features_as_of: str | None
    counts: dict[str, int]
    items: list[PresurveyItem] = Field(description="One per requested id, in request order.")
    unknown_customer_ids: list[str]


class AtRiskRequest(BaseModel):
    """``GET /at_risk`` query (any other query key filters a segment column)."""

    model_config = ConfigDict(extra="forbid")

    limit: RequestInt = Field(50, ge=1, le=1000)
    offset: RequestInt = Field(0, ge=0, le=1_000_000_000)
    sort: Literal["churn_probability", "detractor_probability", "revenue_at_risk"] = (
        "churn_probability"
    )
    order: Literal["desc", "asc"] = "desc"
    min_tier: Tier | None = None
    owner: str | None = None
    intervention_status: InterventionStatus | Literal["none"] | None = Field(
        None, description="Only customers whose latest intervention has this status."
    )
    segments: dict[str, str] = Field(
        default_factory=dict,
        description="Segment filters, e.g. plan_tier=enterprise (comma-separated: any of).",
    )
    top_k: RequestInt = Field(3, ge=1, le=20)
    newly_at_risk: StrictFlag = Field(
        False,
        description="Only customers whose tier rose to medium or high since the previous "
        "materialization.",
    )


class AtRiskItem(BaseModel):
    rank: int
    customer_id: str
    churn_probability: float | None
    detractor_probability: float | None
    risk_tier: Tier | None
    mrr: float | None
    revenue_at_risk: float | None
    segments: dict[str, FeatureValue]
    owner: str | None
    intervention_status: str
    previous_risk_tier: Tier | None = Field(
        description="The tier at the previous materialization (null: not scored then)."
    )
    churn_change: float | None = Field(
        description="Churn probability now minus at the previous materialization."
    )
    themes: list[str]
    drivers: list[Driver]
    change: PredictionChange | None = Field(
        description="Why the score moved since the previous materialization (null: none kept, "
        "or the customer was not in it)."
    )


class AtRiskResponse(BaseModel):
    model: ModelInfo
    features_as_of: str | None
    total: int = Field(description="Customers passing the filters (the list is paged).")
    offset: int
    limit: int
    items: list[AtRiskItem]


class NpsForecastRequest(BaseModel):
    """``GET /nps_forecast`` query; any other key filters a segment column."""

    model_config = ConfigDict(extra="forbid")

    survey_date: RequestDate | None = Field(
        None, description="The wave: customers of the latest stored plan for this date."
    )
    customer_ids: list[CustomerId] | None = Field(
        None, description="Who the wave surveys (POST only); default: the stored wave."
    )
    segments: dict[str, str] = Field(default_factory=dict)


class NpsEstimateOut(BaseModel):
    nps: float | None
    low: float | None
    high: float | None
    customers: int
    expected_respondents: float | None = None


class NpsForecastResponse(BaseModel):
    model: ModelInfo
    features_as_of: str | None
    survey_date: date | None
    wave: NpsEstimateOut = Field(description="NPS the wave is expected to report, interval.")
    base: NpsEstimateOut = Field(description="NPS of the whole base if everyone answered.")
    last_measured: dict[str, float | int | None]
    response_model: str
    segments: list[dict]
    pulling_down: list[dict]
    themes_pulling_down: list[dict]
    dropped_segments: list[dict]


class InterventionsRequest(BaseModel):
    """``GET /interventions`` query."""

    model_config = ConfigDict(extra="forbid")

    status: InterventionStatus | None = None
    owner: str | None = None
    customer_id: str | None = None
    playbook: str | None = None
    since: RequestTime | None = Field(None, description="Changed at or after this time (UTC).")
    limit: RequestInt = Field(100, ge=1, le=1000)
    offset: RequestInt = Field(0, ge=0, le=1_000_000_000)


class InterventionEvent(BaseModel):
    kind: Literal["status", "owner"]
    from_status: str | None
    to_status: str | None
    from_owner: str | None
    to_owner: str | None
    actor: str
    note: str | None
    snooze_until: date | None
    at: str


class Intervention(BaseModel):
    id: str
    wave_id: str | None
    customer_id: str
    playbook: str
    action: str
    priority: str
    owner_role: str
    owner: str | None
    status: InterventionStatus
    due_date: date | None
    survey_date: date | None
    too_soon: bool
    snooze_until: date | None
    why: list[str]
    drivers: list[str]
    themes: list[str]
    revenue_at_risk: float | None
    created_at: str
    updated_at: str
    history: list[InterventionEvent] = Field(default_factory=list)


class InterventionsResponse(BaseModel):
    total: int
    offset: int
    limit: int
    interventions: list[Intervention]


class StatusChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, description="Taken from the path /interventions/{id}/status.")
    status: InterventionStatus
    note: str | None = Field(None, max_length=5000)
    actor: str = Field(min_length=1, max_length=320, description="Who made the change.")
    snooze_until: RequestDate | None = None


class ReassignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_owner: str = Field(min_length=1, max_length=320)
    actor: str = Field(min_length=1, max_length=320)
    intervention_ids: list[str] | None = Field(None, max_length=10000)
    from_owner: str | None = None
    note: str | None = None


class ReassignResponse(BaseModel):
    moved: int
