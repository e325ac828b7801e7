"""The running service: `npsrisk serve` migrates the database once before the workers start,
the worker runs the alert relay, and the worker process never imports Evidently (checked
inside the worker, by a module dump that a sitecustomize hook writes from that process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from alerts import list_alerts, raise_alert
from conftest import API_KEYS, headers
from db import current_revision, head_revision, open_database
from db.engine import Database
from npsrisk.settings import load_settings
from serving.process import free_port, wait_for_ok

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOOK = """
import json, os, sys, threading, time
_dir = os.environ.get("NPSRISK_TEST_MODULES_DIR")
def _dump():
    while True:
        time.sleep(0.3)
        try:
            names = sorted(list(sys.modules))
            path = os.path.join(_dir, f"{os.getpid()}.json")
            with open(path + ".tmp", "w") as handle:
                json.dump({"argv": sys.argv, "modules": names}, handle)
            os.replace(path + ".tmp", path)
        except Exception:
            pass
if _dir:
    threading.Thread(target=_dump, daemon=True).start()
"""


def _worker_dumps(folder: Path) -> list[dict]:
    dumps = []
    for path in folder.glob("*.json"):
        try:
            dump = json.loads(path.read_text())
        except ValueError:
            continue
        dumps.append(dump)
    return dumps


def test_the_service_worker_never_imports_evidently_and_runs_the_relay(service, trained, tmp_path):
    settings, _ = trained
    # The trained home, with its own database file: a fresh one `npsrisk serve` must migrate.
    database_url = f"sqlite:///{tmp_path / 'service.db'}"
    assert current_revision(Database(database_url)) is None
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    dumps = tmp_path / "modules"
    dumps.mkdir()
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {
        **os.environ,
        "NPSRISK_HOME": str(settings.home_path),
        "NPSRISK_DATABASE__URL": database_url,
        "NPSRISK_API_KEYS": ",".join(API_KEYS),
        "NPSRISK_ALERTS__RELAY_POLL_SECONDS": "0.5",
        "NPSRISK_ALERTS__FILE_PATH": str(tmp_path / "alerts.jsonl"),
        "NPSRISK_TEST_MODULES_DIR": str(dumps),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
    }
    cli = [sys.executable, "-c", "from npsrisk.cli import main; main()", "serve"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*cli, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ok(url + "/readyz", process, 240, log_path.read_text)
        assert "database migrated: empty -> " in log_path.read_text()
        db = Database(database_url)
        assert current_revision(db) == head_revision()
        response = httpx.post(
            url + "/predict", json={"customer_ids": ["C-000010"], "top_k": 2},
            headers=headers(), timeout=30,
        )  # fmt: skip
        assert response.status_code == 200
        # An alert raised by anyone is delivered by the worker's background relay.
        raiser = load_settings(
            home=settings.home_path,
            database={"url": database_url},
            alerts={"console": False, "file_path": tmp_path / "alerts.jsonl"},
        )
        with_settings = open_database(raiser, upgrade=False)
        alert_id = raise_alert(
            with_settings, "drift.detected", {"from": "test"}, summary="relay check"
        )
        deadline = time.time() + 30
        while time.time() < deadline and list_alerts(db)[0].status != "sent":
            time.sleep(0.3)
        assert list_alerts(db)[0].status == "sent"
        assert alert_id in (tmp_path / "alerts.jsonl").read_text()
        time.sleep(1.0)  # one more module dump after the requests and the relay pass
        every = _worker_dumps(dumps)
        # The BentoML arbiter imports serving.service too (for its config); the workers are
        # the processes started as _bentoml_impl/worker/service.py.
        workers = [d for d in every if "_bentoml_impl" in d["argv"][0] and "worker" in d["argv"][0]]
        assert workers, "no worker process wrote a module dump"
        for dump in workers:
            assert "serving.service" in set(dump["modules"])
        # The relay delivered the alert above; a worker's dump that shows it loaded says the
        # hook is live (a dump written before a worker finished starting may predate it).
        assert any({"alerts.relay", "sqlalchemy"} <= set(d["modules"]) for d in workers)
        for dump in every:  # no process of the service, worker or not, loads Evidently
            modules = set(dump["modules"])
            assert not any(m == "evidently" or m.startswith("evidently.") for m in modules)
            assert not any(m.startswith("monitoring.") for m in modules - {"monitoring"})
        with_settings.dispose()
        db.dispose()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
