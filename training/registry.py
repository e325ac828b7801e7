"""MLflow tracking and the model registry: the store, logging, and the promotion gate."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from npsrisk.settings import Settings
from training.evaluation import HIGHER_IS_BETTER, PRIMARY_METRIC

# Exactly what the pyfunc needs at load time; inferring this costs ~20 s per log.
_MODEL_PACKAGES = (
    "mlflow",
    "lightgbm",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "cloudpickle",
    "pydantic",
    "pydantic-settings",
    "pyyaml",
)
CHALLENGER_TAG = "challenger"


def model_requirements() -> list[str]:
    return [f"{p}=={importlib.metadata.version(p)}" for p in _MODEL_PACKAGES]


def configure_mlflow(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    uses_default_store = settings.registry.tracking_uri is None
    if uses_default_store:
        settings.home_path.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    name = settings.registry.experiment_name
    if client.get_experiment_by_name(name) is None:
        # With the default SQLite store, artifacts live under the home too, never in ./mlruns.
        location = settings.artifacts_path.as_uri() if uses_default_store else None
        client.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    return client


def champion_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


@dataclass
class PromotionDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def decide_promotion(
    candidate: dict[str, float], champion: dict[str, float] | None, tolerance: float = 0.0
) -> PromotionDecision:
    """Promote only a version that is no worse on any head and better on at least one.

    Both dicts map a head ('churn', 'nps') to its primary metric on the *same* validation
    window. A head the champion has and the candidate lacks blocks promotion; a new head
    counts as an improvement.
    """
    if champion is None:
        return PromotionDecision(True, ["there is no champion yet"])
    reasons: list[str] = []
    better = worse = False
    for head in sorted(set(candidate) | set(champion)):
        metric = PRIMARY_METRIC[head]
        if head not in candidate:
            worse = True
            reasons.append(f"{head}: the champion predicts it and this version does not")
            continue
        if head not in champion:
            better = True
            reasons.append(f"{head}: new head (the champion has none)")
            continue
        new, old = candidate[head], champion[head]
        gain = new - old if metric in HIGHER_IS_BETTER else old - new
        verdict = "better" if gain > 0 else ("worse" if gain < -tolerance else "not better")
        reasons.append(f"{head} {metric}: {new:.4f} vs champion {old:.4f} ({verdict})")
        better |= gain > 0
        worse |= gain < -tolerance
    if worse:
        return PromotionDecision(False, reasons)
    if not better:
        return PromotionDecision(False, [*reasons, "no head improved on the champion"])
    return PromotionDecision(True, reasons)


def promote_by_hand(
    client: MlflowClient, name: str, version: str, alias: str, reason: str
) -> str | None:
    """Move the champion alias to ``version`` on an engineer's word (say, a challenger the
    gate kept by a hair), recording the reason on the version; the version it replaces."""
    try:
        client.get_model_version(name, version)
    except MlflowException:
        known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        raise ValueError(
            f"model {name} has no version {version} (registered: "
            f"{', '.join(map(str, known)) or 'none'})"
        ) from None
    previous = champion_version(client, name, alias)
    previous = None if previous is None else str(previous.version)
    if previous != str(version):  # already the champion: its record stays as it was
        decision = PromotionDecision(True, [f"promoted by hand: {reason}"])
        apply_decision(client, name, version, alias, decision)
    return previous


def apply_decision(
    client: MlflowClient, name: str, version: str, alias: str, decision: PromotionDecision
) -> None:
    """Move the champion alias, or tag the version as a challenger, recording why."""
    why = "; ".join(decision.reasons)
    client.set_model_version_tag(name, version, "promotion_reason", why[:5000])
    if decision.promote:
        client.set_registered_model_alias(name, alias, version)
        client.set_model_version_tag(name, version, "promotion", alias)
    else:
        client.set_model_version_tag(name, version, "promotion", CHALLENGER_TAG)
