"""The outbox relay: claim due deliveries, send them, settle each; as a one-shot pass
(`npsrisk alerts deliver`), a loop, or a background thread in the service."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from alerts.channels import Outcome, send_console, send_file, send_webhook
from alerts.outbox import Claimed, claim_due, settle
from alerts.signing import WebhookSecretError, load_webhook_secrets
from db.engine import Database
from db.models import utc_now
from npsrisk.settings import Settings

logger = logging.getLogger("npsrisk.alerts")
CLAIM_BATCH = 20


@dataclass
class RelayStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return self.sent + self.retried + self.dead

    def add(self, other: RelayStats) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.errors += other.errors


def _lease(settings: Settings) -> float:
    # A claim must outlive sending its whole batch, or another relay could retake rows
    # this one is still sending (a duplicate under the same id: harmless, but avoidable).
    a = settings.alerts
    return max(a.lease_seconds, CLAIM_BATCH * a.timeout_seconds + 30)


def _send(claimed: Claimed, client: httpx.Client, keys: list[bytes] | None) -> Outcome:
    if claimed.channel == "console":
        return send_console(claimed.alert_id, claimed.alert_type, claimed.summary, claimed.body)
    if claimed.channel == "file":
        return send_file(Path(claimed.target), claimed.alert_id, claimed.body)
    if claimed.channel == "webhook":
        if keys is None:
            return Outcome(False, "no webhook signing secret")
        return send_webhook(client, claimed.target, claimed.alert_id, claimed.body, keys)
    return Outcome(False, f"unknown channel {claimed.channel!r}")


def deliver_due(db: Database, settings: Settings, max_batches: int | None = None) -> RelayStats:
    """One pass: deliver everything due when the pass starts, a claimed batch at a time;
    each delivery is tried at most once per pass (a failure waits for its backoff).

    With webhooks configured and no secret set, raises WebhookSecretError before claiming
    anything, so no try is spent on a delivery that cannot be signed.
    """
    keys = load_webhook_secrets() if settings.alerts.webhooks else None
    stats = RelayStats()
    batches = 0
    timeout = httpx.Timeout(settings.alerts.timeout_seconds)
    started = utc_now()
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        while max_batches is None or batches < max_batches:
            claimed = claim_due(db, CLAIM_BATCH, _lease(settings), due_before=started)
            if not claimed:
                break
            batches += 1
            for item in claimed:
                outcome = _send(item, client, keys)
                status = settle(db, item, outcome.ok, settings, outcome.error, outcome.status_code)
                if status == "sent":
                    stats.sent += 1
                elif status == "dead":
                    stats.dead += 1
                    stats.errors.append(f"{item.alert_id} to {item.target}: {outcome.error}")
                    logger.error(
                        "alert %s to %s is dead: %s", item.alert_id, item.target, outcome.error
                    )
                else:
                    stats.retried += 1
                    stats.errors.append(f"{item.alert_id} to {item.target}: {outcome.error}")
    return stats


def run_relay(db: Database, settings: Settings, stop: threading.Event, every: float) -> RelayStats:
    """Deliver until ``stop`` is set, waking every ``every`` seconds; errors never end it."""
    total = RelayStats()
    while True:
        try:
            total.add(deliver_due(db, settings))
        except WebhookSecretError as exc:
            logger.error("alert relay: %s", exc)
        except Exception:  # the database may be briefly unavailable; try again next time
            logger.exception("alert relay pass failed")
        if stop.wait(every):
            return total


class RelayThread:
    """The relay as a daemon thread, for the service. It never migrates the database:
    `npsrisk serve` did that before the workers started."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RelayThread:
        self._thread = threading.Thread(target=self._run, name="npsrisk-alert-relay", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from db.engine import open_database

        every = self.settings.alerts.relay_poll_seconds
        db = None
        while db is None:
            try:
                db = open_database(self.settings, upgrade=False)
            except Exception as exc:  # not migrated yet: say so once in a while, keep waiting
                logger.warning("alert relay waiting for the database: %s", exc)
                if self._stop.wait(max(every, 30)):
                    return
        try:
            run_relay(db, self.settings, self._stop, every)
        finally:
            db.dispose()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
