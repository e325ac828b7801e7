"""The success teams' page in real headless Chromium against a real `bentoml serve`.

Debian's chromium (installed by .ci/run) is driven by the pinned Playwright; browsers are
never downloaded. The test signs in, filters, sorts, opens a customer, reads the driver
chart, moves an intervention, reloads to see it stored, and signs out, recording every
request the page makes: none may leave 127.0.0.1. Screenshots of each view land in
test-artifacts/ui-screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.conftest import API_KEYS, ServiceProcess, headers

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parents[2] / "test-artifacts" / "ui-screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium "
        "(`apt-get install -y chromium`, as .ci/run does)",
    ),
]


@pytest.fixture(scope="module")
def ui_service(materialized, demo_path, tmp_path_factory):
    """The service with the raw export for NPS history and texts, and a planned wave."""
    settings = materialized
    from db import Database, upgrade_database

    database = Database.from_settings(settings)  # as `npsrisk serve` does before its workers
    upgrade_database(database)
    database.dispose()
    process = ServiceProcess(
        settings.home_path,
        tmp_path_factory.mktemp("ui_service") / "serve.log",
        {"NPSRISK_UI__SOURCE_PATH": str(demo_path), "NPSRISK_SERVING__WORKERS": "1"},
    )
    try:
        process.wait_until_up()
        with httpx.Client(base_url=process.url, headers=headers(), timeout=120) as api:
            top = api.get("/at_risk", params={"limit": 40, "top_k": 1}).json()["items"]
            survey = (date.today() + timedelta(days=30)).isoformat()
            plan = api.post(
                "/presurvey",
                json={"customer_ids": [i["customer_id"] for i in top], "survey_date": survey},
            )
            assert plan.status_code == 200, plan.text
        yield process
    finally:
        process.stop()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _column(page, header: str) -> list[float]:
    """The numbers of one column of the at-risk table (percent signs and commas dropped)."""
    headers_ = [h.strip() for h in page.locator("table.list thead th").all_inner_texts()]
    index = next(i for i, h in enumerate(headers_) if h.startswith(header))
    cells = page.locator(f"table.list tbody tr td:nth-child({index + 1})").all_inner_texts()
    return [float(c.replace("%", "").replace(",", "")) for c in cells if c.strip() not in ("–",)]


def test_a_success_manager_works_the_list_in_a_real_browser(ui_service, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = ui_service.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    # Signed out, the page sends you to the public sign-in form.
    page.goto(f"{base}/ui/")
    assert "/ui/login" in page.url
    page.fill("#actor", "Ana Success")
    page.fill("#api_key", "not-a-key")
    page.click("button[type=submit]")
    assert "not valid" in page.locator("#login-error").inner_text()
    page.screenshot(path=SHOTS / "sign-in-wrong-key.png")

    page.fill("#actor", "Ana Success")
    page.fill("#api_key", API_KEYS[1])  # any active key works (rotation)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/$"))
    cookie = next(c for c in context.cookies() if c["name"] == "npsrisk_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert API_KEYS[1] not in cookie["value"]
    total = int(re.search(r"of ([\d,]+) customers", page.content())[1].replace(",", ""))
    assert total > 100
    churn = _column(page, "Churn prob.")
    assert churn == sorted(churn, reverse=True)  # the default order
    page.screenshot(path=SHOTS / "at-risk.png")

    # Filter by a segment: the URL holds the state, every row is of that segment.
    tier = page.locator("select[name=seg_plan_tier] option").nth(1).get_attribute("value")
    page.select_option("select[name=seg_plan_tier]", tier)
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*seg_plan_tier=.*"))
    assert parse_qs(urlparse(page.url).query)["seg_plan_tier"] == [tier]
    segments = page.locator("table.list tbody tr td:nth-child(7)").all_inner_texts()
    assert segments and all(s.split(" · ")[0] == tier for s in segments)
    filtered = int(re.search(r"of ([\d,]+) customers", page.content())[1].replace(",", ""))
    assert filtered < total

    # Sort by detractor probability, both ways, keeping the filter.
    page.click("th >> text=Detractor prob.")
    page.wait_for_url(re.compile(r".*sort=detractor_probability.*"))
    assert "seg_plan_tier" in page.url
    down = _column(page, "Detractor prob.")
    assert down == sorted(down, reverse=True)
    page.click("th >> text=Detractor prob.")
    page.wait_for_url(re.compile(r".*order=asc.*"))
    up = _column(page, "Detractor prob.")
    assert up == sorted(up) and up[0] <= down[-1]

    # A shared link reproduces the same list.
    shared = page.url
    other = context.new_page()
    other.goto(shared)
    assert (
        other.locator("table.list tbody tr").count() == page.locator("table.list tbody tr").count()
    )
    other.close()

    # No match: a clear empty state.
    page.goto(f"{base}/ui/?owner=nobody-by-this-name")
    assert "No customers match" in page.inner_text("main")

    # Open a customer with a planned intervention.
    page.goto(f"{base}/ui/?status=planned")
    page.locator("table.list tbody tr td:nth-child(2) a").first.click()
    page.wait_for_url(re.compile(r".*/ui/customers/.*"))
    customer_id = page.url.rsplit("/", 1)[-1]
    drivers = page.locator("#drivers svg.chart g.driver")
    assert drivers.count() >= 2
    assert page.locator("#drivers svg.chart").first.get_attribute("role") == "img"
    described = page.locator("#drivers svg.chart g.driver text.lbl").first.text_content()
    assert len(described) > 5 and "_" not in described  # a plain description, not a name
    assert "Model npsrisk v" in page.inner_text("main")
    assert "features as of" in page.inner_text("main")

    # Move the intervention: note, contacted; then reload and see it stored.
    status = page.locator("[data-testid^=status-]").first
    intervention_id = status.get_attribute("data-testid").removeprefix("status-")
    assert status.inner_text() == "planned"
    page.fill(f"#note-{intervention_id}", "Called, they want a fix date")
    page.click("form.actions button[value=contacted]")
    page.wait_for_url(re.compile(r".*done=.*"))
    assert "is now contacted" in page.inner_text("main")
    page.reload()
    assert page.locator(f"[data-testid=status-{intervention_id}]").inner_text() == "contacted"
    page.goto(f"{base}/ui/customers/{customer_id}")
    assert page.locator(f"[data-testid=status-{intervention_id}]").inner_text() == "contacted"
    page.locator("details summary >> text=History").first.click()
    assert "Called, they want a fix date" in page.inner_text("main")
    assert "Ana Success" in page.inner_text("main")
    page.screenshot(path=SHOTS / "customer.png", full_page=True)
    # The API sees the same change (one data path), recorded with who made it.
    stored = httpx.get(
        f"{base}/interventions", params={"customer_id": customer_id}, headers=headers()
    ).json()["interventions"]
    moved = next(i for i in stored if i["id"] == intervention_id)
    assert moved["status"] == "contacted" and moved["history"][-1]["actor"] == "Ana Success"

    # An illegal move (contacted -> planned: no button offers it, so post it by hand with the
    # page's own token) is refused with the allowed moves, as the API's 409 says.
    token = page.locator("form.actions input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(
        f"{base}/ui/interventions/{intervention_id}/status",
        form={"csrf": token, "customer_id": customer_id, "status": "planned"},
        headers={"origin": base},
    )
    assert refused.ok and "problem=" in refused.url and "allowed" in refused.url
    # Without the CSRF token a state change is refused.
    forged = page.request.post(
        f"{base}/ui/interventions/{intervention_id}/status",
        form={"customer_id": customer_id, "status": "dismissed"},
    )
    assert forged.status == 403

    page.goto(f"{base}/ui/segments")
    assert page.locator("svg.chart").count() >= 4
    assert "Next survey wave" in page.inner_text("main")
    page.screenshot(path=SHOTS / "segments.png", full_page=True)
    page.goto(f"{base}/ui/programme")
    assert "Interventions by status" in page.inner_text("main")
    page.screenshot(path=SHOTS / "programme.png", full_page=True)

    # Keyboard: the first Tab reaches the skip link, Enter moves focus to the content.
    page.goto(f"{base}/ui/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    # Sign out: the session is gone, the page asks to sign in again.
    page.click("form.signout button")
    page.wait_for_url(re.compile(r".*/ui/login\?signed_out=1"))
    assert "You are signed out" in page.inner_text("main")
    page.goto(f"{base}/ui/segments")
    assert "/ui/login" in page.url

    hosts = {urlparse(u).hostname for u in requests}
    assert hosts == {"127.0.0.1"}, hosts
    context.close()


def test_the_api_keeps_its_keys_and_the_page_its_session(ui_service):
    with httpx.Client(base_url=ui_service.url, timeout=30) as client:
        assert client.get("/model").status_code == 401  # the API is not opened by /ui
        login = client.get("/ui/login")
        assert login.status_code == 200 and "text/html" in login.headers["content-type"]
        assert "default-src 'none'" in login.headers["content-security-policy"]
        assert client.get("/ui/", follow_redirects=False).status_code == 303
        # A sign-in without the form's token is refused; so is a bad session cookie.
        assert (
            client.post("/ui/login", data={"api_key": API_KEYS[0], "actor": "x"}).status_code == 403
        )
        client.cookies.set("npsrisk_session", "forged", path="/ui")
        assert client.get("/ui/segments", follow_redirects=False).status_code == 303
