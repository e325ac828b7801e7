"""Operations of a real two-worker service with a loaded spare: its own /metrics, load
shedding, one /reload reaching every worker, a serving worker killed with SIGKILL and the spare
taking its place, and a drain without connection resets."""

import os
import re
import shutil
import signal
import threading
import time
from collections import Counter

import httpx
import mlflow
import psutil
import pytest
from mlflow import MlflowClient

from conftest import ADMIN_KEY, ServiceProcess, headers
from npsrisk.settings import load_settings
from serving.state import champion_pointer_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BODY = {"customer_ids": ["C-000001"], "explain": False}


@pytest.fixture(scope="module")
def ops(service, trained, tmp_path_factory):
    """A copy of the served home with a second registered version (the same model), served by
    two workers that shed past 4 requests each and one loaded spare, so moving its champion
    harms no other test."""
    settings, _ = trained
    home = tmp_path_factory.mktemp("ops") / "home"
    shutil.copytree(settings.home_path, home, ignore=shutil.ignore_patterns("run", "inference_log"))
    copy = load_settings(home=home)
    client = MlflowClient(copy.tracking_uri, copy.registry_uri)
    first = client.get_model_version(copy.registry.model_name, "1")
    # A 'models:/m-...' source is resolved through the global tracking URI, which an earlier
    # test of the session may have pointed at another store: point it at the copy meanwhile.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(copy.tracking_uri)
    try:
        client.create_model_version(copy.registry.model_name, first.source, first.run_id)
    finally:
        mlflow.set_tracking_uri(previous)
    process = ServiceProcess(
        home,
        home.parent / "serve.log",
        {
            "NPSRISK_SERVING__WORKERS": "2",
            "NPSRISK_SERVING__SPARE_WORKERS": "1",
            "NPSRISK_SERVING__THREADS": "2",
            "NPSRISK_SERVING__MAX_CONCURRENCY": "4",
            "NPSRISK_SERVING__STORE_POLL_SECONDS": "0",
        },
    )
    try:
        process.wait_until_up()
        deadline = time.time() + 180
        while len(workers(process)) < 3 or initialized(process) < 3 or len(serving(process)) < 2:
            assert time.time() < deadline, process.log_path.read_text()[-3000:]
            time.sleep(0.5)
        yield process, copy
    finally:
        process.stop()


def workers(process) -> list[psutil.Process]:
    arbiter = psutil.Process(process.process.pid)
    return [
        c
        for c in arbiter.children(recursive=True)
        if "_bentoml_impl.worker" in " ".join(c.cmdline())
    ]


def serving(process) -> dict[int, int]:
    """Serving slot -> pid of the worker holding it (the third worker is the spare)."""
    from serving.slots import serving_workers

    run = load_settings(home=process.log_path.parent / "home").run_path
    return serving_workers(run / "slots", process.process.pid)


def initialized(process) -> int:
    return process.log_path.read_text().count("Service npsrisk initialized")


def predict_total(url: str) -> float:
    """Requests to /predict this instance answered, from its own /metrics."""
    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("npsrisk_requests_total{") and 'route="/predict"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_services_on_one_host_keep_their_metrics_apart(service, ops):
    process, copy = ops
    before_ours, before_other = predict_total(process.url), predict_total(service.url)
    for _ in range(25):
        assert httpx.post(process.url + "/predict", json=BODY, headers=headers()).status_code == 200
    assert predict_total(process.url) == before_ours + 25
    assert predict_total(service.url) == before_other
    folders = list((copy.run_path / "metrics").iterdir())
    assert [f.name.split("-")[-2] for f in folders] == [str(process.process.pid)]


def test_overload_is_shed_with_429_and_retry_after(ops):
    process, _ = ops
    statuses: Counter = Counter()
    shed: list[httpx.Response] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=process.url, headers=headers(), timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict", json={**BODY, "explain": True})
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                statuses[r.status_code] += 1
                if r.status_code == 429 and len(shed) < 5:
                    shed.append(r)

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] > 0 and statuses[429] > 0, statuses
    for r in shed:
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"] == "too_many_requests"


