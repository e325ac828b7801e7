"""What the service scores with: the champion model and the feature store, swapped as one.

MLflow is imported only to ask the registry or to load a version not cached yet: a
restarted worker loads its champion from the local cache without it (see ``noted_champion``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from features.store import FeatureStore, StoreMissingError, previous_store_path
from npsrisk.settings import Settings
from serving.changes import Earlier
from serving.predictions import ModelCard, predict_rows
from training.bundle import ModelBundle

logger = logging.getLogger(__name__)


class NotReadyError(Exception):
    """The service cannot score yet; the message says what to run or set."""


@dataclass(frozen=True)
class Champion:
    bundle: ModelBundle
    card: ModelCard


def import_lightgbm_for_scoring() -> None:
    """Import LightGBM without its scikit-learn wrappers or its pandas support, in a process
    that has none of them yet.

    With sklearn installed, ``import lightgbm`` imports its estimator wrappers and with them
    sklearn and scipy.optimize; with pandas installed, it imports pandas to recognize frames.
    Together they were most of a restarted worker's import time (measured). A worker scores
    NumPy matrices with ``lightgbm.Booster`` only, and nothing in the project uses the
    wrappers. sklearn and pandas stay importable afterwards (the text scorer's pipelines and
    the act routes' tables use them); LightGBM in this process just never takes a frame.
    """
    if "lightgbm" in sys.modules or "sklearn" in sys.modules:
        return
    blocked = [m for m in ("sklearn", "pandas") if m not in sys.modules]
    for module in blocked:
        sys.modules[module] = None  # type: ignore[assignment]  # makes `import module` fail
    try:
        import lightgbm  # noqa: F401
    finally:
        for module in blocked:
            del sys.modules[module]


def champion_version(settings: Settings) -> str:
    """The version the champion alias points at now (cheap: one registry call)."""
    if settings.registry.tracking_uri is None and not settings.mlflow_db_path.exists():
        raise NotReadyError(
            f"No MLflow store at {settings.mlflow_db_path}: run `npsrisk train DATA` first "
            "(or set NPSRISK_HOME / registry.tracking_uri to where your models are)."
        )
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    name, alias = settings.registry.model_name, settings.registry.champion_alias
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        raise NotReadyError(
            f"Model '{name}' has no '{alias}' version in {settings.registry_uri}: run "
            "`npsrisk train DATA` (a version becomes champion when it passes the gate)."
        ) from None


KEEP_CACHED = 3


def _registry_key(settings: Settings) -> str:
    return hashlib.sha256(settings.registry_uri.encode()).hexdigest()[:12]


def _cache_key(settings: Settings, version: str) -> str:
    return f"{settings.registry.model_name}-v{version}-{_registry_key(settings)}"


def champion_pointer_path(settings: Settings) -> Path:
    name = settings.registry.model_name
    return settings.serving_cache_path / f"champion-{name}-{_registry_key(settings)}.json"


def note_champion(settings: Settings, version: str, instance: str) -> None:
    """Record the champion version this instance's workers resolved through the registry."""
    body = json.dumps({"version": version, "instance": instance})
    try:
        _write_atomic(champion_pointer_path(settings), lambda p: p.write_text(body))
    except OSError:
        logger.warning("could not note the champion version", exc_info=True)


def noted_champion(settings: Settings, instance: str) -> str | None:
    """The champion version noted by a worker of the same instance (the same ``bentoml
    serve`` arbiter) when that version's bundle is cached, else None.

    A worker the arbiter restarts serves what its siblings serve without asking the registry
    (MLflow's import alone takes seconds); its polls check the registry afterwards. A new
    instance always asks the registry, so a champion moved while the service was down is
    never served stale.
    """
    try:
        noted = json.loads(champion_pointer_path(settings).read_text())
        version = str(noted["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if noted.get("instance") != instance or not _cached_path(settings, version).is_file():
        return None
    return version


def _cached_path(settings: Settings, version: str) -> Path:
    # ".bundle": a plain ModelBundle; caches of the MLflow class before it are not read.
    return settings.serving_cache_path / f"{_cache_key(settings, version)}.bundle.pkl"


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)  # readers (other workers) see the old file or the whole new one
    finally:
        tmp.unlink(missing_ok=True)


def _prune_cache(folder: Path, pattern: str) -> None:
    files = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime)
    for old in files[:-KEEP_CACHED]:
        old.unlink(missing_ok=True)


def load_champion(settings: Settings, version: str | None = None) -> Champion:
    """The champion's bundle: from the local cache when this version was loaded before
    (no MLflow import: a restarted worker serves within seconds), else from MLflow, then
    cached.

    A registered version never changes, so the cache is keyed by registry and version.
    """
    version = version or champion_version(settings)
    name = settings.registry.model_name
    cached = _cached_path(settings, version)
    bundle = None
    if cached.is_file():
        try:
            with cached.open("rb") as handle:
                bundle = pickle.load(handle)
        except Exception:  # a cache from another library version: load from MLflow again
            logger.warning("ignoring an unreadable model cache %s", cached.name)
        if not isinstance(bundle, ModelBundle):
            bundle = None
    if bundle is None:
        import mlflow

        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.registry_uri)
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        bundle = ModelBundle.of(model.unwrap_python_model())
        try:
            _write_atomic(cached, lambda p: p.write_bytes(bundle.cache_bytes()))
            _prune_cache(cached.parent, f"{name}-v*.pkl")
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            logger.warning("could not cache model v%s locally", version, exc_info=True)
    return Champion(bundle, ModelCard.of(name, version, bundle))


