"""The service's life: not ready without a model, reloads under load without a failed request,
a store refresh swapped in atomically, and no inference record lost when it stops."""

import threading
import time
from collections import Counter

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from conftest import ADMIN_KEY, ServiceProcess, headers
from demo.generator import DemoConfig, generate_demo, write_demo
from features.store import FeatureStore, materialize_features
from npsrisk.settings import load_settings
from serving.inference_log import read_inference_log
from serving.state import load_champion

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_without_a_model_the_service_is_alive_but_not_ready(tmp_path):
    service = ServiceProcess(tmp_path / "empty-home", tmp_path / "serve.log")
    try:
        service.wait_until_up(ready=False)
        assert httpx.get(service.url + "/healthz").status_code == 200
        assert httpx.get(service.url + "/readyz").status_code == 503
        response = httpx.post(
            service.url + "/predict", json={"customer_ids": ["a"]}, headers=headers()
        )
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "not_ready" and "npsrisk train" in body["detail"]
    finally:
        service.stop()


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    """Its own home with two registered versions, so moving the champion harms no one else."""
    from training.pipeline import train

    root = tmp_path_factory.mktemp("lifecycle")
    cfg = DemoConfig(customers=600, seed=31)
    write_demo(generate_demo(cfg), root / "data", cfg)
    fast = {"lightgbm": {"n_estimators": 150}}
    settings = load_settings(home=root / "home", training=fast)
    first = train(root / "data", settings)
    other = load_settings(home=root / "home", training={**fast, "seed": 7, "max_snapshots": 12})
    second = train(root / "data", other)
    champion = load_champion(settings)
    materialize_features(
        root / "data",
        champion.bundle,
        settings.home_path,
        pd.Timestamp("2025-12-31"),
        champion.card.version,
    )
    return settings, root / "data", first.model_version, second.model_version


class Hammer:
    """Clients sending /predict in a loop, recording every status and model version seen."""

    def __init__(self, url: str, ids: list[str], clients: int = 4):
        self.url, self.ids = url, ids
        self.statuses: Counter = Counter()
        self.versions: Counter = Counter()
        self.as_of: Counter = Counter()
        self.predictions = 0
        self._lock = threading.Lock()  # += from several threads loses counts without it
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(timeout=30, headers=headers()) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(self.url + "/predict", json={"customer_ids": self.ids})
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.statuses[type(exc).__name__] += 1
                    continue
                body = r.json() if r.status_code == 200 else None
                with self._lock:
                    self.statuses[r.status_code] += 1
                    if body is not None:
                        self.predictions += len(body["predictions"])
                        self.versions[body["model"]["version"]] += 1
                        self.as_of[body["features_as_of"]] += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self.threads:
            t.join()


def test_champion_reload_and_store_refresh_fail_no_request(small_world, tmp_path):
    settings, data, first, second = small_world
    client = MlflowClient(settings.tracking_uri)
    name = settings.registry.model_name
    client.set_registered_model_alias(name, "champion", first)
    service = ServiceProcess(settings.home_path, tmp_path / "serve.log")
    try:
        service.wait_until_up()
        ids = list(FeatureStore.open(settings.home_path).frame["customer_id"][:3])
        with Hammer(service.url, ids) as hammer:
            time.sleep(2)
            # The champion alias moves (as the promotion gate would move it); /reload swaps.
            client.set_registered_model_alias(name, "champion", second)
            reload = httpx.post(service.url + "/reload", headers=headers(ADMIN_KEY), timeout=60)
            assert reload.status_code == 200 and reload.json()["reloaded"]
            assert reload.json()["model"]["version"] == second
            time.sleep(2)
            # A new materialization is picked up by the store watcher, atomically.
            champion = load_champion(settings)
            materialize_features(
                data,
                champion.bundle,
                settings.home_path,
                pd.Timestamp("2025-11-30"),
                champion.card.version,
            )
            deadline = time.time() + 20
            while time.time() < deadline and hammer.as_of["2025-11-30"] < 20:
                time.sleep(0.2)
        assert set(hammer.statuses) == {200}, hammer.statuses
        assert hammer.versions[first] > 0 and hammer.versions[second] > 0
        assert hammer.as_of["2025-12-31"] > 0 and hammer.as_of["2025-11-30"] > 0
        served = hammer.predictions
        assert served == len(ids) * hammer.statuses[200]
    finally:
        assert service.stop() == 0
    # Every prediction served was logged, none lost when the service stopped.
    log = read_inference_log(settings.inference_log_path)
    assert len(log) == served
    assert set(log["model_version"]) == {first, second}


def assert_same_drivers(left: list[dict], right: list[dict]) -> None:
    """The same drivers in the same order; numbers equal up to float rounding."""
    assert [(d["feature"], d["target"]) for d in left] == [
        (d["feature"], d["target"]) for d in right
    ]
    for a, b in zip(left, right, strict=True):
        assert a["contribution"] == pytest.approx(b["contribution"], rel=1e-6, abs=1e-9)
        if isinstance(a["value"], float | int) and isinstance(b["value"], float | int):
            assert a["value"] == pytest.approx(b["value"], rel=1e-9)
        else:
            assert a["value"] == b["value"]
        assert a["description"] == b["description"]