LEAN_LOAD = """
import json, sys
from npsrisk.settings import load_settings
from serving.state import import_lightgbm_for_scoring, load_champion, load_store, ServingState
import_lightgbm_for_scoring()
settings = load_settings()
version = json.loads(sys.argv[1])["version"]
state = ServingState.build(load_champion(settings, version), load_store(settings),
                           cache=settings.serving_cache_path)
store = state.store
prediction = state.predict_ids([store.columns["customer_id"][0]], True, 5,
                               settings.serving.risk_tiers)[0][0]
assert state.previous() is not None  # the earlier store was read and encoded
heavy = ["mlflow", "sklearn", "scipy.optimize", "pandas", "ibis", "shap", "evidently", "sqlalchemy"]
before = [m for m in heavy if m in sys.modules]
has_text = state.champion.bundle.text is not None  # unpickled on first use
print(json.dumps({"version": state.champion.card.version, "drivers": len(prediction["drivers"]),
                  "memory_mapped": type(state.X).__name__, "imported": before,
                  "text": has_text, "sklearn_after_text": "sklearn" in sys.modules}))
"""


def test_a_restarting_worker_loads_the_noted_champion_without_mlflow_sklearn_or_pandas(ops):
    import json
    import subprocess
    import sys

    from features.store import current_store_path

    process, copy = ops
    pointer = champion_pointer_path(copy)  # the copy also holds the original home's
    noted = json.loads(pointer.read_text())
    arbiter = psutil.Process(process.process.pid)
    assert noted["instance"].endswith(f"-{arbiter.pid}-{int(arbiter.create_time())}")
    # An earlier materialization whose encoded matrix is not cached: the explained prediction
    # encodes it too, still without pandas (the ops service polls no store: it never sees it).
    current = current_store_path(copy.home_path)
    name = current.name.split("-")
    earlier = current.with_name("-".join([name[0], "20000101", *name[2:]]))
    shutil.copyfile(current, earlier)
    try:
        result = subprocess.run(
            [sys.executable, "-c", LEAN_LOAD, json.dumps(noted)],
            capture_output=True,
            text=True,
            env={**os.environ, "NPSRISK_HOME": str(copy.home_path)},
            timeout=300,
        )
    finally:
        earlier.unlink()
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["version"] == noted["version"] and seen["drivers"] > 0
    assert seen["memory_mapped"] == "memmap"  # the encoded store, not encoded again
    assert seen["imported"] == []
    assert seen["text"] and seen["sklearn_after_text"]  # the text scorer is still there


