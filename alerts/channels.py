"""Sending one alert body to one channel target: the console, a JSONL file, a webhook."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from alerts.signing import sign_message

USER_AGENT = "npsrisk-alerts/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None
    status_code: int | None = None


def send_console(alert_id: str, alert_type: str, summary: str, body: str) -> Outcome:
    print(f"ALERT {alert_type} [{alert_id}] {summary or body}", file=sys.stderr, flush=True)
    return Outcome(True)


def send_file(path: Path, alert_id: str, body: str) -> Outcome:
    """One JSON line per alert, with its id so a reader can deduplicate a retried append."""
    record = {"id": alert_id, **json.loads(body)}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return Outcome(False, f"could not append to {path}: {exc}")
    return Outcome(True)


def send_webhook(
    client: httpx.Client, url: str, alert_id: str, body: str, keys: list[bytes]
) -> Outcome:
    """POST the body with Standard Webhooks headers; any 2xx is delivered, anything else (or
    no answer within the client's timeout) is a failed try."""
    timestamp = int(time.time())  # at send time: receivers reject old timestamps (replays)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": alert_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_message(keys, alert_id, timestamp, body),
    }
    try:
        response = client.post(url, content=body.encode(), headers=headers)
    except httpx.TimeoutException:
        return Outcome(False, f"no answer from {url} within the timeout")
    except httpx.HTTPError as exc:
        return Outcome(False, f"{type(exc).__name__} posting to {url}: {exc}")
    if 200 <= response.status_code < 300:
        return Outcome(True, status_code=response.status_code)
    return Outcome(False, f"{url} answered {response.status_code}", response.status_code)
