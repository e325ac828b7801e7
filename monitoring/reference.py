"""The reference sample each training run logs with its model: the validation window's
features, predictions and realized outcomes, with no personal data (no ids, no names)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import NPS_CATEGORIES

REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
PREDICTION_COLUMNS = ("churn_probability", "predicted_nps", "nps_category")
PROBABILITY_COLUMNS = tuple(f"p_{c}" for c in NPS_CATEGORIES)
OUTCOME_COLUMNS = ("churned", "nps_score", "responded")
MAX_REFERENCE_ROWS = 50_000  # ~10 MB of Parquet at 100 features; plenty for drift tests


def reference_sample(
    valid: pd.DataFrame,
    predictions: pd.DataFrame,
    features: list[str],
    max_rows: int = MAX_REFERENCE_ROWS,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per validation snapshot: as_of, the model's features, its outputs, outcomes.

    Only the model's own features travel (the feature plan already excludes personal data),
    and the customer id is dropped: the sample describes a population, not people.
    """
    columns = {"as_of": pd.to_datetime(valid["as_of"]).to_numpy()}
    columns |= {column: valid[column].to_numpy() for column in features}
    for column in (*PREDICTION_COLUMNS, *PROBABILITY_COLUMNS):
        if column in predictions:
            columns[column] = predictions[column].to_numpy()
    columns |= {c: valid[c].to_numpy() for c in OUTCOME_COLUMNS if c in valid}
    out = pd.DataFrame(columns)  # built at once: column by column fragments the frame
    if len(out) > max_rows:
        out = out.sample(max_rows, random_state=seed).sort_index()
    return out.reset_index(drop=True)


def log_reference(valid: pd.DataFrame, predictions: pd.DataFrame, bundle, settings) -> None:
    """Log the reference sample into the active MLflow run (the training pipeline's log step)."""
    import mlflow

    sample = reference_sample(valid, predictions, bundle.features, seed=settings.training.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / REFERENCE_FILE
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), REFERENCE_DIR)


@dataclass
class Reference:
    """A model version's reference sample and what monitoring needs to know about it."""

    frame: pd.DataFrame
    model_name: str
    version: str
    run_id: str
    bundle: object  # training.bundle.ModelBundle
    trained_at: str | None

    @property
    def features(self) -> list[str]:
        return list(self.bundle.features)

    @property
    def categorical(self) -> list[str]:
        return list(self.bundle.encoder.categorical)


class ReferenceMissingError(Exception):
    """The model version logged no reference sample (trained before monitoring existed)."""


def load_reference(settings, version: str | None = None) -> Reference:
    """The reference of ``version`` (default: the champion) from the MLflow registry."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from npsrisk.settings import ConfigError
    from serving.state import NotReadyError, load_champion

    try:
        champion = load_champion(settings, version)
    except NotReadyError as exc:
        raise ConfigError(str(exc)) from None
    except MlflowException as exc:
        raise ConfigError(f"model version {version} cannot be loaded: {exc.message}") from None
    name, version = champion.card.name, champion.card.version
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    run_id = client.get_model_version(name, version).run_id
    # A progress bar for one small file is noise in a scheduler's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=f"{REFERENCE_DIR}/{REFERENCE_FILE}",
            tracking_uri=settings.tracking_uri,
        )
    except (MlflowException, OSError):
        raise ConfigError(
            f"model {name} v{version} has no reference sample (it was trained before "
            "monitoring logged one): retrain it with `npsrisk train DATA`"
        ) from None
    frame = pd.read_parquet(local)
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    return Reference(
        frame, name, version, run_id, champion.bundle, champion.bundle.info.get("trained_at")
    )


def nps_of(p_promoter: np.ndarray, p_detractor: np.ndarray) -> float:
    """The NPS (-100..100) a population with these category probabilities would report."""
    return float(100 * (np.nanmean(p_promoter) - np.nanmean(p_detractor)))