def test_a_killed_worker_is_replaced_and_the_service_keeps_answering(ops):
    """kill -9 of a serving worker: the other one answers at once; with it stopped too, the
    spare claims the freed slot and answers before the arbiter's replacement has even loaded
    (the replacement then becomes the next spare)."""
    process, _ = ops
    before = serving(process)
    assert len(before) == 2 and len(workers(process)) == 3
    spare = {w.pid for w in workers(process)} - set(before.values())
    victim, other = (psutil.Process(before[slot]) for slot in (0, 1))
    ready_before = initialized(process)
    start = time.perf_counter()
    os.kill(victim.pid, signal.SIGKILL)
    answered = probe(process, start)
    other.send_signal(signal.SIGSTOP)  # from now on only a worker that was not serving can answer
    try:
        taken_over = probe(process, start)
        # The spare served before the replacement process (seconds of imports) had loaded.
        assert initialized(process) == ready_before, process.log_path.read_text()[-3000:]
        assert serving(process) == {0: spare.pop(), 1: other.pid}
    finally:
        other.send_signal(signal.SIGCONT)
    while initialized(process) == ready_before:
        assert time.perf_counter() - start < 120, process.log_path.read_text()[-3000:]
        time.sleep(0.1)
    replaced = time.perf_counter() - start
    print(
        f"\nkill -9 of one of 2 serving workers: the service answered after {answered:.2f} s, "
        f"the spare served after {taken_over:.2f} s, the replacement (the next spare) had "
        f"loaded after {replaced:.1f} s"
    )
    assert victim.pid not in [w.pid for w in workers(process)] and len(workers(process)) == 3
    assert "spare worker took serving slot 0" in process.log_path.read_text()
    # The replacement is the new spare: it holds no slot, and the service still answers.
    assert set(serving(process).values()) <= {w.pid for w in workers(process)}
    assert len(serving(process)) == 2
    assert probe(process, time.perf_counter()) < 30
    # Asked to stop, a spare leaves at once and cleanly (it holds no request); the arbiter
    # starts another, which loads before the next test moves the champion.
    (new_spare,) = [w for w in workers(process) if w.pid not in serving(process).values()]
    # SIGHUP reloads a spare as it does a serving worker (its default action would end it).
    new_spare.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert new_spare.is_running() and new_spare.status() != psutil.STATUS_ZOMBIE
    loaded, logged = initialized(process), len(process.log_path.read_text())
    new_spare.send_signal(signal.SIGTERM)
    new_spare.wait(timeout=10)  # psutil.TimeoutExpired if it lingers
    assert "Traceback" not in process.log_path.read_text()[logged:]
    while initialized(process) == loaded or len(workers(process)) < 3:
        assert time.perf_counter() - start < 240, process.log_path.read_text()[-3000:]
        time.sleep(0.1)


def probe(process, start: float) -> float:
    """Seconds from ``start`` until a fresh connection's /predict answers 200 (at most 30)."""
    while True:
        try:
            r = httpx.post(process.url + "/predict", json=BODY, headers=headers(), timeout=5)
            if r.status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        assert time.perf_counter() - start < 30, process.log_path.read_text()[-3000:]
        time.sleep(0.05)


def test_one_reload_reaches_every_worker(ops):
    process, copy = ops
    client = MlflowClient(copy.tracking_uri, copy.registry_uri)
    client.set_registered_model_alias(copy.registry.model_name, copy.registry.champion_alias, "2")
    response = httpx.post(process.url + "/reload", headers=headers(ADMIN_KEY), timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["model"]["version"] == "2", response.text
    deadline = time.time() + 120
    pattern = r"\[entry_service:npsrisk:(\d+)\] loaded model npsrisk v2"
    while len(set(re.findall(pattern, process.log_path.read_text()))) < 3:
        assert time.time() < deadline, process.log_path.read_text()[-3000:]
        time.sleep(0.5)
    # Every worker, though only one got /reload: both serving ones and the spare.
    assert sorted(set(re.findall(pattern, process.log_path.read_text()))) == ["1", "2", "3"]
    versions = Counter(
        httpx.post(process.url + "/predict", json=BODY, headers=headers()).json()["model"][
            "version"
        ]
        for _ in range(30)
    )
    assert versions == Counter({"2": 30})


def test_keep_alive_requests_sent_after_sigterm_are_answered(ops):
    process, _ = ops
    clients = [httpx.Client(base_url=process.url, headers=headers(), timeout=30) for _ in range(8)]
    try:
        for c in clients:
            assert c.post("/predict", json=BODY).status_code == 200
        os.kill(process.process.pid, signal.SIGTERM)
        time.sleep(0.2)
        answers = []
        for c in clients:
            try:
                r = c.post("/predict", json=BODY)
                answers.append((r.status_code, r.headers.get("connection")))
            except httpx.HTTPError as exc:
                answers.append((type(exc).__name__, None))
        assert answers == [(200, "close")] * 8, answers
    finally:
        for c in clients:
            c.close()
