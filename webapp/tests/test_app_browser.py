"""The calls app in real headless Chromium pages, over ScaiWave's ASGI app (HTTP and the /v1/events WebSocket)
under uvicorn in a thread, with LiveKit played by the emulator.

Everything up to the media: signing in, creating a room, ringing on every callee's page, declining,
answering, a ring stopped on a person's other device when they answer elsewhere, ending for everyone, and a
ring nobody answers turning into a missed call on every page. Each page's livekit-client connects to the
emulator's /rtc with the ticket it received (Chromium's fake devices); what the pages hear and record is proved in
test_app_real_media.py. Screenshots of each step go to artifacts/screenshots/app-*.png.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from calls.models import Call, CallParticipant, LiveCall
from calls.services import call_expire_ringing
from livekit_emulator.testing import free_port, wait_until
from rooms.testing import livekit, livekit_emulator  # noqa: F401 - fixtures
from scaiwave.tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from transcription.models import UploadedCall
from transcription.tests.analysis_support import complete_without_model, tone_wav
from webapp.services import demo_tenant_get_or_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

# Fake camera and microphone, and sound without a click first (the ringtone, the others' audio).
MEDIA_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium with fake media devices; one per module, as scaiwave/tests/browser does."""
    import os
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS, headless=True
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def server(livekit, monkeypatch) -> Iterator[str]:  # noqa: F811
    """ScaiWave's ASGI app (pages, API, WebSocket) on a free port; the emulator's webhooks go to it."""
    from django.db import connection

    from scaiwave.asgi import application

    # Server threads close their connections after each request, so the test database can be dropped.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10)
    base = f"http://127.0.0.1:{port}"
    livekit.control.config(webhook_urls=[f"{base}/v1/calls/webhook"])
    yield base
    livekit.control.config(webhook_urls=[])
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


