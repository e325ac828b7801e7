"""Sessions of the success teams' page: the shared secret, the sealed cookie, CSRF tokens.

The cookie holds the API key the user signed in with, sealed (encrypted and authenticated)
with Fernet under a key derived from the session secret. The key is checked against the
service's key ring on every request, so rotating a key out also ends the sessions made with
it. Every worker must read the same secret: it comes from ``NPSRISK_UI_SESSION_SECRET`` or a
file under the home, created once (atomically, so racing workers agree on one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_ENV = "NPSRISK_UI_SESSION_SECRET"
SECRET_FILE_NAME = "ui-session-secret"
COOKIE = "npsrisk_session"
LOGIN_COOKIE = "npsrisk_login"  # the sign-in form's own CSRF token (no session yet)


def read_session_secret(run_path: Path) -> bytes:
    """The secret from the environment, else from ``run_path/ui-session-secret`` (made once)."""
    env = os.environ.get(SECRET_ENV, "").strip()
    if env:
        return env.encode()
    path = run_path / SECRET_FILE_NAME
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_urlsafe(48).encode())
    try:
        os.link(tmp, path)  # fails if another worker got there first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


@dataclass(frozen=True)
class Session:
    """One signed-in browser: the key it presented, who signed in (recorded with each change
    they make), its id (binds CSRF tokens), when it ends."""

    key: str
    actor: str
    sid: str
    expires: float


class Sealer:
    """Seals sessions into cookie values and derives CSRF tokens, all from one secret."""

    def __init__(self, secret: bytes):
        derived = hashlib.sha256(b"npsrisk-ui-session\0" + secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._csrf_key = hashlib.sha256(b"npsrisk-ui-csrf\0" + secret).digest()

    def seal(
        self, key: str, actor: str, hours: float, now: float | None = None
    ) -> tuple[str, Session]:
        now = time.time() if now is None else now
        session = Session(key, actor, secrets.token_urlsafe(16), now + hours * 3600)
        payload = {"k": key, "a": actor, "s": session.sid, "e": session.expires}
        return self._fernet.encrypt(json.dumps(payload).encode()).decode(), session

    def open(self, value: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie value, or None if absent, forged, tampered or expired."""
        if not value:
            return None
        try:
            data = json.loads(self._fernet.decrypt(value.encode()))
            session = Session(str(data["k"]), str(data["a"]), str(data["s"]), float(data["e"]))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        if session.expires < (time.time() if now is None else now):
            return None
        return session

    def csrf_token(self, binding: str) -> str:
        """The token a form must echo: an HMAC of the session id (or the sign-in nonce)."""
        return hmac.new(self._csrf_key, binding.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, binding: str | None, token: str | None) -> bool:
        if not binding or not token:
            return False
        return hmac.compare_digest(self.csrf_token(binding), token)


class SignInThrottle:
    """Counts wrong keys per client address in a sliding window; past the limit, refuses.

    Per worker (in memory): with W workers an attacker gets at most W × limit guesses per
    window, which still turns a key search into centuries. Addresses are forgotten once their
    window is over, so the table cannot grow without bound.
    """

    def __init__(self, limit: int, window_seconds: float):
        self.limit = limit
        self.window = window_seconds
        self._failures: dict[str, list[float]] = {}

    def _recent(self, address: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(address, ()) if now - t < self.window]
        if kept:
            self._failures[address] = kept
        else:
            self._failures.pop(address, None)
        return kept

    def retry_after(self, address: str, now: float | None = None) -> int:
        """Seconds until ``address`` may try again; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        recent = self._recent(address, now)
        if len(recent) < self.limit:
            return 0
        return max(1, int(recent[0] + self.window - now + 0.999))

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > 100_000:  # a flood of addresses: drop the expired ones
            for known in list(self._failures):
                self._recent(known, now)
        self._recent(address, now)
        self._failures.setdefault(address, []).append(now)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
