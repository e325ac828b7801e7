"""The estimators: feature encoding, raw-score heads (trees, linear, blend), the churn and NPS
models built on them, and the response model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from features.catalog import risk_direction
from features.contract import NPS_CATEGORIES
from npsrisk.settings import LightGBMSettings
from training.calibration import (
    Calibrator,
    OrdinalLink,
    category_probabilities,
    expected_score,
)

if TYPE_CHECKING:  # frames are encoded in training and batch scoring; a worker has arrays
    import pandas as pd

OTHER = "__other__"
SINGLE_THREAD_ROWS = 100_000


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
        import pandas as pd

        levels = [v for v in self.categories_[column] if v != OTHER]
        missing = values.isna().to_numpy()
        text = values.astype(object).where(~missing, None).astype(str)
        codes = pd.Categorical(text, categories=levels).codes.astype(float)
        codes[codes < 0] = self.codes_[column].get(OTHER, np.nan)  # unseen or rare level
        codes[missing] = np.nan
        return codes

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        import pandas as pd

        out = np.full((len(frame), len(self.features)), np.nan)
        for i, column in enumerate(self.features):
            if column not in frame.columns:
                continue
            if column in self.codes_:
                out[:, i] = self._code(column, frame[column])
            else:
                out[:, i] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        return out

    def _level_code(self, column: str, value: Any) -> float:
        """One category's code; an unseen or rare level takes the 'other' code (or NaN)."""
        codes = self.codes_[column]
        return codes.get(str(value), codes.get(OTHER, np.nan))

    def transform_columns(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The same as ``transform`` for NumPy columns (a feature store's), without pandas:
        a restarted worker encodes an uncached store with it. A numeric feature held as text
        takes the frame path, whose parsing it needs."""
        out = np.full((n, len(self.features)), np.nan)
        for i, column in enumerate(self.features):
            values = columns.get(column)
            if values is None:
                continue
            if column in self.codes_:
                out[:, i] = [
                    np.nan if v is None or v != v else self._level_code(column, v)
                    for v in values.tolist()
                ]
            elif values.dtype.kind in "fiub":
                out[:, i] = values.astype(float)
            else:
                import pandas as pd

                return self.transform(pd.DataFrame(dict(columns)))
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
                    out[r, i] = self._level_code(name, value)
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


class TreeScorer:
    """A LightGBM booster's raw score, with exact tree SHAP from ``pred_contrib``."""

    kind = "lightgbm"

    def __init__(self, booster: lgb.Booster, params: dict | None = None):
        self.booster = booster
        self.params = params or {}

    def raw(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.booster.predict(X, raw_score=True, **predict_kw)

    def contributions(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.booster.predict(X, pred_contrib=True, **predict_kw)

    def importance(self) -> np.ndarray:
        return self.booster.feature_importance("gain").astype(float)


class LinearDesign:
    """The encoded matrix -> a design matrix a linear model can use well, and back.

    Numeric columns: a missing indicator (where any value is missing), the median for missing
    values, log1p for heavy-tailed non-negative counts and amounts, standardisation, and a
    clip at +-6 standard deviations so one absurd value cannot dominate a score.
    Categorical codes: one-hot. ``owner_[j]`` is the feature each design column belongs to, so
    contributions add back up per raw feature.
    """

    CLIP = 6.0

    def fit(self, X: np.ndarray, categorical: list[int]) -> LinearDesign:
        self.categorical_ = set(categorical)
        self.n_features_ = X.shape[1]
        self.columns_: list[tuple[str, int, float, float, float]] = []  # kind, j, a, b, c
        for j in range(X.shape[1]):
            col = X[:, j]
            seen = col[~np.isnan(col)]
            if j in self.categorical_:
                for level in np.unique(seen):
                    self.columns_.append(("level", j, float(level), 0.0, 0.0))
                continue
            if np.isnan(col).any():
                self.columns_.append(("missing", j, 0.0, 0.0, 0.0))
            if len(seen) == 0:
                continue
            median = float(np.median(seen))
            log = bool(seen.min() >= 0 and _skew(seen) > 1.0)
            values = np.log1p(seen) if log else seen
            centre = float(np.log1p(median) if log else median)
            sd = float(values.std())
            if sd > 0:
                self.columns_.append(("log" if log else "value", j, median, centre, sd))
        self.owner_ = np.array([c[1] for c in self.columns_], dtype=int)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = np.empty((len(X), len(self.columns_)))
        for i, (kind, j, a, b, c) in enumerate(self.columns_):
            col = X[:, j]
            if kind == "level":
                Z[:, i] = col == a
            elif kind == "missing":
                Z[:, i] = np.isnan(col)
            else:
                filled = np.where(np.isnan(col), a, col)
                if kind == "log":
                    filled = np.log1p(np.maximum(filled, 0.0))
                Z[:, i] = np.clip((filled - b) / c, -self.CLIP, self.CLIP)
        return Z

    def value_columns(self) -> np.ndarray:
        """Design columns that increase with their feature's value (for sign constraints)."""
        return np.array([c[0] in ("value", "log") for c in self.columns_], dtype=bool)


def _skew(values: np.ndarray) -> float:
    sd = values.std()
    return float(np.mean(((values - values.mean()) / sd) ** 3)) if sd > 0 else 0.0


class LinearScorer:
    """A regularised linear model on ``LinearDesign`` columns (logistic for churn, ridge for
    NPS), with exact linear SHAP: coef x (z - training mean of z), summed per raw feature."""

    kind = "linear"

    def __init__(self, objective: str, strength: float, signs: list[int] | None = None):
        self.objective = objective  # "binary" or "regression"
        self.strength = strength  # C for logistic, alpha for ridge
        self.signs = signs  # per raw feature: +1 coefficient >= 0, -1 <= 0, 0 free

    def fit(self, X, y, categorical: list[int], weight=None) -> LinearScorer:
        from sklearn.linear_model import LogisticRegression, Ridge

        self.design_ = LinearDesign().fit(X, categorical)
        Z = self.design_.transform(X)
        allowed = np.ones(Z.shape[1], dtype=bool)
        # Sign constraints the way the trees have them: a column whose coefficient has the
        # wrong sign for its declared risk direction is dropped and the model refitted.
        for _ in range(4):
            if self.objective == "binary":
                # Newton steps: a few passes over the data for ~100 columns (lbfgs took 20x).
                model = LogisticRegression(C=self.strength, solver="newton-cholesky", max_iter=100)
            else:
                model = Ridge(alpha=self.strength)
            model.fit(Z[:, allowed], y, sample_weight=weight)
            coef = np.zeros(Z.shape[1])
            coef[allowed] = np.ravel(model.coef_)
            wrong = self._wrong_signs(coef)
            if not wrong.any():
                break
            allowed &= ~wrong
        else:
            coef[self._wrong_signs(coef)] = 0.0
        self.coef_ = coef
        self.intercept_ = float(np.ravel(model.intercept_)[0])
        self.mean_ = Z.mean(axis=0)
        return self

    def _wrong_signs(self, coef: np.ndarray) -> np.ndarray:
        if not self.signs or not any(self.signs):
            return np.zeros(len(coef), dtype=bool)
        sign = np.asarray(self.signs)[self.design_.owner_]
        return self.design_.value_columns() & (sign * coef < 0)

    def raw(self, X: np.ndarray, **_predict_kw) -> np.ndarray:
        return self.design_.transform(X) @ self.coef_ + self.intercept_

    def contributions(self, X: np.ndarray, **_predict_kw) -> np.ndarray:
        parts = (self.design_.transform(X) - self.mean_) * self.coef_
        out = np.zeros((len(X), self.design_.n_features_ + 1))
        np.add.at(out.T, self.design_.owner_, parts.T)
        out[:, -1] = self.intercept_ + float(self.mean_ @ self.coef_)
        return out

    def importance(self) -> np.ndarray:
        out = np.zeros(self.design_.n_features_)
        np.add.at(out, self.design_.owner_, np.abs(self.coef_))
        return out


class BlendScorer:
    """A weighted sum of scorers' raw scores; its contributions are the same sum of theirs."""

    kind = "blend"

    def __init__(self, parts: list, weights: list[float]):
        self.parts = parts
        self.weights = weights

    def raw(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return sum(
            w * p.raw(X, **predict_kw) for p, w in zip(self.parts, self.weights, strict=True)
        )

    def contributions(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return sum(
            w * p.contributions(X, **predict_kw)
            for p, w in zip(self.parts, self.weights, strict=True)
        )

    def importance(self) -> np.ndarray:
        total = []
        for part, w in zip(self.parts, self.weights, strict=True):
            imp = part.importance()
            total.append(w * imp / (imp.sum() or 1.0))
        return sum(total)


def describe_scorer(scorer) -> str:
    if isinstance(scorer, BlendScorer):
        inner = " + ".join(
            f"{w:.2f} x {p.kind}" for p, w in zip(scorer.parts, scorer.weights, strict=True)
        )
        return f"blend ({inner})"
    return scorer.kind


class ChurnModel:
    """A raw-score head (trees, linear or a blend) and its smooth calibrator."""

    def __init__(self, scorer, calibrator: Calibrator):
        self.scorer = scorer
        self.calibrator_ = calibrator

    def raw(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.scorer.raw(X, **predict_kw)

    def predict_proba(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.calibrator_(self.scorer.raw(X, **predict_kw))

    def contributions(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        """SHAP values in log-odds (the raw margin), last column the base value.

        Each row sums to the raw margin, so ``calibrator_(row.sum())`` is the probability.
        """
        return self.scorer.contributions(X, **predict_kw)


class NpsModel:
    """A raw NPS score (trees, linear or a blend, in score points) and the one distribution
    over the scores 0-10 it implies, from which every NPS output is derived."""

    def __init__(self, scorer, link: OrdinalLink):
        self.scorer = scorer
        self.link_ = link

    def raw(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.scorer.raw(X, **predict_kw)

    def distribution(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return self.link_.distribution(self.scorer.raw(X, **predict_kw))

    def predict_score(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return expected_score(self.distribution(X, **predict_kw))

    def predict_categories(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        return category_probabilities(self.distribution(X, **predict_kw))

    def contributions(self, X: np.ndarray, **predict_kw) -> np.ndarray:
        """SHAP values in raw score points, last column the base value; rows sum to the raw
        score that the distribution is a function of."""
        return self.scorer.contributions(X, **predict_kw)


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
    "BlendScorer",
    "ChurnModel",
    "FeatureEncoder",
    "LinearScorer",
    "NpsModel",
    "ResponseModel",
    "TreeScorer",
    "category_codes",
    "lightgbm_params",
    "monotone_vector",
]
