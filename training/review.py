"""`npsrisk evaluate`: read a training run's evaluation back, or backtest the champion."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run

from features.build import FeaturePlan, build_features
from npsrisk.outputs import new_report_dir
from npsrisk.settings import ConfigError, Settings
from training.evaluation import evaluate_predictions, oracle_predictions
from training.pipeline import MODEL, load_truth, prepare_data
from training.registry import champion_version, configure_mlflow


@dataclass
class RunEvaluation:
    run: Run
    metrics: pd.DataFrame
    report_markdown: str


def latest_training_run(client: MlflowClient, settings: Settings, run_id: str | None) -> Run:
    if run_id:
        return client.get_run(run_id)
    experiment = client.get_experiment_by_name(settings.registry.experiment_name)
    runs = (
        []
        if experiment is None
        else client.search_runs(
            [experiment.experiment_id],
            "tags.stage = 'train'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    )
    if not runs:
        raise ConfigError(
            f"No training run found in {settings.tracking_uri}. Run `npsrisk train DATA` first, "
            "or point NPSRISK_HOME / registry.tracking_uri at the store that has one."
        )
    return runs[0]


def read_run_evaluation(settings: Settings, run_id: str | None = None) -> RunEvaluation:
    """The metrics and report a training run logged."""
    client = configure_mlflow(settings)
    run = latest_training_run(client, settings, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="evaluation", dst_path=tmp
            )
        )
        metrics = pd.read_csv(local / "metrics.csv")
        report = (local / "report.md").read_text()
    return RunEvaluation(run, metrics, report)


@dataclass
class Backtest:
    version: str
    metrics: pd.DataFrame
    valid_as_of: list[pd.Timestamp]
    report_dir: Path


def backtest_champion(
    data_path: Path, settings: Settings, horizon: int | None, truth_path: Path | None
) -> Backtest:
    """Score the current champion on the latest labelled window of ``data_path``."""
    client = configure_mlflow(settings)
    name, alias = settings.registry.model_name, settings.registry.champion_alias
    current = champion_version(client, name, alias)
    if current is None:
        raise ConfigError(
            f"No '{alias}' version of model '{name}' in {settings.registry_uri}. "
            "Run `npsrisk train DATA` first."
        )
    model = mlflow.pyfunc.load_model(f"models:/{name}/{current.version}").unwrap_python_model()
    horizon = horizon or int(model.info.get("horizon_days", settings.training.horizon_days))
    report_dir = new_report_dir(settings, "evaluate")
    data = prepare_data(
        data_path,
        settings,
        horizon,
        report_dir / "validation",
        plan=FeaturePlan.from_dict(model.plan),
        text=model.text,
    )
    valid = data.snapshots[data.split.valid].reset_index(drop=True)
    features = build_features(data.tables, valid[["customer_id", "as_of"]], data.plan)
    valid = valid.merge(features, on=["customer_id", "as_of"], how="left")
    predictions = {MODEL: model.predict_frame(valid)}
    oracle = oracle_predictions(valid, t) if (t := load_truth(truth_path)) is not None else None
    if oracle is not None:
        predictions["oracle"] = oracle
    metrics = evaluate_predictions(valid, predictions)
    metrics.to_csv(report_dir / "metrics.csv", index=False)
    return Backtest(current.version, metrics, data.split.valid_as_of, report_dir)
