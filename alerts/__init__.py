"""One alerting module for every package: raise an alert into the durable outbox; relays
deliver it to the console, a JSONL file and signed webhooks, at least once, one id per alert.

    from alerts import raise_alert
    with db.session() as session:
        raise_alert(session, "drift.detected", {"report": ...}, settings, summary="...")

The alert commits with the caller's transaction (an intervention and its alert are written
together or not at all); a relay (`npsrisk alerts deliver`, or the service in the
background) sends it.
"""

from alerts.outbox import (
    ALERT_TYPES,
    AlertView,
    list_alerts,
    raise_alert,
    redeliver,
)
from alerts.relay import RelayStats, RelayThread, deliver_due, run_relay
from alerts.signing import WebhookSecretError, load_webhook_secrets, sign_message

__all__ = [
    "ALERT_TYPES",
    "AlertView",
    "RelayStats",
    "RelayThread",
    "WebhookSecretError",
    "deliver_due",
    "list_alerts",
    "load_webhook_secrets",
    "raise_alert",
    "redeliver",
    "run_relay",
    "sign_message",
]
