"""The database layer and the alert outbox on a real SQLite file: migrations, raising,
claiming, retry and dead-letter bookkeeping, signing."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select
from standardwebhooks import Webhook

from alerts import ALERT_TYPES, list_alerts, raise_alert, redeliver, sign_message
from alerts.outbox import backoff_delay, claim_due, settle
from alerts.relay import deliver_due
from alerts.signing import WebhookSecretError, decode_secret, load_webhook_secrets
from db import Database, DatabaseNotReady, current_revision, head_revision, open_database
from db.migrate import upgrade_database
from db.models import AlertRecord, DeliveryRecord
from npsrisk.settings import load_settings

SECRET_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 24).decode()


@pytest.fixture
def quiet_settings(tmp_path):
    """File channel only, fast retries."""
    return load_settings(
        home=tmp_path / "home",
        alerts={"console": False, "max_attempts": 3, "backoff_seconds": 0.01},
    )


@pytest.fixture
def db(quiet_settings):
    database = open_database(quiet_settings)
    yield database
    database.dispose()


def test_migrations_create_the_tables_once_and_repeat_as_no_ops(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert current_revision(database) is None
    assert upgrade_database(database) == (None, head_revision())
    assert upgrade_database(database) == (head_revision(), head_revision())
    tables = set(inspect(database.engine).get_table_names())
    assert {"alerts", "alert_deliveries", "alembic_version"} <= tables
    database.dispose()


def test_default_sqlite_lives_under_the_home_and_is_migrated_on_open(quiet_settings):
    database = open_database(quiet_settings)
    assert (quiet_settings.home_path / "npsrisk.db").is_file()
    assert current_revision(database) == head_revision()
    database.dispose()


def test_a_configured_database_is_never_migrated_implicitly(tmp_path):
    url = f"sqlite:///{tmp_path / 'server.db'}"
    settings = load_settings(home=tmp_path / "home", database={"url": url})
    with pytest.raises(DatabaseNotReady, match="npsrisk db upgrade"):
        open_database(settings)
    upgrade_database(Database(url))
    open_database(settings).dispose()


def test_raise_alert_fans_out_to_each_configured_channel(tmp_path):
    settings = load_settings(
        home=tmp_path / "home",
        alerts={
            "webhooks": [
                {"url": "http://127.0.0.1:9/all"},
                {"url": "http://127.0.0.1:9/drift-only", "types": ["drift.detected"]},
            ]
        },
    )
    database = open_database(settings)
    drift = raise_alert(database, "drift.detected", {"share": 0.4}, summary="drift")
    other = raise_alert(database, "segment.dropped", {"segment": "emea"})
    views = {v.id: v for v in list_alerts(database)}
    assert [d["channel"] for d in views[drift].deliveries] == [
        "console",
        "file",
        "webhook",
        "webhook",
    ]
    assert [d["target"] for d in views[other].deliveries][-1] == "http://127.0.0.1:9/all"
    assert len(views[other].deliveries) == 3
    body = views[drift].body
    assert body["type"] == "drift.detected" and body["data"] == {"share": 0.4}
    assert body["timestamp"].endswith("Z")
    assert drift.startswith("msg_") and drift != other
    database.dispose()


def test_unknown_types_are_refused(db, quiet_settings):
    with pytest.raises(ValueError, match="unknown alert type"):
        raise_alert(db, "drift.detcted", {})
    assert "performance.decayed" in ALERT_TYPES


def test_an_alert_is_part_of_the_callers_transaction(db, quiet_settings):
    with pytest.raises(RuntimeError), db.session() as session:
        raise_alert(session, "drift.detected", {}, quiet_settings)
        raise RuntimeError("the caller's work failed")
    assert list_alerts(db) == []
    with db.session() as session:
        alert_id = raise_alert(session, "drift.detected", {}, quiet_settings)
    assert [v.id for v in list_alerts(db)] == [alert_id]


def test_a_dedup_key_raises_an_alert_once(db):
    first = raise_alert(db, "drift.detected", {"n": 1}, dedup_key="drift:2025-06")
    again = raise_alert(db, "drift.detected", {"n": 2}, dedup_key="drift:2025-06")
    assert first == again
    assert len(list_alerts(db)) == 1


@pytest.mark.parametrize("attempt", [1, 2, 5, 30])
def test_backoff_is_exponential_capped_and_jittered(attempt):
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, 2.0, 100.0, rng) for _ in range(200)]
    full = min(100.0, 2.0 * 2 ** (attempt - 1))
    assert min(delays) >= full / 2 and max(delays) <= full
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not in step


def test_two_claims_never_hold_the_same_delivery(db):
    for i in range(30):
        raise_alert(db, "drift.detected", {"i": i})
    first = claim_due(db, 20, 60)
    second = claim_due(db, 20, 60)
    assert len(first) == 20 and len(second) == 10
    assert not {c.id for c in first} & {c.id for c in second}
    assert claim_due(db, 20, 60) == []


def test_an_expired_lease_is_retried_with_the_same_alert_id(db, quiet_settings):
    alert_id = raise_alert(db, "drift.detected", {})
    taken = claim_due(db, 10, lease_seconds=60)
    assert [c.alert_id for c in taken] == [alert_id]
    later = datetime.now(UTC) + timedelta(seconds=61)
    retaken = claim_due(db, 10, 60, now=later)
    assert [c.alert_id for c in retaken] == [alert_id]
    # The relay that died comes back late: its settle must not overwrite the new owner's row.
    assert settle(db, taken[0], True, quiet_settings) == "sent"
    with db.session() as session:
        row = session.scalar(select(DeliveryRecord))
        assert row.status == "sending" and row.claim_token == retaken[0].token
    settle(db, retaken[0], True, quiet_settings)
    assert list_alerts(db)[0].status == "sent"


def test_failures_back_off_then_go_dead_and_can_be_redelivered(db, quiet_settings):
    alert_id = raise_alert(db, "performance.decayed", {})
    statuses = []
    for attempt in range(quiet_settings.alerts.max_attempts):
        now = datetime.now(UTC) + timedelta(hours=attempt + 1)
        (claimed,) = claim_due(db, 10, 60, now=now)
        statuses.append(settle(db, claimed, False, quiet_settings, "receiver down", 500, now))
    assert statuses == ["pending", "pending", "dead"]
    (view,) = list_alerts(db, status="dead")
    assert view.deliveries[0]["attempts"] == 3
    assert view.deliveries[0]["last_error"] == "receiver down"
    assert redeliver(db, dead=True) == 1
    (claimed,) = claim_due(db, 10, 60)
    assert claimed.alert_id == alert_id and claimed.attempts == 0


def test_the_file_channel_appends_one_json_line_per_alert(db, quiet_settings):
    ids = [raise_alert(db, "drift.detected", {"i": i}, summary=f"s{i}") for i in range(3)]
    stats = deliver_due(db, quiet_settings)
    assert stats.sent == 3 and stats.dead == 0
    lines = quiet_settings.alerts_file_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ids
    assert records[1]["data"] == {"i": 1} and records[1]["type"] == "drift.detected"
    with db.session() as session:
        assert session.scalar(select(AlertRecord.body).where(AlertRecord.id == ids[0]))


def test_signatures_verify_with_the_reference_package_for_every_secret():
    keys = [decode_secret(SECRET_A), decode_secret(SECRET_B)]
    body = '{"data":{},"timestamp":"2026-01-01T00:00:00Z","type":"drift.detected"}'
    now = int(datetime.now(UTC).timestamp())
    header = sign_message(keys, "msg_1", now, body)
    assert len(header.split(" ")) == 2 and all(s.startswith("v1,") for s in header.split(" "))
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    for secret in (SECRET_A, SECRET_B):
        assert Webhook(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET_A).verify(body.replace("{}", '{"x":1}'), headers)


def test_secrets_come_from_the_environment_or_a_file(tmp_path):
    with pytest.raises(WebhookSecretError, match="NPSRISK_WEBHOOK_SECRETS"):
        load_webhook_secrets({})
    with pytest.raises(WebhookSecretError, match="whsec_"):
        load_webhook_secrets({"NPSRISK_WEBHOOK_SECRETS": "not base64 !!"})
    path = tmp_path / "secrets"
    path.write_text(f"# rotated 2026-11\n{SECRET_B}\n")
    keys = load_webhook_secrets(
        {"NPSRISK_WEBHOOK_SECRETS": SECRET_A, "NPSRISK_WEBHOOK_SECRETS_FILE": str(path)}
    )
    assert keys == [b"a" * 32, b"b" * 24]
