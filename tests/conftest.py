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


# --- the prediction service as a real process ---------------------------------------------

API_KEYS = ("key-alpha-123", "key-beta-456")
ADMIN_KEY = "admin-key-789"


class ServiceProcess:
    """A `bentoml serve` process on 127.0.0.1 with its own log file."""

    def __init__(self, home: Path, log_path: Path, extra_env: dict[str, str] | None = None):
        import os
        import socket
        import subprocess
        import sys

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "NPSRISK_HOME": str(home),
            "NPSRISK_API_KEYS": ",".join(API_KEYS),
            "NPSRISK_ADMIN_KEYS": ADMIN_KEY,
            "NPSRISK_SERVING__STORE_POLL_SECONDS": "1",
            **(extra_env or {}),
        }
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bentoml"),
                "serve",
                "serving.service:NpsRiskService",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).parents[1],
            start_new_session=True,
        )

    def wait_until_up(self, ready: bool = True, timeout: float = 120) -> None:
        import time

        import httpx

        deadline = time.time() + timeout
        path = "/readyz" if ready else "/healthz"
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"service not up in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> int:
        import os
        import signal
        import subprocess

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


def headers(key: str = API_KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def service(trained, demo_tables, tmp_path_factory):
    """The trained champion with a materialized store, served over HTTP."""
    from features.build import FeaturePlan
    from features.store import materialize_features
    from serving.state import load_champion
    from training.snapshots import data_window

    settings, _ = trained
    champion = load_champion(settings)
    materialize_features(
        demo_tables,
        FeaturePlan.from_dict(champion.bundle.plan),
        settings.home_path,
        data_window(demo_tables)[1],
        champion.card.version,
        champion.bundle.text,
    )
    process = ServiceProcess(settings.home_path, tmp_path_factory.mktemp("service") / "serve.log")
    try:
        process.wait_until_up()
        yield process
    finally:
        process.stop()
