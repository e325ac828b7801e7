"""The model bundle as an MLflow pyfunc: what a training run logs and the registry holds."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from training.bundle import OUTPUT_COLUMNS, ModelBundle


class NpsRiskModel(ModelBundle, mlflow.pyfunc.PythonModel):
    """``ModelBundle`` through ``mlflow.pyfunc.load_model``: ``predict`` on plain columns."""

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
