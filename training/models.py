"""The estimators: feature encoding, the churn head, the NPS heads and the response model."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from features.catalog import risk_direction
from features.contract import NPS_CATEGORIES
from npsrisk.settings import LightGBMSettings

OTHER = "__other__"
SINGLE_THREAD_ROWS = 100_000
MIN_ISOTONIC_POSITIVES = 100


class FeatureEncoder:
    """Feature records -> a float matrix in a fixed column order; categories -> integer codes.

    Missing columns and unseen categories become NaN, which LightGBM treats as missing.
    """

    def __init__(self, features: list[str], categorical: list[str], max_categories: int = 50):
        self.features = features
        self.categorical = categorical
        self.max_categories = max_categories

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        self.categories_: dict[str, list[str]] = {}
        for column in self.categorical:
            counts = frame[column].dropna().astype(str).value_counts(sort=True)
            levels = sorted(counts.index[: self.max_categories - 1])
            if len(counts) > len(levels):
                levels.append(OTHER)
            self.categories_[column] = levels
        self.codes_ = {
            c: {v: float(i) for i, v in enumerate(lv)} for c, lv in self.categories_.items()
        }
        self.categorical_indices_ = [self.features.index(c) for c in self.categorical]
        self.index_ = {name: i for i, name in enumerate(self.features)}
        return self

    def _code(self, column: str, values: pd.Series) -> np.ndarray:
        levels = [v for v in self.categories_[column] if v != OTHER]
        missing = values.isna().to_numpy()
        text = values.astype(object).where(~missing, None).astype(str)
        codes = pd.Categorical(text, categories=levels).codes.astype(float)
        codes[codes < 0] = self.codes_[column].get(OTHER, np.nan)  # unseen or rare level
        codes[missing] = np.nan
        return codes

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full((len(frame), len(self.features)), np.nan)
        for i, column in enumerate(self.features):
            if column not in frame.columns:
                continue
            if column in self.codes_:
                out[:, i] = self._code(column, frame[column])
            else:
                out[:, i] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        return out

    def transform_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The same as ``transform`` for a few dict records, without building a DataFrame."""
        out = np.full((len(records), len(self.features)), np.nan)
        for r, record in enumerate(records):
            for name, value in record.items():
                i = self.index_.get(name)
                if i is None or value is None:
                    continue
                if name in self.codes_:
                    codes = self.codes_[name]
                    out[r, i] = codes.get(str(value), codes.get(OTHER, np.nan))
                else:
                    try:  # noqa: SIM105 - hot path; contextlib.suppress costs more
                        out[r, i] = float(value)
                    except (TypeError, ValueError):
                        pass
        return out

    def decode(self, column: str, code: float) -> str | None:
        if code != code:
            return None
        return self.categories_[column][int(code)]


def lightgbm_params(settings: LightGBMSettings, objective: str, seed: int, **extra: Any) -> dict:
    params = {
        "objective": objective,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_child_samples,
        "bagging_fraction": settings.subsample,
        "bagging_freq": 1 if settings.subsample < 1 else 0,
        "feature_fraction": settings.colsample_bytree,
        "lambda_l2": settings.reg_lambda,
        "num_threads": settings.num_threads,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
    }
    params.update(extra)
    return params


def monotone_vector(features: list[str], sign: int) -> list[int]:
    """LightGBM monotone constraints from each feature's risk direction (sign -1 flips it)."""
    return [sign * risk_direction(name) for name in features]


