"""The /ui app's sign-in, CSRF and empty states, in process (the browser test covers the rest)."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from npsrisk.settings import load_settings
from serving.http import ApiError, KeyRing, ServiceSlot
from serving.ui.app import UiApp


class _NoModelService:
    """What a worker is before any champion exists: no state; handlers answer 503."""

    state = None

    def handle_at_risk(self, request):
        raise ApiError(503, "not_ready", "no model is registered as npsrisk@champion")


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("NPSRISK_API_KEYS", "good-key")
    monkeypatch.delenv("NPSRISK_API_KEYS_FILE", raising=False)
    monkeypatch.delenv("NPSRISK_UI_SESSION_SECRET", raising=False)
    slot = ServiceSlot()
    slot.instance = _NoModelService()
    # The test client speaks plain http://testserver, where a Secure cookie is not sent back.
    settings = load_settings(home=tmp_path / "home", ui={"secure_cookie": False})
    app = UiApp(slot, settings, KeyRing("NPSRISK_API_KEYS", "NPSRISK_API_KEYS_FILE"))
    mounted = Starlette(routes=[Mount("/ui", app.asgi)])  # as BentoML mounts it
    with TestClient(mounted) as c:
        yield c


def _sign_in(client, key: str, actor: str = "Ana"):
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
    return client.post(
        "/ui/login",
        data={"csrf": token, "api_key": key, "actor": actor},
        follow_redirects=False,
    )


def test_a_wrong_key_gets_a_clear_message_and_no_session(client):
    answer = _sign_in(client, "bad-key")
    assert answer.status_code == 401
    assert "not valid for this service" in answer.text
    assert "npsrisk_session" not in answer.cookies


def test_sign_in_without_the_forms_token_is_refused(client):
    answer = client.post("/ui/login", data={"api_key": "good-key", "actor": "Ana"})
    assert answer.status_code == 403 and "expired" in answer.text


def test_no_champion_yet_is_an_empty_state_that_says_what_to_run(client):
    answer = _sign_in(client, "good-key")
    assert answer.status_code == 303
    page = client.get("/ui/")
    assert "no champion model yet: run npsrisk train" in page.text
    assert "Traceback" not in page.text


def test_sign_out_needs_the_sessions_token(client):
    _sign_in(client, "good-key")
    assert client.post("/ui/logout", data={"csrf": "wrong"}).status_code == 403
    page = client.get("/ui/programme")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    out = client.post("/ui/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and "signed_out=1" in out.headers["location"]


def test_wrong_keys_from_one_address_are_throttled_and_a_right_key_waits_too(client):
    for _ in range(5):  # ui.max_failed_signins
        assert _sign_in(client, "bad-key").status_code == 401
    refused = _sign_in(client, "good-key")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong keys" in refused.text
    assert "npsrisk_session" not in refused.cookies


def test_the_throttle_forgets_an_address_once_its_window_is_over():
    from serving.ui.session import SignInThrottle

    throttle = SignInThrottle(limit=2, window_seconds=60)
    throttle.failed("10.0.0.1", now=0.0)
    throttle.failed("10.0.0.1", now=10.0)
    assert throttle.retry_after("10.0.0.1", now=11.0) == 49
    assert throttle.retry_after("10.0.0.2", now=11.0) == 0  # another address is not affected
    assert throttle.retry_after("10.0.0.1", now=60.5) == 0  # the first failure aged out
    throttle.failed("10.0.0.1", now=61.0)
    throttle.succeeded("10.0.0.1")
    assert throttle.retry_after("10.0.0.1", now=62.0) == 0
    assert throttle._failures == {}
