"""The operators' console in a real headless Chromium, over a live server, with LiveKit played by the emulator.

Two callees connect to the emulator with the tokens ScaiWave minted; the emulator's signed webhooks reach the
live server, which marks them joined. An operator then finds the live call from the dashboard, opens it, sees
both participants and the timeline chart, ends it with the action and its confirmation, and the call's
LiveKit room is gone from the emulator. A support user sees the same pages without any action.
Screenshots of the dashboard and the call page go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from calls.models import Call, CallParticipant
from calls.tests.conftest import make_room
from rooms.testing import livekit, livekit_emulator  # noqa: F401 - fixtures
from scaiwave.tests.admin_data import PASSWORD, make_operator, make_support

CONFIRM = "Yes, I\u2019m sure"  # Django's wording, with its typographic apostrophe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def wait_until(predicate: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def live_call(acme, livekit, live_server, settings) -> Iterator[Call]:  # noqa: F811
    """alice called bob in "standup"; both are connected to LiveKit and LiveKit told ScaiWave so."""
    livekit.control.config(webhook_urls=[live_server.url + "/v1/calls/webhook"])
    make_room(acme, "standup", {"alice": 0, "bob": 0})
    # Over HTTP to the live server: the browser's event loop runs in this thread, so no in-process requests.
    http = httpx.Client(base_url=live_server.url, timeout=15)
    alice = {"Authorization": f"Bearer {acme.user_token('alice', name='Alice')}"}
    bob = {"Authorization": f"Bearer {acme.user_token('bob', name='Bob')}"}
    started = http.post("/v1/calls/initiate", json={"room_id": "standup", "type": "audio"}, headers=alice)
    assert started.status_code == 201, started.text
    ticket = started.json()["data"]
    joined = http.post(f"/v1/calls/{ticket['call_id']}/join", headers=bob)
    assert joined.status_code == 200, joined.text
    livekit.control.connect(ticket["livekit_token"])
    livekit.control.connect(joined.json()["data"]["livekit_token"])
    wait_until(
        lambda: CallParticipant.objects.filter(call_id=ticket["call_id"], joined_at__isnull=False).count() == 2,
        what="both participants joined (LiveKit webhooks)",
    )
    yield Call.objects.get(pk=ticket["call_id"])
    livekit.control.config(webhook_urls=[])


def log_in(browser: Any, base_url: str, username: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(base_url + "/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")
    return page


def livekit_rooms(emulator: Any) -> set[str]:
    return {room["name"] for room in emulator.control.state()["rooms"]}


def test_an_operator_finds_a_live_call_sees_who_is_in_it_and_ends_it(
    browser,
    live_server,
    live_call,
    livekit,  # noqa: F811 - the fixture
    screenshots: Path,
):
    make_operator()
    assert live_call.livekit_room in livekit_rooms(livekit)
    page = log_in(browser, live_server.url, "ops")

    # The dashboard: one live call, two participants; the figure links to the live calls.
    figures = page.locator(".dashboard-figure")
    live_figure = figures.filter(has_text="Live calls now")
    assert live_figure.locator(".figure-value").inner_text().strip() == "1"
    assert figures.filter(has_text="Participants in calls now").locator(".figure-value").inner_text().strip() == "2"
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
    live_figure.locator("a.figure-value").click()

    # The filtered list holds the call; its page shows both participants and the timeline.
    page.wait_for_selector("#result_list")
    page.click(f"#result_list a:text('{live_call.pk}')")
    page.wait_for_selector("svg.call-timeline")
    inline = page.locator(".inline-group").first.inner_text()
    assert "alice" in inline and "bob" in inline
    bars = page.locator("svg.call-timeline rect.connected")
    assert bars.count() == 2
    assert {bars.nth(i).get_attribute("data-participant") for i in range(2)} == {"Alice", "Bob"}
    page.screenshot(path=str(screenshots / "call-detail.png"), full_page=True)

    # End it: select, choose the action, confirm.
    page.go_back()
    page.wait_for_selector("#result_list")
    page.check(f"input[name=_selected_action][value='{live_call.pk}']")
    page.select_option("select[name=action]", "end_calls")
    page.click("button[name=index]")
    page.wait_for_selector(f"text={CONFIRM}")
    assert live_call.pk in page.locator("#content").inner_text()
    page.click(f"input[type=submit][value='{CONFIRM}']")
    page.wait_for_selector("ul.messagelist")
    assert "End calls: done for 1" in page.locator("ul.messagelist").inner_text()

    # The status changed, on the page and in the database; LiveKit's room is gone.
    page.goto(f"{live_server.url}/admin/calls/call/?q={live_call.pk}")
    row = page.locator("#result_list tbody tr").first.inner_text()
    assert re.search(r"\bEnded\b", row), row
    assert Call.objects.get(pk=live_call.pk).status == Call.Status.ENDED
    wait_until(lambda: live_call.livekit_room not in livekit_rooms(livekit), what="the LiveKit room is deleted")
    page.context.close()


def test_a_support_user_sees_the_live_call_but_no_action(browser, live_server, live_call):
    make_support()
    page = log_in(browser, live_server.url, "support")

    page.goto(f"{live_server.url}/admin/calls/call/")
    assert live_call.pk in page.locator("#result_list").inner_text()
    assert page.locator("select[name=action]").count() == 0
    page.goto(f"{live_server.url}/admin/calls/call/{live_call.pk}/change/")
    assert page.locator("svg.call-timeline rect.connected").count() == 2
    assert page.locator("#call_form input[type=submit]").count() == 0
    page.goto(f"{live_server.url}/admin/scaiwave/tenant/")
    assert page.locator("select[name=action]").count() == 0
    page.context.close()
    assert Call.objects.get(pk=live_call.pk).is_live
