"""Training against a separately started `mlflow server` (any tracking URI works)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from demo.generator import DemoConfig, generate_demo, write_demo
from npsrisk.settings import load_settings
from serving.process import free_port, wait_for_ok

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            mlflow_bin,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ok(f"{url}/health", process, 90, (tmp_path / "server.log").read_text)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_train_registers_into_a_remote_tracking_server(tmp_path, mlflow_server):
    cfg = DemoConfig(customers=500, seed=12)
    write_demo(generate_demo(cfg), tmp_path / "data", cfg)
    settings = load_settings(
        home=tmp_path / "home",
        registry={"tracking_uri": mlflow_server},
        training={"lightgbm": {"n_estimators": 150}},
    )
    import mlflow

    from training.pipeline import train

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        result = train(tmp_path / "data", settings)
    finally:  # the server stops after this test: leave no process-wide pointer to it
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    client = MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias(settings.registry.model_name, "champion")
    assert str(champion.version) == result.model_version
    assert client.get_run(result.run_id).data.metrics["churn.roc_auc"] > 0.6
    # Nothing went to a local store: the server holds the run and its artifacts.
    assert not (tmp_path / "home" / "mlflow.db").exists()
    assert any((tmp_path / "server-artifacts").rglob("python_model.pkl"))
