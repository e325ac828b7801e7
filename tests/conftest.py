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


@pytest.fixture
def validate_frames():
    """``validate_frames({"customers": df, ...})`` -> ValidatedTables."""
    return validated_from_frames
