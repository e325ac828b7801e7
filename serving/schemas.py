"""Request and response schemas of the CRM-facing API (../shared/API_CONTRACT.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
FeatureValue = float | str | bool | None


class PredictRequest(BaseModel):
    """Score customers from their latest materialized features."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerId] = Field(
        min_length=1,
        description="Customers to score; at most serving.max_ids_per_request (default 1000). "
        "Duplicates are scored once.",
        examples=[["C-000123", "C-000456"]],
    )
    explain: bool = Field(True, description="Return SHAP drivers with each prediction.")
    top_k: int = Field(5, ge=1, description="Drivers per target (at most serving.max_top_k).")


class PredictFeaturesRequest(BaseModel):
    """Score records supplied by the caller (what-if analysis, CRMs holding their own data)."""

    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, FeatureValue]] = Field(
        min_length=1,
        description="Feature records named as in the model signature; missing features are "
        "allowed. An optional 'customer_id' key is echoed back. At most "
        "serving.max_records_per_request (default 1000).",
        examples=[[{"customer_id": "what-if-1", "plan_tier": "pro", "tickets_open": 4}]],
    )
    explain: bool = Field(True, description="Return SHAP drivers with each prediction.")
    top_k: int = Field(5, ge=1, description="Drivers per target (at most serving.max_top_k).")


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

    error: str = Field(description="Machine-readable code, e.g. validation_error.")
    detail: str = Field(description="What to fix.")
