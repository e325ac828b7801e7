"""Standard Webhooks signatures: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``, one
per active secret so a receiver accepts either side of a rotation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

SECRETS_ENV = "NPSRISK_WEBHOOK_SECRETS"
SECRETS_FILE_ENV = "NPSRISK_WEBHOOK_SECRETS_FILE"
SECRET_PREFIX = "whsec_"


class WebhookSecretError(ValueError):
    """No usable signing secret; the message says what to set (never the secret itself)."""


def decode_secret(secret: str) -> bytes:
    """A ``whsec_<base64>`` secret (the spec's format) as key bytes."""
    text = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError(
            f"a webhook secret in {SECRETS_ENV} is not whsec_<base64>; generate one with "
            "`python -c \"import os,base64;print('whsec_'+base64.b64encode(os.urandom(32))"
            '.decode())"`'
        ) from None
    if len(key) < 16:
        raise WebhookSecretError("a webhook secret must hold at least 16 random bytes")
    return key


def load_webhook_secrets(environ: dict[str, str] | None = None) -> list[bytes]:
    """Secrets from NPSRISK_WEBHOOK_SECRETS (comma-separated) and/or the file named by
    NPSRISK_WEBHOOK_SECRETS_FILE (one per line), newest first by convention."""
    env = os.environ if environ is None else environ
    raw = [s for s in env.get(SECRETS_ENV, "").split(",") if s.strip()]
    if env.get(SECRETS_FILE_ENV):
        path = Path(env[SECRETS_FILE_ENV]).expanduser()
        if not path.is_file():
            raise WebhookSecretError(f"{SECRETS_FILE_ENV} names {path}, which does not exist")
        raw += [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not raw:
        raise WebhookSecretError(
            f"webhooks are configured but no signing secret is set: set {SECRETS_ENV} "
            f"(comma-separated whsec_... values) or {SECRETS_FILE_ENV}"
        )
    return [decode_secret(s) for s in raw]


def sign_message(keys: list[bytes], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value: space-separated ``v1,<sig>``, one per key."""
    payload = f"{msg_id}.{timestamp}.{body}".encode()
    return " ".join(
        "v1," + base64.b64encode(hmac.new(k, payload, hashlib.sha256).digest()).decode()
        for k in keys
    )
