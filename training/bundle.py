"""The deployable model: encoder, churn head and NPS heads as one MLflow pyfunc."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from features.catalog import FeatureCatalog, learn_catalog
from features.contract import NPS_CATEGORIES
from training.models import ChurnModel, FeatureEncoder, NpsModel

OUTPUT_COLUMNS = (
    "churn_probability",
    "predicted_nps",
    "p_detractor",
    "p_passive",
    "p_promoter",
    "nps_category",
)
TARGETS = ("churn", "nps")


class NpsRiskModel(mlflow.pyfunc.PythonModel):
    """Scores feature records: churn probability, expected NPS and category probabilities.

    Works through ``mlflow.pyfunc.load_model`` on plain columns (strings for categories,
    numbers for the rest; missing columns are allowed), and exposes ``score`` and
    ``contributions`` on numpy matrices for the service's fast path.
    """

    text = None  # versions trained before text features existed unpickle without one
    catalog_data = None  # versions trained before the feature catalogue: see ``catalog``
    response = None  # nor, before forecasts used it, the survey-response model

    def __init__(
        self,
        encoder: FeatureEncoder,
        churn: ChurnModel | None,
        nps: NpsModel | None,
        plan: dict[str, Any],
        info: dict[str, Any],
        text: Any = None,
        catalog: dict[str, Any] | None = None,
        response: Any = None,
    ):
        self.encoder = encoder
        self.churn = churn
        self.nps = nps
        self.plan = plan
        self.info = info
        self.text = text  # text_analytics.signals.TextScorer: scores texts into features
        self.catalog_data = catalog  # features.catalog.FeatureCatalog.to_dict()
        # training.models.ResponseModel: P(answers a survey | features), for wave forecasts
        self.response = response

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_catalog", None)  # rebuilt from catalog_data on first use
        return state

    @property
    def catalog(self) -> FeatureCatalog:
        """Every feature's type, unit, accepted values and words (features.catalog)."""
        cached = self.__dict__.get("_catalog")
        if cached is None:
            if self.catalog_data is not None:
                cached = FeatureCatalog.from_dict(self.catalog_data)
            else:  # trained before the catalogue: intrinsic bounds only, no category list
                from features.build import FeaturePlan

                cached = learn_catalog(FeaturePlan.from_dict(self.plan))
            self.__dict__["_catalog"] = cached
        return cached

    @property
    def theme_labels(self) -> dict[str, str]:
        return dict(self.plan.get("text_themes", {}))

    def features_for(self, tables, pairs: pd.DataFrame) -> pd.DataFrame:
        """This model's features for (customer_id, as_of) pairs of validated tables: its own
        feature plan, and its own text model to score the customers' texts first."""
        from features.build import FeaturePlan, attach_text_signals, build_features

        plan = FeaturePlan.from_dict(self.plan)
        if plan.text_themes:
            if self.text is None:
                raise ValueError("this model's plan has text features but no text scorer")
            attach_text_signals(tables, self.text)
        return build_features(tables, pairs, plan)

    @property
    def heads(self) -> list[str]:
        return [
            name for name, head in (("churn", self.churn), ("nps", self.nps)) if head is not None
        ]

    @property
    def features(self) -> list[str]:
        return list(self.encoder.features)

    def score(
        self, X: np.ndarray, explain: bool = False, threads: int | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """All outputs for an encoded matrix, and (with ``explain``) SHAP contributions.

        With ``explain`` one ``pred_contrib`` pass per head yields both: a row of
        contributions sums to the raw prediction. Heads that were not trained give NaN.
        ``threads=1`` avoids OpenMP start-up cost on a single row.
        """
        kw = {} if threads is None else {"num_threads": threads}
        n = len(X)
        out = {c: np.full(n, np.nan) for c in OUTPUT_COLUMNS if c != "nps_category"}
        contributions: dict[str, np.ndarray] = {}
        if n == 0:  # LightGBM cannot predict on zero rows
            width = len(self.features) + 1
            return out, {head: np.empty((0, width)) for head in self.heads} if explain else {}
        if self.churn is not None:
            if explain:
                contributions["churn"] = self.churn.contributions(X, **kw)
                out["churn_probability"] = self.churn.calibrator_(
                    contributions["churn"].sum(axis=1)
                )
            else:
                out["churn_probability"] = self.churn.predict_proba(X, **kw)
        if self.nps is not None:
            if explain:
                contributions["nps"] = self.nps.contributions(X, **kw)
                out["predicted_nps"] = np.clip(contributions["nps"].sum(axis=1), 0.0, 10.0)
            else:
                out["predicted_nps"] = self.nps.predict_score(X, **kw)
            probs = self.nps.predict_categories(X, **kw)
            for k, name in enumerate(NPS_CATEGORIES):
                out[f"p_{name}"] = probs[:, k]
        return out, contributions

    def response_probability(self, X: np.ndarray) -> np.ndarray | None:
        """P(the customer answers a survey in the horizon), or None without a response model."""
        if self.response is None or len(X) == 0:
            return None
        return self.response.predict(X)

    def contributions(self, X: np.ndarray, target: str) -> np.ndarray | None:
        """SHAP contributions (last column: base value) of churn log-odds or NPS points."""
        head = self.churn if target == "churn" else self.nps if target == "nps" else None
        if head is None:
            return None
        return head.contributions(X)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        scored, _ = self.score(self.encoder.transform(frame))
        out = pd.DataFrame(scored, index=frame.index)
        probs = out[[f"p_{c}" for c in NPS_CATEGORIES]].to_numpy()
        has = ~np.isnan(probs).any(axis=1)
        category = np.full(len(out), None, dtype=object)
        category[has] = np.array(NPS_CATEGORIES, dtype=object)[np.argmax(probs[has], axis=1)]
        out["nps_category"] = category
        return out[list(OUTPUT_COLUMNS)]

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return self.predict_frame(pd.DataFrame(model_input))

    def signature(self) -> ModelSignature:
        categorical = set(self.encoder.categorical)
        inputs = Schema(
            [
                ColSpec("string" if name in categorical else "double", name, required=False)
                for name in self.encoder.features
            ]
        )
        outputs = Schema(
            [ColSpec("double", c) for c in OUTPUT_COLUMNS if c != "nps_category"]
            + [ColSpec("string", "nps_category", required=False)]
        )
        return ModelSignature(inputs=inputs, outputs=outputs)