def train_booster(
    params: dict,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    categorical: list[int],
    rounds: int,
    early_stopping: int,
    weight: np.ndarray | None = None,
    weight_val: np.ndarray | None = None,
) -> lgb.Booster:
    """Fit with early stopping on the validation slice; return the booster cut at its best round."""
    if params.get("num_threads", 0) == 0 and len(X) < SINGLE_THREAD_ROWS:
        # On small data OpenMP costs more than it gains, and its spinning threads thrash when
        # another process holds a core (measured: 8.7 s became 276 s); one thread is faster.
        params = {**params, "num_threads": 1}
    train = lgb.Dataset(X, y, weight=weight, categorical_feature=categorical, free_raw_data=True)
    valid = lgb.Dataset(
        X_val, y_val, weight=weight_val, categorical_feature=categorical, reference=train
    )
    booster = lgb.train(
        params,
        train,
        num_boost_round=rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(early_stopping, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


class Calibrator:
    """Raw margin -> probability: isotonic with enough positives, Platt scaling otherwise."""

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        if y.sum() >= MIN_ISOTONIC_POSITIVES and (len(y) - y.sum()) >= MIN_ISOTONIC_POSITIVES:
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
            self.method_ = "isotonic"
            self.x_, self.y_ = iso.X_thresholds_, iso.y_thresholds_
        else:
            platt = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y)
            self.method_ = "platt"
            self.a_, self.b_ = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        return self

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.method_ == "isotonic":
            return np.interp(raw, self.x_, self.y_)
        return expit(self.a_ * raw + self.b_)


class ChurnModel:
    """LightGBM classifier with calibrated probabilities."""

    def __init__(self, params: dict, rounds: int, early_stopping: int, monotone: list[int] | None):
        self.params = params
        self.rounds = rounds
        self.early_stopping = early_stopping
        self.monotone = monotone

    def fit(self, X, y, X_cal, y_cal, categorical: list[int]) -> ChurnModel:
        params = dict(self.params)
        if self.monotone and any(self.monotone):
            params.update(
                monotone_constraints=self.monotone, monotone_constraints_method="advanced"
            )
        self.booster_ = train_booster(
            params, X, y, X_cal, y_cal, categorical, self.rounds, self.early_stopping
        )
        self.calibrator_ = Calibrator().fit(self.booster_.predict(X_cal, raw_score=True), y_cal)
        return self

    def predict_proba(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.calibrator_(self.booster_.predict(X, raw_score=True, **predict_kw))

    def contributions(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        """SHAP values in log-odds, last column the base value (LightGBM pred_contrib).

        Each row sums to the raw margin, so ``calibrator_(row.sum())`` is the probability.
        """
        return self.booster_.predict(X, pred_contrib=True, **predict_kw)


class NpsModel:
    """Expected next score (regression) and detractor/passive/promoter probabilities."""

    def __init__(
        self,
        reg_params: dict,
        cls_params: dict,
        rounds: int,
        early_stopping: int,
        monotone: list[int] | None,
    ):
        self.reg_params = reg_params
        self.cls_params = cls_params
        self.rounds = rounds
        self.early_stopping = early_stopping
        self.monotone = monotone

    def fit(
        self, X, score, weight, X_cal, score_cal, weight_cal, categorical: list[int]
    ) -> NpsModel:
        reg = dict(self.reg_params)
        if self.monotone and any(self.monotone):
            reg.update(monotone_constraints=self.monotone, monotone_constraints_method="advanced")
        self.regressor_ = train_booster(
            reg,
            X,
            score,
            X_cal,
            score_cal,
            categorical,
            self.rounds,
            self.early_stopping,
            weight,
            weight_cal,
        )
        self.classifier_ = train_booster(
            self.cls_params,
            X,
            category_codes(score),
            X_cal,
            category_codes(score_cal),
            categorical,
            self.rounds,
            self.early_stopping,
            weight,
            weight_cal,
        )
        return self

    def predict_score(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return np.clip(self.regressor_.predict(X, **predict_kw), 0.0, 10.0)

    def predict_categories(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.classifier_.predict(X, **predict_kw)

    def contributions(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        """SHAP values in score points, last column the base value; rows sum to the score."""
        return self.regressor_.predict(X, pred_contrib=True, **predict_kw)


def category_codes(score: np.ndarray) -> np.ndarray:
    """0 detractor (0-6), 1 passive (7-8), 2 promoter (9-10)."""
    return np.select([score <= 6, score <= 8], [0, 1], 2).astype(float)


class ResponseModel:
    """P(customer answers the next survey | features), for inverse propensity weights."""

    def __init__(self, params: dict, rounds: int, early_stopping: int):
        self.params = params
        self.rounds = rounds
        self.early_stopping = early_stopping

    def fit(self, X, responded, X_cal, responded_cal, categorical: list[int]) -> ResponseModel:
        self.booster_ = train_booster(
            self.params,
            X,
            responded,
            X_cal,
            responded_cal,
            categorical,
            self.rounds,
            self.early_stopping,
        )
        self.rate_ = float(np.mean(responded))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster_.predict(X)

    def weights(self, X: np.ndarray, cap: float) -> np.ndarray:
        """Stabilised inverse propensity weights (rate / p), capped, mean 1."""
        w = np.minimum(self.rate_ / np.clip(self.predict(X), 1e-6, 1.0), cap)
        return w / w.mean()


__all__ = [
    "NPS_CATEGORIES",
    "ChurnModel",
    "FeatureEncoder",
    "NpsModel",
    "ResponseModel",
    "category_codes",
    "lightgbm_params",
    "monotone_vector",
]
