"""Alert delivery to a real HTTP receiver: it fails, times out, recovers; nothing is lost,
each alert keeps one webhook-id, signatures verify with the `standardwebhooks` package, and
two relay processes at once never send one alert twice."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import pytest
from standardwebhooks import Webhook
from webhook_receiver import WebhookReceiver

from alerts import deliver_due, list_alerts, raise_alert
from db import open_database
from npsrisk.settings import load_settings

pytestmark = pytest.mark.integration

NEW_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OLD_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def _settings(home, url, **alerts):
    return load_settings(
        home=home,
        alerts={
            "console": False,
            "file": False,
            "webhooks": [{"url": url}],
            "timeout_seconds": 0.5,
            "backoff_seconds": 0.05,
            "max_backoff_seconds": 0.1,
            **alerts,
        },
    )


def _deliver_until_quiet(db, settings, seconds: float = 3.0):
    """Relay passes until nothing is due any more (retries wait out their backoff)."""
    deadline = time.time() + seconds
    total = 0
    while time.time() < deadline:
        total += deliver_due(db, settings).tried
        time.sleep(0.12)
    return total


def test_a_receiver_that_fails_and_hangs_then_recovers_gets_every_alert_once_per_id(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("NPSRISK_WEBHOOK_SECRETS", f"{NEW_SECRET},{OLD_SECRET}")
    with WebhookReceiver(hang_seconds=1.5) as receiver:
        settings = _settings(tmp_path / "home", receiver.url)
        db = open_database(settings)
        ids = [raise_alert(db, "drift.detected", {"i": i}, summary=f"alert {i}") for i in range(5)]

        receiver.mode = "fail"
        stats = deliver_due(db, settings)
        assert stats.retried == 5 and stats.sent == 0
        assert {v.status for v in list_alerts(db)} == {"pending"}

        receiver.mode = "hang"
        time.sleep(0.15)
        stats = deliver_due(db, settings)
        assert stats.retried == 5 and stats.sent == 0
        assert all("timeout" in e for e in stats.errors)

        receiver.mode = "ok"
        _deliver_until_quiet(db, settings)
        assert {v.status for v in list_alerts(db)} == {"sent"}
        db.dispose()

    # At least once: every alert reached the receiver three times or more, always under the
    # same id; deduplicated, exactly one per alert.
    sent_ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert set(sent_ids) == set(ids)
    assert all(sent_ids.count(i) >= 3 for i in ids)
    assert sorted(receiver.accepted) == sorted(ids)
    assert receiver.accepted_count == len(ids)
    for alert_id, headers in receiver.accepted.items():
        for secret in (NEW_SECRET, OLD_SECRET):  # either side of a rotation verifies
            body = Webhook(secret).verify(headers["body"], headers)
            assert body["type"] == "drift.detected"
            assert body["data"]["i"] == ids.index(alert_id)
    # Retries sign the same stored body bytes.
    bodies = {}
    for r in receiver.requests:
        bodies.setdefault(r["headers"]["webhook-id"], set()).add(r["body"])
    assert all(len(b) == 1 for b in bodies.values())


def test_a_receiver_down_for_good_leaves_dead_alerts_that_redeliver(tmp_path, monkeypatch):
    monkeypatch.setenv("NPSRISK_WEBHOOK_SECRETS", NEW_SECRET)
    with WebhookReceiver() as receiver:
        receiver.mode = "fail"
        settings = _settings(tmp_path / "home", receiver.url, max_attempts=2)
        db = open_database(settings)
        alert_id = raise_alert(db, "performance.decayed", {"auc_drop": 0.08})
        _deliver_until_quiet(db, settings, 1.0)
        (dead,) = list_alerts(db, status="dead")
        assert dead.id == alert_id and dead.deliveries[0]["last_status_code"] == 500
        receiver.mode = "ok"
        env = {
            **os.environ,
            "NPSRISK_HOME": str(settings.home_path),
            "NPSRISK_ALERTS__WEBHOOKS": json.dumps([{"url": receiver.url}]),
            "NPSRISK_ALERTS__CONSOLE": "false",
            "NPSRISK_ALERTS__FILE": "false",
        }
        cli = [sys.executable, "-c", "from npsrisk.cli import main; main()", "alerts"]
        listed = subprocess.run(
            [*cli, "--status", "dead"], env=env, capture_output=True, text=True, check=True
        )
        assert alert_id in listed.stdout
        subprocess.run([*cli, "redeliver", alert_id], env=env, check=True, capture_output=True)
        done = subprocess.run([*cli, "deliver"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "delivered 1" in done.stdout
        assert list(receiver.accepted) == [alert_id]
        db.dispose()


def test_no_secret_is_a_message_not_a_spent_try(tmp_path, monkeypatch):
    monkeypatch.delenv("NPSRISK_WEBHOOK_SECRETS", raising=False)
    monkeypatch.delenv("NPSRISK_WEBHOOK_SECRETS_FILE", raising=False)
    settings = _settings(tmp_path / "home", "http://127.0.0.1:9/hook")
    db = open_database(settings)
    raise_alert(db, "drift.detected", {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPSRISK_WEBHOOK")} | {
        "NPSRISK_HOME": str(settings.home_path),
        "NPSRISK_ALERTS__WEBHOOKS": json.dumps([{"url": "http://127.0.0.1:9/hook"}]),
    }
    cli = [sys.executable, "-c", "from npsrisk.cli import main; main()", "alerts", "deliver"]
    done = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "NPSRISK_WEBHOOK_SECRETS" in done.stderr and "Traceback" not in done.stderr
    assert list_alerts(db)[0].deliveries[0]["attempts"] == 0
    db.dispose()


def test_two_relays_at_once_send_each_alert_once(tmp_path):
    with WebhookReceiver(delay_seconds=0.01) as receiver:
        settings = _settings(tmp_path / "home", receiver.url)
        db = open_database(settings)
        ids = {raise_alert(db, "segment.dropped", {"i": i}) for i in range(120)}
        env = {
            **os.environ,
            "NPSRISK_HOME": str(settings.home_path),
            "NPSRISK_WEBHOOK_SECRETS": NEW_SECRET,
            "NPSRISK_ALERTS__WEBHOOKS": json.dumps([{"url": receiver.url}]),
        }
        cli = [sys.executable, "-c", "from npsrisk.cli import main; main()", "alerts", "deliver"]
        relays = [
            subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
        ]
        outputs = [r.communicate(timeout=120)[0] for r in relays]
        assert all(r.returncode == 0 for r in relays)
        db.dispose()
    delivered = [int(o.split("delivered ")[1].split(",")[0]) for o in outputs]
    assert sum(delivered) == 120
    assert all(d > 0 for d in delivered), f"the relays did not overlap: {delivered}"
    sent_ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert len(sent_ids) == 120 and set(sent_ids) == ids