class People:
    """Browser contexts opened by a test, closed at its end."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser, self.base = browser, base
        self.contexts: list[Any] = []

    def sign_in(self, name: str, viewport: dict[str, int] = DESKTOP) -> Any:
        context = self.browser.new_context(viewport=viewport, permissions=["microphone", "camera"])
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(self.base + "/app/")
        page.fill("#signin-name", name)
        page.click("#signin-submit")
        page.wait_for_selector("body[data-events=connected]")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def people(browser, server) -> Iterator[People]:
    crowd = People(browser, server)
    yield crowd
    crowd.close()


def create_room(page: Any, name: str, people: str) -> None:
    page.fill("#room-name", name)
    page.fill("#room-people", people)
    page.click("#room-create button[type=submit]")
    page.wait_for_selector(f"#room-title:text-is('{name}')")


def open_room(page: Any, name: str) -> None:
    page.click("#rooms-refresh")
    page.click(f"a.room-link[data-room='{name}']")
    page.wait_for_selector(f"#room-title:text-is('{name}')")


def in_worker_thread(task: Callable[[], Any]) -> Any:
    """Run a worker's task off this thread: Playwright's event loop runs here, and the events a task emits
    are published to the channel layer through async_to_sync, which refuses a thread with a running loop."""
    from django.db import connection

    def run() -> Any:
        try:
            return task()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def ringing_since(page: Any) -> int:
    page.wait_for_selector("#ring", state="visible", timeout=5_000)
    return int(page.get_attribute("#ring", "data-shown-at"))


def test_alice_calls_bob_and_carol_ring_carol_declines_bob_answers_and_alice_ends_it(
    people,
    livekit,  # noqa: F811 - the fixture
    shots,
):
    alice = people.sign_in("Alice")
    bob = people.sign_in("Bob")
    bob_laptop = people.sign_in("Bob")
    carol = people.sign_in("Carol", PHONE)
    create_room(alice, "standup", "Bob, Carol")
    for page in (bob, bob_laptop, carol):
        open_room(page, "standup")
    assert set(alice.locator("#room-members").inner_text().split("\n")) >= {"Alice (you)", "Bob", "Carol"}
    alice.screenshot(path=str(shots / "app-1-room.png"), full_page=True)

    # Alice calls: every page of Bob's and Carol's rings within a second, with her name and a countdown.
    clicked_at = alice.evaluate("Date.now()")
    alice.click("#call-audio")
    delays = {
        name: ringing_since(page) - clicked_at
        for name, page in {"bob": bob, "bob-laptop": bob_laptop, "carol": carol}.items()
    }
    print("ring delays after the click, ms:", delays)
    assert all(delay < 1000 for delay in delays.values()), delays
    call = Call.objects.get(room__name="standup")
    assert call.status == Call.Status.RINGING
    for page in (bob, carol):
        assert page.inner_text("#ring-caller") == "Alice"
        assert "Incoming audio call" in page.inner_text("#ring-what")
        assert "Rings for" in page.inner_text("#ring-countdown")
        assert page.evaluate("document.activeElement.id") == "ring-answer"
        assert page.get_attribute("body", "data-ringtone") == "playing"
    alice.wait_for_selector("#view-call[data-phase=ringing]")
    assert "Ringing Bob, Carol" in alice.inner_text("#call-status")
    alice.screenshot(path=str(shots / "app-2-alice-calling.png"), full_page=True)
    bob.screenshot(path=str(shots / "app-3-bob-ringing.png"), full_page=True)
    carol.screenshot(path=str(shots / "app-4-carol-ringing-phone.png"), full_page=True)

    # Carol declines: her ring stops, the server knows, the others still ring.
    carol.click("#ring-decline")
    carol.wait_for_selector("#ring", state="hidden")
    assert carol.get_attribute("body", "data-ringtone") == "stopped"
    wait_until(
        lambda: CallParticipant.objects.filter(call=call, user__external_id="carol", rejected_at__isnull=False).exists()
    )
    assert bob.is_visible("#ring") and bob_laptop.is_visible("#ring")
    carol.screenshot(path=str(shots / "app-5-carol-declined.png"), full_page=True)

    # Bob answers on one page: that page connects to LiveKit with his token, so his other page stops ringing
    # (answered elsewhere) and Alice's call turns active from LiveKit's webhook.
    with bob.expect_response(lambda response: response.url.endswith(f"/v1/calls/{call.pk}/join")) as joined:
        bob.click("#ring-answer")
    ticket = joined.value.json()["data"]
    assert ticket["livekit_room"] == call.livekit_room and ticket["livekit_url"] == livekit.ws_url
    bob.wait_for_selector("#view-call", state="visible")
    bob.wait_for_selector("#ring", state="hidden")
    assert bob.inner_text("#call-title") == "Audio call \u00b7 standup"
    assert "Bob (you)" in bob.inner_text("#tiles")
    bob.wait_for_selector("#connection-state[data-state=connected]", timeout=30_000)
    bob_laptop.wait_for_selector("#ring", state="hidden")
    assert "Answered on another device" in bob_laptop.inner_text("#notices")
    alice.wait_for_selector("#view-call[data-phase=active]")
    assert alice.inner_text("#call-status") == "In call"
    assert Call.objects.get(pk=call.pk).status == Call.Status.ACTIVE
    bob.screenshot(path=str(shots / "app-6-bob-in-call.png"), full_page=True)
    alice.screenshot(path=str(shots / "app-7-alice-in-call.png"), full_page=True)

    # Alice (the initiator) ends it for everyone: both pages show the ended call.
    assert alice.is_visible("#end-all") and not bob.is_visible("#end-all")
    alice.click("#end-all")
    for page in (alice, bob):
        page.wait_for_selector("#view-summary[data-status=ended]")
        assert page.inner_text("#summary-status").startswith("Ended")
    assert Call.objects.get(pk=call.pk).status == Call.Status.ENDED
    bob.screenshot(path=str(shots / "app-8-bob-after-the-call.png"), full_page=True)

    # Back in the room, the history lists the call.
    alice.click("#summary-back")
    alice.wait_for_selector(f"#room-calls [data-call='{call.pk}'][data-status=ended]")
    alice.screenshot(path=str(shots / "app-9-room-history.png"), full_page=True)


def test_a_ring_nobody_answers_becomes_missed_on_every_page_at_the_time_out(people, shots):
    tenant, _ = demo_tenant_get_or_create()
    tenant.ring_timeout_seconds = 4
    tenant.save(update_fields=["ring_timeout_seconds"])
    alice = people.sign_in("Alice")
    bob = people.sign_in("Bob")
    carol = people.sign_in("Carol", PHONE)
    create_room(alice, "standup", "Bob, Carol")
    open_room(bob, "standup")
    alice.click("#call-video")
    ringing_since(bob)
    ringing_since(carol)
    call = Call.objects.get(room__name="standup")
    assert re.fullmatch(r"Rings for [1-4] more s", bob.inner_text("#ring-countdown"))
    bob.screenshot(path=str(shots / "app-10-bob-ringing-with-countdown.png"), full_page=True)

    # The test plays the beat (calls.expire_ringing): the ring is over once its time-out has passed.
    assert wait_until(lambda: in_worker_thread(call_expire_ringing), timeout=10, interval=0.25) == 1
    assert Call.objects.get(pk=call.pk).status == Call.Status.MISSED
    for page in (bob, carol):
        page.wait_for_selector("#ring", state="hidden")
        missed = page.wait_for_selector(".notice[data-kind=missed]")
        assert missed.inner_text().startswith("Missed video call from Alice in standup"), missed.inner_text()
    alice.wait_for_selector("#view-summary[data-status=missed]")
    assert alice.inner_text("#summary-status").startswith("Missed \u2014 nobody answered")
    bob.wait_for_selector(f"#room-calls [data-call='{call.pk}'][data-status=missed]")
    bob.wait_for_selector("#room-timeline [data-kind=missed_call]")
    alice.screenshot(path=str(shots / "app-11-alice-missed.png"), full_page=True)
    bob.screenshot(path=str(shots / "app-12-bob-missed.png"), full_page=True)
    carol.screenshot(path=str(shots / "app-13-carol-missed-phone.png"), full_page=True)


def test_an_uploaded_recording_is_watched_until_its_transcript_summary_and_action_items_show(
    people, shots, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    recording = tmp_path / "review.wav"
    recording.write_bytes(tone_wav(1.0))
    alice = people.sign_in("Alice")
    alice.click("nav a[data-tab=analysis]")
    alice.set_input_files("#upload-file", str(recording))
    alice.fill("#upload-title", "Quarterly review")
    alice.fill("#upload-contact", "Ravi")
    alice.click("#upload-form button[type=submit]")
    alice.wait_for_selector("#analysis-detail h1:text-is('Quarterly review')")
    assert alice.inner_text("#analysis-detail .call-status") == "queued\u2026"
    call = UploadedCall.objects.get(title="Quarterly review")
    assert call.contact_name == "Ravi"
    alice.screenshot(path=str(shots / "app-14-analysis-queued.png"), full_page=True)

    # The speech worker finishes it (without a model here); the page, polling, shows the result.
    in_worker_thread(
        lambda: complete_without_model(
            call.pk, [("Speaker 1", 0.0, 2.5, "Hello Ravi. I will send the quote by Friday.")]
        )
    )
    alice.wait_for_selector("#analysis-detail h2:text-is('Transcript')", timeout=10_000)
    detail = alice.inner_text("#analysis-detail")
    assert "I will send the quote by Friday." in detail
    assert "Completed" in detail
    headings = alice.locator("#analysis-detail h2").all_text_contents()
    assert headings == ["Summary", "Action items", "Speakers", "Transcript"]
    assert "I will send the quote by Friday" in alice.inner_text("#analysis-detail ul.history")
    assert "completed" in alice.inner_text("#analysis-list")
    alice.screenshot(path=str(shots / "app-15-analysis-completed.png"), full_page=True)


def test_a_host_schedules_a_live_call_goes_live_and_a_viewer_joins_it(people, shots):
    alice = people.sign_in("Alice")
    bob = people.sign_in("Bob", PHONE)
    alice.click("nav a[data-tab=live]")
    alice.fill("#live-title-input", "Town hall")
    alice.click("#live-form button[type=submit]")
    alice.wait_for_selector("#live-detail h1:text-is('Town hall')")
    assert "scheduled" in alice.inner_text("#live-detail dl")
    assert "Not ready" in alice.inner_text("#live-detail dl")
    alice.click("#live-detail button:text-is('Go live')")
    alice.wait_for_selector("#live-detail dd:text-is('live')")
    live = LiveCall.objects.get(title="Town hall")
    assert live.status == "live" and live.host.external_id == "alice"
    alice.screenshot(path=str(shots / "app-16-live-call-host.png"), full_page=True)

    bob.goto(f"{people.base}/app/#/live/{live.pk}")
    bob.wait_for_selector("#live-detail h1:text-is('Town hall')")
    assert bob.locator("#live-detail button:text-is('Go live')").count() == 0
    with bob.expect_response(lambda response: response.url.endswith("/token")) as issued:
        bob.click("#live-detail button:text-is('Watch')")
    assert issued.value.json()["role"] == "viewer"
    bob.wait_for_selector("#view-call", state="visible")
    assert bob.inner_text("#call-title") == "Town hall"
    assert "viewer" in bob.inner_text("#call-status")
    bob.screenshot(path=str(shots / "app-17-live-call-viewer-phone.png"), full_page=True)


def test_the_app_works_from_the_keyboard_signing_in_and_declining_a_ring_with_escape(people, browser, server):
    alice = people.sign_in("Alice")
    create_room(alice, "standup", "Bob")
    context = browser.new_context(viewport=PHONE)
    people.contexts.append(context)
    bob = context.new_page()
    bob.goto(server + "/app/")
    # The name field is labelled and has the focus; typing and Enter sign in.
    assert bob.get_by_label("Your name").get_attribute("id") == "signin-name"
    assert bob.evaluate("document.activeElement.id") == "signin-name"
    bob.keyboard.type("Bob")
    bob.keyboard.press("Enter")
    bob.wait_for_selector("body[data-events=connected]")

    alice.click("#call-audio")
    ringing_since(bob)
    assert bob.get_by_role("alertdialog", name="Alice").count() == 1  # announced with the caller's name
    assert bob.evaluate("document.activeElement.id") == "ring-answer"
    bob.keyboard.press("Tab")
    assert bob.evaluate("document.activeElement.id") == "ring-decline"
    bob.keyboard.press("Tab")
    assert bob.evaluate("document.activeElement.id") == "ring-answer"  # focus stays in the dialog
    bob.keyboard.press("Escape")
    bob.wait_for_selector("#ring", state="hidden")
    call = Call.objects.get(room__name="standup")
    wait_until(lambda: Call.objects.get(pk=call.pk).status == Call.Status.REJECTED)
    alice.wait_for_selector("#view-summary[data-status=rejected]")
    assert alice.inner_text("#summary-status").startswith("Declined")
