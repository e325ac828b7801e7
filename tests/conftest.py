"""Shared fixtures: settings in a temporary home, small demo data, one trained model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demo.generator import DemoConfig, find_ground_truth, generate_demo, write_demo
from features.loading import RawTables
from features.validation import ValidatedTables, validate_tables
from npsrisk.settings import Settings, load_settings

FAST_LIGHTGBM = {"n_estimators": 300, "early_stopping_rounds": 30}


def assert_same_report(got, expected) -> None:
    """Two validation reports (features.validation.ValidationReport) give every table of
    ``expected`` the same rows read, kept and set aside, for the same reasons."""
    for name, want in expected.tables.items():
        have = got.tables[name]
        assert (have.rows_read, have.rows_kept, have.rows_set_aside) == (
            want.rows_read,
            want.rows_kept,
            want.rows_set_aside,
        ), name
        assert have.reasons == want.reasons, name


def validated_from_frames(frames: dict[str, pd.DataFrame]) -> ValidatedTables:
    """Validate in-memory tables exactly as if they had been read from files."""
    raw = RawTables(Path("memory"), "memory", {k: v.copy() for k, v in frames.items()})
    return validate_tables(raw)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def demo_config() -> DemoConfig:
    return DemoConfig(customers=1500, seed=3)


@pytest.fixture(scope="session")
def demo_data(demo_config):
    return generate_demo(demo_config)


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory, demo_config, demo_data) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo(demo_data, out, demo_config)
    return out


@pytest.fixture(scope="session")
def demo_tables(demo_data) -> ValidatedTables:
    return validated_from_frames(demo_data.tables)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, demo_path):
    """One real training run into a real SQLite MLflow store, shared by the tests that read it."""
    from training.pipeline import train

    home = tmp_path_factory.mktemp("trained_home")
    settings = load_settings(home=home, training={"lightgbm": FAST_LIGHTGBM})
    result = train(demo_path, settings, truth_path=find_ground_truth(demo_path))
    return settings, result


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test. ``local[2,3]``: two cores, and a failed
    task is tried up to three times (the retry tests rely on it)."""
    pyspark = pytest.importorskip("pyspark.sql")
    session = (
        pyspark.SparkSession.builder.master("local[2,3]")
        .appName("npsrisk-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture
def validate_frames():
    """``validate_frames({"customers": df, ...})`` -> ValidatedTables."""
    return validated_from_frames


# --- the prediction service as a real process ---------------------------------------------

API_KEYS = ("key-alpha-123", "key-beta-456")
ADMIN_KEY = "admin-key-789"


def ServiceProcess(home: Path, log_path: Path, extra_env: dict[str, str] | None = None):
    """The service with the test API keys, a fast store watcher, on a free port."""
    from serving.process import ServiceProcess as Process

    env = {
        "NPSRISK_API_KEYS": ",".join(API_KEYS),
        "NPSRISK_ADMIN_KEYS": ADMIN_KEY,
        "NPSRISK_SERVING__STORE_POLL_SECONDS": "1",
        # One worker and no spare per test service (the machine is shared); tests of several
        # workers or of the spare ask.
        "NPSRISK_SERVING__WORKERS": "1",
        "NPSRISK_SERVING__SPARE_WORKERS": "0",
        "NPSRISK_SERVING__BODY_TIMEOUT_SECONDS": "2",
        **(extra_env or {}),
    }
    return Process(home, log_path, env)


def headers(key: str = API_KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def materialized(trained, demo_path, demo_tables):
    """The trained home with the champion's features materialized (once per session)."""
    from features.store import materialize_features
    from serving.state import load_champion
    from training.snapshots import data_window

    settings, _ = trained
    champion = load_champion(settings)
    materialize_features(
        demo_path,
        champion.bundle,
        settings.home_path,
        data_window(demo_tables)[1],
        champion.card.version,
    )
    return settings


EARLIER_CHANGED = 40  # customers whose one feature differs at the earlier date


@pytest.fixture(scope="session")
def earlier_store(materialized, tmp_path_factory):
    """An earlier store (30 days before) beside the current one: the same rows but for the
    top churn driver of the first customers, set to another customer's value."""
    import shutil

    from features.store import FeatureStore, store_dir, write_store
    from serving.state import ServingState, load_champion

    settings = materialized
    champion = load_champion(settings)
    current = FeatureStore.open(settings.home_path)
    state = ServingState.build(champion, current)
    ids = list(current.frame["customer_id"][:EARLIER_CHANGED])
    predictions, _, _ = state.predict_ids(ids, True, 1, settings.serving.risk_tiers, False)
    encoder = champion.bundle.encoder
    numeric = set(encoder.features) - set(encoder.categorical)
    # each customer's top churn driver that is numeric, moved to the base's 10th or 90th pct.
    frame = current.frame.copy()
    changed = {}
    for p in predictions:
        drivers = [d for d in p["drivers"] if d["target"] == "churn" and d["feature"] in numeric]
        if not drivers:
            continue
        feature = drivers[0]["feature"]
        column = frame[feature].astype(float)
        now = column[frame["customer_id"] == p["customer_id"]].iloc[0]
        low, high = column.quantile([0.1, 0.9])
        other = high if pd.isna(now) or now <= column.median() else low
        if other == now:
            continue
        if frame[feature].dtype.kind != "f" or frame[feature].dtype.kind == "b":
            frame[feature] = frame[feature].astype(float)
        frame.loc[frame["customer_id"] == p["customer_id"], feature] = other
        changed[p["customer_id"]] = (feature, None if pd.isna(now) else float(now), float(other))
    as_of = pd.Timestamp(current.features_as_of) - pd.Timedelta(days=30)
    scratch = tmp_path_factory.mktemp("earlier_home")
    info = write_store(
        frame.assign(as_of=as_of), current.plan, scratch, as_of, champion.card.version
    )
    # Kept beside the current store, as `npsrisk materialize` keeps the last ones; CURRENT is
    # untouched, so the running service keeps serving the same store.
    shutil.copy(info.path, store_dir(settings.home_path) / info.path.name)
    assert changed, "no customer had a numeric churn driver to change"
    return settings, champion, changed, str(as_of.date())


@pytest.fixture(scope="session")
def service(materialized, tmp_path_factory):
    """The trained champion with a materialized store, served over HTTP (the database
    migrated first, as `npsrisk serve` does before its workers start)."""
    from db.engine import open_database

    settings = materialized
    open_database(settings, upgrade=True)
    process = ServiceProcess(settings.home_path, tmp_path_factory.mktemp("service") / "serve.log")
    try:
        process.wait_until_up()
        yield process
    finally:
        process.stop()
