"""The deployable model as one plain object: encoder, churn and NPS heads, catalogue, text
scorer and response model, and how they score.

No MLflow here. ``training.pyfunc.NpsRiskModel`` is this bundle as an MLflow pyfunc (what a
training run logs and the registry holds); the service and batch scoring hold the plain
``ModelBundle`` (``ModelBundle.of``), so a worker that scores never imports MLflow.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import numpy as np

from features.catalog import FeatureCatalog, learn_catalog
from features.contract import NPS_CATEGORIES
from training.calibration import category_probabilities, expected_score

if TYPE_CHECKING:  # frames in and out of the batch path; a serving worker scores arrays
    import pandas as pd

OUTPUT_COLUMNS = (
    "churn_probability",
    "predicted_nps",
    "p_detractor",
    "p_passive",
    "p_promoter",
    "nps_category",
)
TARGETS = ("churn", "nps")
PARTS = ("encoder", "churn", "nps", "plan", "info", "text", "catalog_data", "response")


def __getattr__(name: str):
    # Versions registered before the pyfunc moved to training.pyfunc pickled
    # ``training.bundle.NpsRiskModel``; MLflow still finds it here (and imports MLflow then).
    if name == "NpsRiskModel":
        from training.pyfunc import NpsRiskModel

        return NpsRiskModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Deferred:
    """A part pickled on its own inside a pickle, unpickled (and its imports paid) on first use."""

    def __init__(self, data: bytes):
        self.data = data

    def load(self) -> Any:
        return pickle.loads(self.data)


class ModelBundle:
    """Scores feature records: churn probability, expected NPS and category probabilities.

    ``score`` and ``contributions`` work on encoded numpy matrices (the service's fast path),
    ``predict_frame`` on plain columns (strings for categories, numbers for the rest; missing
    columns are allowed).
    """

    catalog_data = None  # versions trained before the feature catalogue: see ``catalog``
    response = None  # nor, before forecasts used it, the survey-response model

    def __init__(
        self,
        encoder: Any,  # training.models.FeatureEncoder
        churn: Any,  # training.models.ChurnModel | None
        nps: Any,  # training.models.NpsModel | None
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

    @classmethod
    def of(cls, model: Any) -> ModelBundle:
        """The plain bundle of a model (a registered ``NpsRiskModel``): the same parts, shared,
        without MLflow's class or the state MLflow keeps on it."""
        plain = cls.__new__(cls)
        for part in PARTS:
            plain.__dict__[part] = getattr(model, part, None)
        return plain

    def cache_bytes(self) -> bytes:
        """This bundle pickled for a worker's local cache. The text scorer (sklearn's TF-IDF
        pipelines: batch scoring and the customer page use it, /predict never does) is a
        nested pickle, unpickled on first use, so a restarted worker does not import it."""
        plain = ModelBundle.of(self)
        text = self.__dict__.get("text")
        if text is not None:
            plain.__dict__["text"] = (
                text if isinstance(text, Deferred) else Deferred(pickle.dumps(text, protocol=5))
            )
        return pickle.dumps(plain, protocol=5)

    @property
    def text(self) -> Any:
        """The text scorer (text_analytics.signals.TextScorer), or None: versions trained
        before text features, or with text.features off. A plan whose text features were
        dropped by text selection keeps it (reviews and the page code themes with it)."""
        value = self.__dict__.get("text")
        if isinstance(value, Deferred):
            value = self.__dict__["text"] = value.load()
        return value

    @text.setter
    def text(self, value: Any) -> None:
        self.__dict__["text"] = value

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

        Each head computes one raw score per row (churn: log-odds; NPS: raw score points);
        with ``explain`` one contributions pass yields it too, since a row of contributions
        sums to the raw score. Churn's probability is the calibrator of the raw score; every
        NPS output comes from one distribution over the scores 0-10 (``nps_distribution``).
        Heads that were not trained give NaN. ``threads=1`` avoids OpenMP start-up cost on a
        single row.
        """
        kw = {} if threads is None else {"num_threads": threads}
        n = len(X)
        out = {c: np.full(n, np.nan) for c in OUTPUT_COLUMNS if c != "nps_category"}
        out["churn_raw"] = np.full(n, np.nan)
        out["nps_raw"] = np.full(n, np.nan)
        out["nps_distribution"] = np.full((n, 11), np.nan)
        contributions: dict[str, np.ndarray] = {}
        if n == 0:  # LightGBM cannot predict on zero rows
            width = len(self.features) + 1
            return out, {head: np.empty((0, width)) for head in self.heads} if explain else {}
        for name, head in (("churn", self.churn), ("nps", self.nps)):
            if head is None:
                continue
            if explain:
                contributions[name] = head.contributions(X, **kw)
                out[f"{name}_raw"] = contributions[name].sum(axis=1)
            else:
                out[f"{name}_raw"] = head.raw(X, **kw)
        if self.churn is not None:
            out["churn_probability"] = self.churn.calibrator_(out["churn_raw"])
        if self.nps is not None:
            dist = self.nps.link_.distribution(out["nps_raw"])
            out["nps_distribution"] = dist
            out["predicted_nps"] = expected_score(dist)
            probs = category_probabilities(dist)
            for k, name in enumerate(NPS_CATEGORIES):
                out[f"p_{name}"] = probs[:, k]
        return out, contributions

    def response_probability(self, X: np.ndarray) -> np.ndarray | None:
        """P(the customer answers a survey in the horizon), or None without a response model."""
        if self.response is None or len(X) == 0:
            return None
        return self.response.predict(X)

    def effect(self, target: str, raw: float, contribution: float) -> float:
        """What one driver moves the output by, in the output's own units: the churn
        probability (or expected NPS) at the raw score minus that without the contribution.

        Contributions add in raw units; probabilities do not, so this is computed through the
        calibrator (or the score distribution), never by adding probabilities.
        """
        return float(self.effects(target, np.array([raw]), np.array([[contribution]]))[0, 0])

    def effects(self, target: str, raw: np.ndarray, contributions: np.ndarray) -> np.ndarray:
        """``effect`` for a matrix at once: ``raw`` per row, ``contributions`` (rows, k)."""
        raw = np.asarray(raw, dtype=float)
        without = (raw[:, None] - contributions).ravel()
        if target == "churn" and self.churn is not None:
            output = self.churn.calibrator_
        elif target == "nps" and self.nps is not None:

            def output(x):
                return expected_score(self.nps.link_.distribution(x))
        else:
            return np.full(contributions.shape, np.nan)
        return output(raw)[:, None] - output(without).reshape(contributions.shape)

    def contributions(self, X: np.ndarray, target: str) -> np.ndarray | None:
        """SHAP contributions (last column: base value) of churn log-odds or NPS points."""
        head = self.churn if target == "churn" else self.nps if target == "nps" else None
        if head is None:
            return None
        return head.contributions(X)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        scored, _ = self.score(self.encoder.transform(frame))
        out = pd.DataFrame(
            {c: scored[c] for c in OUTPUT_COLUMNS if c != "nps_category"}, index=frame.index
        )
        probs = out[[f"p_{c}" for c in NPS_CATEGORIES]].to_numpy()
        has = ~np.isnan(probs).any(axis=1)
        category = np.full(len(out), None, dtype=object)
        category[has] = np.array(NPS_CATEGORIES, dtype=object)[np.argmax(probs[has], axis=1)]
        out["nps_category"] = category
        return out[list(OUTPUT_COLUMNS)]