def load_store(settings: Settings) -> FeatureStore:
    try:
        return FeatureStore.open(settings.home_path)
    except StoreMissingError as exc:
        raise NotReadyError(str(exc)) from None


@dataclass
class ServingState:
    """An immutable pairing of one model version and one store, with the store pre-encoded.

    Requests take one reference to the current state, so a swap never mixes versions.
    """

    champion: Champion
    store: FeatureStore
    X: np.ndarray = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    # The previous materialization scored by the same model, built on first use (see previous).
    _previous: Any = field(default=None, init=False, repr=False, compare=False)
    _previous_lock: Any = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @classmethod
    def build(
        cls, champion: Champion, store: FeatureStore, cache: Path | None = None
    ) -> ServingState:
        """Pair a model and a store. With ``cache`` (a folder), the encoded store is kept
        there per (store file, model version) and memory-mapped by the next worker instead
        of encoded again."""
        bundle = champion.bundle
        missing = [f for f in bundle.features if f not in store.columns]
        warnings = []
        if missing:
            warnings.append(
                f"the feature store lacks {len(missing)} of the model's features "
                f"({', '.join(missing[:5])}...): they score as missing; "
                "re-run `npsrisk materialize`"
            )
            logger.warning(warnings[-1])
        return cls(champion, store, _encoded(champion, store, cache), warnings)

    @property
    def card(self) -> dict[str, Any]:
        return self.champion.card.to_dict()

    def previous(self) -> ServingState | None:
        """The previous materialization (an earlier as-of date, kept beside the current store)
        paired with the same model, or None when none is kept. Built once per store file: a
        score's change is then the data's, never a model swap's."""
        path = previous_store_path(Path(self.store.path))
        if path is None:
            return None
        with self._previous_lock:
            if self._previous is None or Path(self._previous.store.path) != path:
                try:
                    store = FeatureStore.read(path)
                except Exception:  # pruned or half-copied meanwhile: no change to explain
                    logger.warning("could not read the previous store %s", path.name)
                    return None
                self._previous = ServingState.build(self.champion, store)
            return self._previous

    def earlier(self, rows: list[int], known: list[str]) -> Earlier | None:
        """The ``rows`` (of this store) at the previous materialization, for serving.changes."""
        previous = self.previous()
        if previous is None:
            return None
        then = [previous.store.index.get(cid, -1) for cid in known]
        present = np.array([i >= 0 for i in then], dtype=bool)
        X = previous.X[np.maximum(np.array(then, dtype=np.int64), 0)] if then else previous.X[:0]
        store = previous.store
        return Earlier(
            previous.store.features_as_of, X, present, lambda r, f: store.value(then[r], f)
        )

    def predict_ids(
        self, customer_ids: list[str], explain: bool, top_k: int, tiers, changes: bool = True
    ):
        """Predictions of known ids (with ``explain``: drivers and, when ``changes`` and an
        earlier materialization is kept, why each moved since then), unknown ids, log rows."""
        rows, known, unknown = self.store.locate(customer_ids)
        bundle = self.champion.bundle
        store = self.store
        earlier = self.earlier(rows, known) if explain and changes else None
        predictions, _ = predict_rows(
            bundle,
            self.X[rows],
            known,
            lambda r, f: store.value(rows[r], f),
            explain,
            top_k,
            tiers,
            threads=1 if len(rows) < 64 else None,
            earlier=earlier,
        )

        def log_records() -> list[dict]:
            values = [{f: store.value(row, f) for f in bundle.features} for row in rows]
            return _log_records(
                "/predict", self.card, store.features_as_of, known, values, predictions
            )

        return predictions, unknown, log_records


def _encoded(champion: Champion, store: FeatureStore, cache: Path | None) -> np.ndarray:
    if cache is None:
        return champion.bundle.encoder.transform_columns(store.columns, len(store))
    path = cache / f"X-{Path(store.path).stem}-v{champion.card.version}.npy"
    if path.is_file():
        try:
            X = np.load(path, mmap_mode="r")
            if X.shape[0] == len(store):
                return X
        except (OSError, ValueError):
            pass
    X = champion.bundle.encoder.transform_columns(store.columns, len(store))

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, X)

    try:
        _write_atomic(path, write)
        _prune_cache(cache, "X-*.npy")
    except OSError:
        logger.warning("could not cache the encoded store", exc_info=True)
    return X


def predict_records(champion: Champion, records: list[dict], explain: bool, top_k: int, tiers):
    """Score caller-supplied feature records (no store involved)."""
    bundle = champion.bundle
    X = bundle.encoder.transform_records(records)
    ids = [r.get("customer_id") for r in records]  # strings or None (the schema says so)
    predictions, _ = predict_rows(
        bundle,
        X,
        ids,
        lambda r, f: records[r].get(f),
        explain,
        top_k,
        tiers,
        threads=1 if len(records) < 64 else None,
    )

    def log_records() -> list[dict]:
        values = [{f: r.get(f) for f in bundle.features if f in r} for r in records]
        return _log_records(
            "/predict_features", champion.card.to_dict(), None, ids, values, predictions
        )

    return predictions, log_records


def _log_records(
    endpoint: str, card: dict, as_of: str | None, ids, values, predictions
) -> list[dict]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    request_id = uuid.uuid4().hex
    return [
        {
            "logged_at": now,
            "request_id": request_id,
            "endpoint": endpoint,
            "model_name": card["name"],
            "model_version": card["version"],
            "features_as_of": as_of,
            "customer_id": cid,
            "features": feats,
            "outputs": {
                k: v for k, v in pred.items() if k not in ("customer_id", "drivers", "change")
            },
        }
        for cid, feats, pred in zip(ids, values, predictions, strict=True)
    ]
