"""Baselines fitted in every run so the model's lift is visible: base rate, last NPS
carried forward, and logistic/linear regression on the same features."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from features.contract import NPS_CATEGORIES
from training.models import category_codes

PREDICTION_COLUMNS = (
    "churn_probability",
    "predicted_nps",
    "p_detractor",
    "p_passive",
    "p_promoter",
)


def empty_predictions(n: int) -> pd.DataFrame:
    return pd.DataFrame({c: np.full(n, np.nan) for c in PREDICTION_COLUMNS})


def _category_probs(codes: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    w = np.ones(len(codes)) if weight is None else weight
    counts = np.array([w[codes == k].sum() for k in range(3)]) + 1.0  # Laplace
    return counts / counts.sum()


class BaseRateBaseline:
    """Everyone gets the training churn rate, mean score and category shares.

    Every baseline is fitted as ``fit(frame, churned, nps_frame, score, weight)``: the churn
    rows with their labels, then the survey respondents with their scores and weights
    (``churned`` or ``score`` is None when that label source is absent).
    """

    name = "base_rate"

    def fit(self, frame, churned, nps_frame, score, weight=None) -> BaseRateBaseline:
        self.churn_ = None if churned is None else float(np.mean(churned))
        if score is not None:
            self.score_ = float(np.average(score, weights=weight))
            self.probs_ = _category_probs(category_codes(score), weight)
        else:
            self.score_ = None
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = empty_predictions(len(frame))
        if self.churn_ is not None:
            out["churn_probability"] = self.churn_
        if self.score_ is not None:
            out["predicted_nps"] = self.score_
            for k, name in enumerate(NPS_CATEGORIES):
                out[f"p_{name}"] = self.probs_[k]
        return out


def _last_category(frame: pd.DataFrame) -> np.ndarray:
    """-1 never answered, else the category code of the last answer."""
    if "nps_last_score" not in frame:
        return np.full(len(frame), -1)
    last = frame["nps_last_score"].to_numpy(dtype=float)
    return np.where(np.isnan(last), -1, category_codes(np.nan_to_num(last)))


class LastNpsBaseline:
    """The last NPS answer carried forward (mean score for customers who never answered);
    churn and category odds are the training rates given that last answer."""

    name = "last_nps"

    def fit(self, frame, churned, nps_frame, score, weight=None) -> LastNpsBaseline:
        last = _last_category(frame)
        self.churn_ = None
        if churned is not None:
            overall = float(np.mean(churned))
            self.churn_ = {
                k: float(np.mean(churned[last == k])) if (last == k).sum() >= 20 else overall
                for k in (-1, 0, 1, 2)
            }
        self.score_ = None
        if score is not None:
            self.score_ = float(np.average(score, weights=weight))
            codes = category_codes(score)
            last = _last_category(nps_frame)
            w = np.ones(len(score)) if weight is None else weight
            self.probs_ = {
                k: _category_probs(codes[last == k], w[last == k]) for k in (-1, 0, 1, 2)
            }
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = empty_predictions(len(frame))
        last = _last_category(frame)
        if self.churn_ is not None:
            out["churn_probability"] = pd.Series(last).map(self.churn_).to_numpy()
        if self.score_ is not None:
            carried = (
                frame["nps_last_score"].to_numpy(dtype=float)
                if "nps_last_score" in frame
                else np.full(len(frame), np.nan)
            )
            out["predicted_nps"] = np.where(np.isnan(carried), self.score_, carried)
            probs = np.vstack([self.probs_[k] for k in last]) if len(last) else np.empty((0, 3))
            for k, name in enumerate(NPS_CATEGORIES):
                out[f"p_{name}"] = probs[:, k]
        return out


def _linear_features(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    # Counts and amounts are heavy-tailed; a signed log keeps the linear model stable.
    signed_log = FunctionTransformer(
        lambda x: np.sign(x) * np.log1p(np.abs(x)), feature_names_out="one-to-one"
    )
    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    signed_log,
                    StandardScaler(),
                ),
                numeric,
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(
                        strategy="constant", fill_value="missing", keep_empty_features=True
                    ),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                ),
                categorical,
            ),
        ]
    )


class LinearBaseline:
    """Logistic regression for churn and categories, ridge regression for the score."""

    name = "logistic"

    def __init__(self, numeric: list[str], categorical: list[str], seed: int = 0):
        self.numeric = numeric
        self.categorical = categorical
        self.seed = seed

    def _prep(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.reindex(columns=self.numeric + self.categorical)
        frame[self.categorical] = (
            frame[self.categorical].astype(object).where(frame[self.categorical].notna(), None)
        )
        return frame

    def fit(self, frame, churned, nps_frame, score, weight=None) -> LinearBaseline:
        self.churn_ = self.score_ = self.cats_ = None
        if churned is not None:
            self.churn_ = Pipeline(
                [
                    ("x", _linear_features(self.numeric, self.categorical)),
                    ("m", LogisticRegression(C=0.5, solver="newton-cholesky", max_iter=200)),
                ]
            )
            self.churn_.fit(self._prep(frame), churned)
        if score is not None:
            X = self._prep(nps_frame)
            self.score_ = Pipeline(
                [("x", _linear_features(self.numeric, self.categorical)), ("m", Ridge(alpha=1.0))]
            )
            self.score_.fit(X, score, m__sample_weight=weight)
            self.cats_ = Pipeline(
                [
                    ("x", _linear_features(self.numeric, self.categorical)),
                    ("m", LogisticRegression(C=0.5, solver="newton-cholesky", max_iter=200)),
                ]
            )
            self.cats_.fit(X, category_codes(score), m__sample_weight=weight)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = empty_predictions(len(frame))
        X = self._prep(frame)
        if self.churn_ is not None:
            out["churn_probability"] = self.churn_.predict_proba(X)[:, 1]
        if self.score_ is not None:
            out["predicted_nps"] = np.clip(self.score_.predict(X), 0, 10)
            probs = np.zeros((len(frame), 3))
            probs[:, self.cats_.classes_.astype(int)] = self.cats_.predict_proba(X)
            for k, name in enumerate(NPS_CATEGORIES):
                out[f"p_{name}"] = probs[:, k]
        return out