def test_the_batch_columns_are_the_predict_rows_dicts_exactly(small_world):
    """The batch path builds Arrow columns without a dict per row; every field of every row,
    drivers, effects and descriptions included, is what ``predict_rows`` (/predict) says."""
    from features.loading import load_tables
    from features.validation import validate_tables
    from serving.batch import api_drivers, predictions_batch
    from serving.predictions import predict_rows
    from training.snapshots import active_customers

    settings, data, _, _ = small_world
    champion = load_champion(settings)
    bundle, tiers = champion.bundle, settings.serving.risk_tiers
    as_of = pd.Timestamp("2025-12-31")
    tables = validate_tables(load_tables(data))
    pairs = pd.DataFrame({"customer_id": active_customers(tables, as_of), "as_of": as_of})
    features = bundle.features_for(tables, pairs).reset_index(drop=True)
    # A missing value and a column the frame lacks must read as they do in /predict.
    features.loc[::7, bundle.features[0]] = None
    features = features.drop(columns=[bundle.features[-1]])
    table = predictions_batch(bundle, features, champion.card, "2025-12-31", True, 5, tiers)
    columns = {c: features[c].to_numpy() for c in features.columns}
    rows, _ = predict_rows(
        bundle,
        bundle.encoder.transform(features),
        features["customer_id"].tolist(),
        lambda r, f: columns[f][r] if f in columns else None,
        True,
        5,
        tiers,
    )
    batch = table.to_pylist()
    assert len(batch) == len(rows) > 0
    for got, want in zip(batch, rows, strict=True):
        probs = want["category_probabilities"] or {}
        assert got["customer_id"] == want["customer_id"]
        assert got["churn_probability"] == want["churn_probability"]
        assert got["predicted_nps"] == want["predicted_nps"]
        assert got["nps_category"] == want["nps_category"]
        assert got["risk_tier"] == want["risk_tier"]
        assert [got[f"p_{c}"] for c in ("detractor", "passive", "promoter")] == [
            probs.get(c) for c in ("detractor", "passive", "promoter")
        ]
        assert api_drivers(got["drivers"]) == [
            {**d, "value": float(d["value"]) if isinstance(d["value"], bool | int) else d["value"]}
            for d in want["drivers"]
        ]
    assert sum(len(r["drivers"]) for r in batch) > len(batch)  # several drivers per row
    plain = predictions_batch(bundle, features, champion.card, "2025-12-31", False, 5, tiers)
    assert plain.column("drivers").null_count == len(rows)


def test_batch_scores_equal_what_predict_returns(small_world, tmp_path):
    from serving.batch import read_predictions, score_source

    settings, data, _, _ = small_world
    champion = load_champion(settings)
    as_of = pd.Timestamp("2025-12-31")
    materialize_features(data, champion.bundle, settings.home_path, as_of, champion.card.version)
    out = tmp_path / "scores.parquet"
    result = score_source(
        data,
        champion.bundle,
        champion.card,
        out,
        as_of,
        True,
        5,
        settings.serving.risk_tiers,
        chunk_size=120,
    )
    # Slices of 120 customers read from the files give what one pass gives (to the last bits
    # of a float: DuckDB may sum a mean in another order).
    whole = tmp_path / "whole.csv"
    score_source(
        data, champion.bundle, champion.card, whole, as_of, True, 5, settings.serving.risk_tiers
    )
    sliced = read_predictions(out).sort_values("customer_id", ignore_index=True)
    one_pass = read_predictions(whole).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(
        sliced.drop(columns="drivers"), one_pass.drop(columns="drivers"), check_dtype=False
    )
    for left, right in zip(sliced["drivers"], one_pass["drivers"], strict=True):
        assert_same_drivers(left, right)
    # Parquet drivers are typed: a list of structs, not JSON text.
    assert pa.types.is_list(pq.read_schema(out).field("drivers").type)
    batch = read_predictions(out).set_index("customer_id")
    assert len(batch) == result.rows > 0
    service = ServiceProcess(settings.home_path, tmp_path / "serve.log")
    try:
        service.wait_until_up()
        ids = list(batch.index[:25])
        body = httpx.post(
            service.url + "/predict", json={"customer_ids": ids}, headers=headers(), timeout=30
        ).json()
    finally:
        service.stop()
    assert body["features_as_of"] == "2025-12-31"
    for prediction in body["predictions"]:
        row = batch.loc[prediction["customer_id"]]
        assert row["churn_probability"] == pytest.approx(prediction["churn_probability"])
        assert row["predicted_nps"] == pytest.approx(prediction["predicted_nps"])
        assert row["nps_category"] == prediction["nps_category"]
        assert row["risk_tier"] == prediction["risk_tier"]
        assert row["p_detractor"] == pytest.approx(
            prediction["category_probabilities"]["detractor"]
        )
        assert_same_drivers(row["drivers"], prediction["drivers"])
        assert row["model_version"] == body["model"]["version"]


def test_npsrisk_serve_stops_the_server_and_its_workers_on_sigterm(small_world, tmp_path):
    """A process manager stops `npsrisk serve`, not the server beneath it: nothing may linger."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    from serving.process import free_port, wait_for_ok

    settings, _, _, _ = small_world
    port = free_port()
    env = {
        **os.environ,
        "NPSRISK_HOME": str(settings.home_path),
        "NPSRISK_API_KEYS": "k1",
        "NPSRISK_SERVING__PORT": str(port),
        "NPSRISK_SERVING__STORE_POLL_SECONDS": "0",
    }
    npsrisk = str(Path(sys.executable).parent / "npsrisk")
    with (tmp_path / "serve.log").open("w") as log:
        parent = subprocess.Popen([npsrisk, "serve"], env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}/readyz"
            wait_for_ok(url, parent, 180, (tmp_path / "serve.log").read_text)
            tree = psutil.Process(parent.pid).children(recursive=True)
            assert tree, "the server runs beneath npsrisk serve"
            parent.send_signal(signal.SIGTERM)
            assert parent.wait(timeout=60) == 0
        finally:
            if parent.poll() is None:
                parent.kill()
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
