"""Beat's periodic tasks killed mid-run, one test per task (docs/reliability.md, rows 4e-4n).

Each test kills the clean worker, seeds two or more items of work for one task, and starts a worker with
the task's failpoint (scaiwave/failpoints.py). It halts right after the first item's effect is committed
(the outbox re-dispatch: after the first event's sinks ran inside the batch's transaction; the webhook
sweep: between its commit and the queueing of its tasks). The test checks what that left, SIGKILLs the
whole worker, starts a clean one and lets beat's next ticks finish the run. The killed task's message stays
unacknowledged in Redis until the broker's visibility time-out (an hour), so the work comes back through
beat, not through redelivery. analysis.enforce_retention, whose schedule cannot be shorter than a minute,
and the extra runs of recordings.sweep_media are sent by name, as beat sends them. Then every item must have
taken effect exactly once: its state, one outbox Event per item where the task emits them, no second row,
delivery or timeline entry, and nothing lost.

One stack for the module (fault_stack.Stack: private PostgreSQL and Redis, uvicorn, a Celery worker and
beat with the production settings), with the beat intervals shortened as far as the settings allow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from livekit_emulator.testing import EmulatorProcess
from scaiwave.tests.fault_stack import ROOT, Stack, wait_until
from webhooks.tests.receivers import WebhookReceiver

pytestmark = pytest.mark.slow

# Beat's schedules, as short as settings.py allows; the others are fault_stack.Stack's (webhooks.sweep and
# scaiwave.events.redispatch 1 s, recordings.reconcile_egress 2 s, both recover_stuck sweeps 5 s).
# analysis.enforce_retention cannot run more often than once a minute: its tests send it as beat does.
INTERVALS = {
    "LIVEKIT_RECONCILE_INTERVAL": "2",
    "CALL_RING_SWEEP_INTERVAL": "1",
    "LIVE_CALL_SWEEP_INTERVAL": "2",
    "MEDIA_SWEEP_INTERVAL": "10",  # the smallest allowed
}
DAY = 86400


@pytest.fixture(scope="module")
def stack(emulator: EmulatorProcess) -> Iterator[Stack]:
    stack = Stack(livekit_url=emulator.url, livekit_key=emulator.api_key, livekit_secret=emulator.api_secret,
                  extra_env=INTERVALS)  # fmt: skip
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


# --- Helpers --------------------------------------------------------------------------------------------------

# Run before every snippet DjangoShell runs inside Django: the stack's tenant, a way to print the answer, and
# the rows most seeds need.
_PRELUDE = """
import json
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from recordings.models import MediaEntry
from scaiwave.models import Event, Tenant, TenantUser

tenant = Tenant.objects.get(pk={tenant_id!r})


def out(value):
    print(json.dumps(value, default=str))


def events(type_, **data):
    return Event.objects.filter(type=type_, **{{f"data__{{k}}": v for k, v in data.items()}}).count()


def media_entry(key, *, source, recording=None, age=timedelta(0)):
    path = Path(settings.MEDIA_ROOT) / key
    return MediaEntry.objects.create(
        tenant=tenant, key=key, content_type="audio/ogg", size=path.stat().st_size if path.exists() else 1,
        duration_seconds=3.0, sha256="0" * 64, source=source, recording=recording,
        created_at=timezone.now() - age,
    )
"""


class DjangoShell:
    """One long-lived `manage.py shell` with the stack's settings, running the tests' snippets in turn.

    A fresh shell per query costs about 2 s on this machine, and the module runs some fifty. Each snippet runs
    after _PRELUDE in a namespace of its own, in autocommit (it sees what the workers have committed), and
    returns what it passed to `out`.
    """

    _LOOP = textwrap.dedent(
        """
        import sys, traceback
        for header in iter(sys.stdin.readline, ""):
            code = sys.stdin.read(int(header))
            try:
                exec(code, {})
            except Exception:
                traceback.print_exc(file=sys.stdout)
                print("\\x1efailed", flush=True)
            else:
                print("\\x1edone", flush=True)
        """
    )

    def __init__(self, stack: Stack) -> None:
        self.prelude = _PRELUDE.format(tenant_id=stack.creds["tenant_id"])
        self._log = open(stack.dir / "django-shell.log", "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", self._LOOP],
            cwd=ROOT, env={**stack.env, "PYTHONIOENCODING": "utf-8"}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, encoding="utf-8",
        )  # fmt: skip

    def __call__(self, code: str) -> Any:
        source = self.prelude + textwrap.dedent(code)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{len(source)}\n{source}")
        self.process.stdin.flush()
        lines: list[str] = []
        for line in iter(self.process.stdout.readline, ""):
            if line.startswith("\x1e"):
                assert line.rstrip("\n") == "\x1edone", "the snippet failed:\n" + "".join(lines)
                return json.loads(lines[-1])
            lines.append(line)
        raise RuntimeError("the Django shell exited:\n" + "".join(lines))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture(scope="module")
def django(stack: Stack) -> Iterator[DjangoShell]:
    shell = DjangoShell(stack)
    try:
        yield shell
    finally:
        shell.close()


def _send_task(django: DjangoShell, name: str) -> None:
    """Queue a periodic task the way beat does: by name, without arguments."""
    django(f"from scaiwave.celery import app; app.send_task({name!r}); out(None)")


def _runs(stack: Stack, task: str) -> int:
    """How many runs of `task` the current worker has finished (its log's "succeeded" lines)."""
    assert stack.worker is not None
    return sum(1 for line in stack.worker.output().splitlines() if f"{task}[" in line and " succeeded in " in line)


def _halt_mid_run(stack: Stack, point: str, *, django: DjangoShell | None = None, send: str = "") -> None:
    """Start a worker that halts at `point`; wait until the task (run by beat, or `send` as beat sends it)
    reaches it."""
    stack.start_worker(failpoints=(point,))
    if send:
        assert django is not None
        _send_task(django, send)
    wait_until(lambda: stack.failpoint_reached(point), 60, what=f"the failpoint {point}")


def _kill(stack: Stack) -> None:
    """SIGKILL the worker's whole process group (main process and pool child): the clean one before a test
    seeds its work (so nothing takes it early), the halted one once it has reached the failpoint."""
    assert stack.worker is not None
    stack.worker.kill()


def _restart_until(
    stack: Stack,
    task: str,
    done: Callable[[], bool],
    *,
    what: str,
    timeout: float = 60,
    kick: Callable[[], None] | None = None,
) -> None:
    """Start a clean worker once the test has looked at what the kill left, `kick` the task if beat would be too
    slow to, and wait until the work is `done`; prints how long that took (docs/reliability.md quotes it)."""
    started_at = time.monotonic()
    stack.start_worker()
    if kick is not None:
        kick()
    wait_until(done, timeout, interval=0.5, what=what)
    print(f"\n{task}: the work was complete {time.monotonic() - started_at:.1f} s after the clean worker was started")


def _settle(stack: Stack, task: str, runs: int = 2, *, django: DjangoShell | None = None, timeout: float = 30) -> None:
    """Let the clean worker run `task` `runs` more times after the work is done: a second application of any
    item would show now. With `django`, the runs are sent as beat sends them, not waited for."""
    baseline = _runs(stack, task)
    if django is not None:
        for _ in range(runs):
            _send_task(django, task)
    wait_until(lambda: _runs(stack, task) >= baseline + runs, timeout, what=f"{runs} more runs of {task}")


def _audio(stack: Stack, key: str, seconds: float = 3.0) -> Path:
    """A real OGG/Opus tone stored at `key` in the stack's local storage."""
    path = stack.dir / "media" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:a", "libopus", str(path)], check=True, timeout=60)  # fmt: skip
    return path


def _register_webhook(stack: Stack, url: str, event_type: str) -> str:
    with stack.client() as client:
        response = client.post("/v1/webhooks", json={"url": url, "events": [event_type]})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _webhook_ids(receiver: WebhookReceiver) -> list[str]:
    """The webhook-id of every request received (the outbox event's id)."""
    return [request.headers["webhook-id"] for request in list(receiver.requests)]


# --- rooms.reconcile_livekit ----------------------------------------------------------------------------------


def test_worker_sigkilled_mid_livekit_reconciliation_announces_each_missed_join_once(stack, django, emulator):
    """Two rooms each have a participant LiveKit lists and ScaiWave never heard of (its webhook was lost)."""
    point = "rooms.reconcile_livekit.room_repaired"
    rooms = ["kill-reconcile-a", "kill-reconcile-b"]
    _kill(stack)
    with stack.client() as client:
        for room in rooms:
            assert client.post("/v1/rooms", json={"name": room}).status_code == 201
    # Each room's LiveKit name as ScaiWave chose it (the only tenant of the stack gets no prefix).
    livekit_names = django(
        f"from rooms.models import Room\nout([Room.objects.get(name=r).livekit_name for r in {rooms!r}])"
    )
    for room, livekit_name in zip(rooms, livekit_names, strict=True):
        # The emulator here sends no webhooks: ScaiWave learns of the joins only by reconciling.
        emulator.control.connect(emulator.token(f"guest-{room}", livekit_name))
    _halt_mid_run(stack, point)

    def joins() -> list[list[int]]:
        """Per room: the guest's rows, its rows in state joined, its participant_joined events."""
        return list(
            django(
                f"""
                from rooms.models import RoomParticipant
                guests = [RoomParticipant.objects.filter(room__name=room, identity=f"guest-{{room}}")
                          for room in {rooms!r}]
                out([[rows.count(), rows.filter(state="joined").count(),
                      events("participant_joined", roomId=room, participantId=f"guest-{{room}}")]
                     for room, rows in zip({rooms!r}, guests)])
                """,
            )
        )

    _kill(stack)
    assert sorted(joins()) == [[0, 0, 0], [1, 1, 1]]  # one room repaired, the other not yet
    _restart_until(stack, "rooms.reconcile_livekit", lambda: all(room[1] == 1 for room in joins()), what="both joins")
    _settle(stack, "rooms.reconcile_livekit")
    assert joins() == [[1, 1, 1]] * 2


# --- scaiwave.events.redispatch -------------------------------------------------------------------------------


def test_worker_sigkilled_mid_outbox_redispatch_delivers_each_event_once(stack, django):
    """Three events whose dispatch after commit never ran (their process died first) wait in the outbox."""
    point = "scaiwave.events.redispatch.dispatched"
    with WebhookReceiver() as receiver:
        _register_webhook(stack, receiver.url, "ingress_started")
        _kill(stack)
        event_ids = django(
            """
            # Written without event_emit, so nothing dispatches them after commit.
            out([Event.objects.create(tenant=tenant, type="ingress_started", data={"ingressId": f"IN_kill_{n}"}).id
                 for n in range(3)])
            """,
        )
        _halt_mid_run(stack, point)

        def outbox() -> list[list[Any]]:
            """Per event: dispatched or not, and the statuses of its deliveries."""
            return list(
                django(
                    f"""
                    from webhooks.models import Delivery
                    out([[Event.objects.get(id=event_id).dispatched_at is not None,
                          list(Delivery.objects.filter(event_id=event_id).values_list("status", flat=True))]
                         for event_id in {event_ids!r}])
                    """,
                )
            )

        _kill(stack)
        # The batch runs in one transaction: the first event's sinks ran, but none of it was committed.
        assert outbox() == [[False, []]] * 3
        assert _webhook_ids(receiver) == []
        _restart_until(stack, "scaiwave.events.redispatch", lambda: set(_webhook_ids(receiver)) == set(event_ids),
                       what="every webhook")  # fmt: skip
        _settle(stack, "scaiwave.events.redispatch")
        assert sorted(_webhook_ids(receiver)) == sorted(event_ids)  # each event once, none twice
        assert outbox() == [[True, ["delivered"]]] * 3


# --- webhooks.sweep -------------------------------------------------------------------------------------------


def test_worker_sigkilled_between_the_webhook_sweeps_commit_and_its_queueing_sends_each_delivery_once(stack, django):
    """Two due deliveries were never queued (retries too far ahead for a countdown): only the sweep sends them."""
    point = "webhooks.sweep.marked_queued"
    with WebhookReceiver() as receiver:
        endpoint_id = _register_webhook(stack, receiver.url, "ingress_stopped")
        _kill(stack)
        delivery_ids = django(
            f"""
            from webhooks.models import Delivery
            from webhooks.services.deliveries import _payload
            ids = []
            for n in range(2):
                event = Event.objects.create(tenant=tenant, type="ingress_stopped", data={{"ingressId": f"IN_{{n}}"}},
                                             dispatched_at=timezone.now())
                payload = _payload(event_id=event.id, event_type=event.type, timestamp=event.created_at,
                                   data=event.data)
                ids.append(Delivery.objects.create(tenant=tenant, endpoint_id={endpoint_id!r}, event_id=event.id,
                                                   event_type=event.type, payload=payload,
                                                   next_attempt_at=timezone.now(), queued_at=None).pk)
            out(sorted(ids))
            """,
        )
        _halt_mid_run(stack, point)

        def deliveries() -> list[list[Any]]:
            """Per delivery: status, attempts, marked queued or not."""
            return list(
                django(
                    f"""
                    from webhooks.models import Delivery
                    out([[d.status, d.attempt_count, d.queued_at is not None]
                         for d in Delivery.objects.filter(pk__in={delivery_ids!r}).order_by("pk")])
                    """,
                )
            )

        _kill(stack)
        # Marked queued and committed, but no task reached the broker.
        assert deliveries() == [["pending", 0, True]] * 2
        # A sweep that finds messages waiting in the broker queues only rows never queued, and here beat's
        # one-second ticks often wait behind one another: the rows can wait several sweeps.
        _restart_until(stack, "webhooks.sweep", lambda: len(receiver.requests) >= 2, timeout=120,
                       what="both deliveries")  # fmt: skip
        _settle(stack, "webhooks.sweep", runs=4)  # past WEBHOOK_REQUEUE_AFTER (3 s) again
        assert len(receiver.requests) == 2 and len(set(_webhook_ids(receiver))) == 2, _webhook_ids(receiver)
        assert deliveries() == [["delivered", 1, True]] * 2


# --- calls.expire_ringing -------------------------------------------------------------------------------------


def test_worker_sigkilled_mid_ring_expiry_misses_each_call_once(stack, django):
    """Two rooms each have a call ringing past its time-out."""
    point = "calls.expire_ringing.expired"
    _kill(stack)
    call_ids = django(
        """
        from calls.models import Call
        from calls.services import call_initiate
        from rooms.services import member_set, room_create
        ids = []
        for name in ("kill-ring-a", "kill-ring-b"):
            room = room_create(tenant=tenant, name=name)
            caller, _ = member_set(room=room, external_id=f"caller-{name}", power_level=50)
            member_set(room=room, external_id=f"callee-{name}", power_level=0)
            ids.append(call_initiate(tenant=tenant, user=caller.user, room_name=name, type="audio").call.pk)
        # Both time out at once, in one statement.
        Call.objects.filter(pk__in=ids).update(ring_expires_at=timezone.now() - timedelta(seconds=1))
        out(ids)
        """,
    )
    _halt_mid_run(stack, point)

    def calls() -> list[list[Any]]:
        """Per call: status, reason, its ringing_cancelled, missed and ended events, its missed-call entries."""
        return list(
            django(
                f"""
                from calls.models import Call, TimelineEntry
                out([[call.status, call.end_reason,
                      events("swp.call.ringing_cancelled", call_id=call.pk), events("swp.call.missed", call_id=call.pk),
                      events("swp.call.ended", call_id=call.pk),
                      TimelineEntry.objects.filter(call=call, kind="missed_call").count()]
                     for call in (Call.objects.get(pk=pk) for pk in {call_ids!r})])
                """,
            )
        )

    _kill(stack)
    missed = ["missed", "ring_timeout", 1, 1, 1, 1]
    assert sorted(calls()) == sorted([missed, ["ringing", "", 0, 0, 0, 0]])  # one missed, one still ringing
    _restart_until(stack, "calls.expire_ringing", lambda: all(call[0] == "missed" for call in calls()),
                   what="both calls missed")  # fmt: skip
    _settle(stack, "calls.expire_ringing")
    assert calls() == [missed, missed]


# --- recordings.reconcile_egress ------------------------------------------------------------------------------


def test_worker_sigkilled_mid_egress_reconciliation_fails_each_lost_recording_once(stack, django):
    """Two rooms each have a recording whose egress LiveKit no longer knows (its egress_ended was lost)."""
    point = "recordings.reconcile_egress.applied"
    _kill(stack)
    recording_ids = django(
        """
        from recordings.models import Recording, RecordingEgress
        from rooms.services import room_create
        ids = []
        for name in ("kill-egress-a", "kill-egress-b"):
            room = room_create(tenant=tenant, name=name)
            recording = Recording.objects.create(tenant=tenant, room=room, status=Recording.Status.RECORDING,
                                                 livekit_room=room.livekit_name, storage_key=f"recordings/{name}",
                                                 started_at=timezone.now())
            RecordingEgress.objects.create(recording=recording, egress_id=f"EG_{name}",
                                           kind=RecordingEgress.Kind.ROOM_COMPOSITE,
                                           status=RecordingEgress.Status.ACTIVE,
                                           updated_at=timezone.now() - timedelta(hours=1))
            ids.append(recording.pk)
        out(ids)
        """,
    )
    _halt_mid_run(stack, point)

    def recordings() -> list[list[Any]]:
        """Per recording: status, reason, its egress's status, its recording_failed events."""
        return list(
            django(
                f"""
                from recordings.models import Recording
                out([[r.status, r.failure_reason, r.egresses.get().status,
                      events("recording_failed", recordingId=r.pk)]
                     for r in (Recording.objects.get(pk=pk) for pk in {recording_ids!r})])
                """,
            )
        )

    _kill(stack)
    failed = ["failed", "LiveKit no longer knows this egress", "failed", 1]
    assert sorted(recordings()) == sorted([failed, ["recording", "", "active", 0]])
    _restart_until(stack, "recordings.reconcile_egress", lambda: all(r[0] == "failed" for r in recordings()),
                   what="both recordings failed")  # fmt: skip
    _settle(stack, "recordings.reconcile_egress")
    assert recordings() == [failed, failed]


# --- recordings.sweep_media -----------------------------------------------------------------------------------


def test_worker_sigkilled_mid_media_sweep_removes_every_orphan_and_keeps_known_media(stack, django):
    """Two orphan objects (no row knows them), a registered file, and a row whose object has vanished."""
    point = "recordings.sweep_media.removed"
    _kill(stack)
    files = {name: _audio(stack, f"recordings/kill-sweep/{name}.ogg", seconds=1) for name in ("a", "b", "kept")}
    day_ago = time.time() - DAY
    for path in files.values():  # older than MEDIA_SWEEP_GRACE (6 h)
        os.utime(path, (day_ago, day_ago))
    entry_ids = django(
        """
        kept = media_entry("recordings/kill-sweep/kept.ogg", source="upload", age=timedelta(days=1))
        vanished = media_entry("recordings/kill-sweep/vanished.ogg", source="upload", age=timedelta(days=1))
        out([kept.pk, vanished.pk])
        """,
    )
    _halt_mid_run(stack, point, django=django, send="recordings.sweep_media")  # not waiting for beat's 10 s

    def entries() -> list[list[Any]]:
        """Per entry (kept, vanished): still there, and when it was flagged missing."""
        return list(
            django(
                f"""
                rows = [MediaEntry.objects.filter(pk=pk).first() for pk in {entry_ids!r}]
                out([[row is not None, str(row.missing_since or "") if row else ""] for row in rows])
                """,
            )
        )

    def orphans_left() -> int:
        return [files["a"].exists(), files["b"].exists()].count(True)

    _kill(stack)
    assert orphans_left() == 1  # one orphan removed, one not yet
    assert files["kept"].exists()
    assert entries() == [[True, ""], [True, ""]]  # the objects are swept before rows are flagged
    _restart_until(stack, "recordings.sweep_media", lambda: entries()[1][1] != "", what="the next sweep")
    flagged = entries()
    _settle(stack, "recordings.sweep_media", runs=1, django=django)
    assert orphans_left() == 0
    assert files["kept"].exists()  # nothing a row knows was removed
    assert entries() == flagged and flagged[0] == [True, ""]  # the vanished object's row is kept, flagged once


# --- transcription.recover_stuck ------------------------------------------------------------------------------


def test_worker_sigkilled_mid_stuck_transcription_sweep_recovers_each_job_once(stack, django):
    """Two post-call jobs lost their worker an hour ago: one has retries left, the other has spent them."""
    point = "transcription.recover_stuck.recovered"
    _kill(stack)
    for name in ("retry", "spent"):
        _audio(stack, f"recordings/kill-stuck-jobs/{name}.ogg")
    job_ids = django(
        """
        from recordings.models import Recording
        from rooms.services import room_create
        from transcription.models import Transcription
        room = room_create(tenant=tenant, name="kill-stuck-jobs")
        ids = []
        for name, attempts in (("retry", 1), ("spent", 3)):  # TRANSCRIPTION_MAX_RETRIES is 2
            recording = Recording.objects.create(tenant=tenant, room=room, status=Recording.Status.READY,
                                                 livekit_room=room.livekit_name,
                                                 storage_key="recordings/kill-stuck-jobs")
            media_entry(f"recordings/kill-stuck-jobs/{name}.ogg", source="egress", recording=recording)
            job = Transcription.objects.create(tenant=tenant, recording=recording, status="processing",
                                               attempts=attempts, model=settings.STT_MODEL,
                                               started_at=timezone.now() - timedelta(hours=1))
            ids.append(job.pk)
        out(ids)
        """,
    )
    _halt_mid_run(stack, point)

    def jobs() -> list[list[Any]]:
        """Per job: status, attempts, transcription_completed and transcription_failed events."""
        return list(
            django(
                f"""
                from transcription.models import Transcription
                out([[job.status, job.attempts, events("transcription_completed", transcriptionId=job.pk),
                      events("transcription_failed", transcriptionId=job.pk)]
                     for job in (Transcription.objects.get(pk=pk) for pk in {job_ids!r})])
                """,
            )
        )

    _kill(stack)
    assert jobs() == [["queued", 1, 0, 0], ["processing", 3, 0, 0]]  # the first taken back, the second still stuck
    _restart_until(stack, "transcription.recover_stuck", lambda: [job[0] for job in jobs()] == ["completed", "failed"],
                   timeout=90, what="the first job to complete and the second to fail")  # fmt: skip
    _settle(stack, "transcription.recover_stuck", runs=1)
    assert jobs() == [["completed", 2, 1, 0], ["failed", 3, 0, 1]]  # run once more, not twice; one event each


# --- analysis.recover_stuck -----------------------------------------------------------------------------------


def test_worker_sigkilled_mid_stuck_analysis_sweep_recovers_each_call_once(stack, django):
    """Two uploaded calls lost their worker an hour ago: one has attempts left, the other has spent them."""
    point = "analysis.recover_stuck.recovered"
    _kill(stack)
    for name in ("retry", "spent"):
        _audio(stack, f"recordings/uploads/kill-stuck-calls/{name}.ogg")
    call_ids = django(
        """
        from transcription.models import Transcription, UploadedCall
        owner, _ = TenantUser.objects.get_or_create(tenant=tenant, external_id="kill-uploader")
        lost = timezone.now() - timedelta(hours=1)
        ids = []
        for name, attempts in (("retry", 1), ("spent", 3)):  # ANALYSIS_MAX_ATTEMPTS is 3
            entry = media_entry(f"recordings/uploads/kill-stuck-calls/{name}.ogg", source="upload")
            job = Transcription.objects.create(tenant=tenant, media_entry=entry, model=settings.STT_MODEL)
            call = UploadedCall.objects.create(tenant=tenant, owner=owner, status="TRANSCRIBING", attempts=attempts,
                                               media_entry=entry, transcription=job, transcribing_since=lost,
                                               created_at=lost, updated_at=lost)
            ids.append(str(call.pk))
        out(ids)
        """,
    )
    _halt_mid_run(stack, point)

    def calls() -> list[list[Any]]:
        """Per call: status, attempts, analysis_completed and analysis_failed events, transcriptions of its file."""
        return list(
            django(
                f"""
                from transcription.models import Transcription, UploadedCall
                out([[call.status, call.attempts, events("analysis_completed", callId=str(call.pk)),
                      events("analysis_failed", callId=str(call.pk)),
                      Transcription.objects.filter(media_entry=call.media_entry).count()]
                     for call in (UploadedCall.objects.get(pk=pk) for pk in {call_ids!r})])
                """,
            )
        )

    _kill(stack)
    # Rows are taken in no set order: exactly one of the two was handled.
    assert calls() in (
        [["QUEUED", 1, 0, 0, 1], ["TRANSCRIBING", 3, 0, 0, 1]],
        [["TRANSCRIBING", 1, 0, 0, 1], ["FAILED", 3, 0, 1, 1]],
    ), calls()
    _restart_until(stack, "analysis.recover_stuck", lambda: [call[0] for call in calls()] == ["COMPLETED", "FAILED"],
                   timeout=90, what="the first call to complete and the second to fail")  # fmt: skip
    _settle(stack, "analysis.recover_stuck", runs=1)
    assert calls() == [["COMPLETED", 2, 1, 0, 1], ["FAILED", 3, 0, 1, 1]]


# --- analysis.enforce_retention -------------------------------------------------------------------------------


def test_worker_sigkilled_mid_retention_deletes_every_expired_call_and_keeps_the_rest(stack, django):
    """With 30 days' retention, two uploaded calls are older (41 and 40 days) and one is a day old."""
    point = "analysis.enforce_retention.deleted"
    names = ["old-b", "old-a", "recent"]  # in the order retention takes them: oldest first
    _kill(stack)
    files = {name: _audio(stack, f"recordings/uploads/kill-retention/{name}.ogg", seconds=1) for name in names}
    seeded = django(
        """
        from transcription.models import Transcription, UploadedCall
        Tenant.objects.filter(pk=tenant.pk).update(retention_days=30)
        owner, _ = TenantUser.objects.get_or_create(tenant=tenant, external_id="kill-retention")
        seeded = []
        for name, days in (("old-b", 41), ("old-a", 40), ("recent", 1)):
            entry = media_entry(f"recordings/uploads/kill-retention/{name}.ogg", source="upload")
            job = Transcription.objects.create(tenant=tenant, media_entry=entry, status="completed",
                                               model=settings.STT_MODEL)
            created = timezone.now() - timedelta(days=days)
            call = UploadedCall.objects.create(tenant=tenant, owner=owner, status="COMPLETED", media_entry=entry,
                                               transcription=job, created_at=created, updated_at=created,
                                               completed_at=created)
            seeded.append([str(call.pk), entry.pk, job.pk])
        out(seeded)
        """,
    )
    _halt_mid_run(stack, point, django=django, send="analysis.enforce_retention")

    def kept() -> list[list[bool]]:
        """Per call: its row, its media entry, its transcription and its object still exist."""
        rows = django(
            f"""
            from transcription.models import Transcription, UploadedCall
            out([[UploadedCall.objects.filter(pk=call).exists(), MediaEntry.objects.filter(pk=entry).exists(),
                  Transcription.objects.filter(pk=job).exists()]
                 for call, entry, job in {seeded!r}])
            """,
        )
        return [[*row, files[name].exists()] for name, row in zip(names, rows, strict=True)]

    _kill(stack)
    gone, there = [False] * 4, [True] * 4
    assert kept() == [gone, there, there]  # the oldest call deleted whole, the next one untouched
    # Beat's next run is sent by name, as beat sends it: ANALYSIS_RETENTION_SWEEP_INTERVAL is at least 60 s.
    _restart_until(stack, "analysis.enforce_retention", lambda: kept()[1] == gone,
                   kick=lambda: _send_task(django, "analysis.enforce_retention"),
                   what="the second expired call deleted")  # fmt: skip
    _settle(stack, "analysis.enforce_retention", runs=1, django=django)
    assert kept() == [gone, gone, there]  # both expired calls deleted whole; the recent call and its file kept


# --- calls.live_advance ---------------------------------------------------------------------------------------


def test_worker_sigkilled_mid_live_call_advance_starts_and_errors_each_call_once(stack, django, emulator):
    """A live call due a moment ago whose host is connected in LiveKit, and one two hours overdue."""
    point = "calls.live_advance.advanced"
    _kill(stack)
    seeded = django(
        """
        from calls.live_services import live_call_create
        from calls.models import LiveCall
        host, _ = TenantUser.objects.get_or_create(tenant=tenant, external_id="kill-host")
        now = timezone.now()
        due = live_call_create(tenant=tenant, host=host, title="due", scheduled_at=now - timedelta(seconds=5))
        overdue = live_call_create(tenant=tenant, host=host, title="overdue")
        # The advance takes them oldest first: the due call, then the overdue one (past LIVE_CALL_START_GRACE).
        LiveCall.objects.filter(pk=due.pk).update(created_at=now - timedelta(hours=3))
        LiveCall.objects.filter(pk=overdue.pk).update(created_at=now - timedelta(hours=2))
        out({"ids": [str(due.pk), str(overdue.pk)], "stream_call_id": due.stream_call_id})
        """,
    )
    emulator.control.connect(emulator.token("kill-host", seeded["stream_call_id"]))
    _halt_mid_run(stack, point)

    def live_calls() -> list[list[Any]]:
        """Per live call: status, Calls in its room, recordings of those, live_call.started/errored events."""
        return list(
            django(
                f"""
                from calls.models import Call, LiveCall
                from recordings.models import Recording
                out([[live.status, Call.objects.filter(room=live.room).count(),
                      Recording.objects.filter(call__room=live.room).count(),
                      events("live_call.started", id=str(live.pk)), events("live_call.errored", id=str(live.pk))]
                     for live in (LiveCall.objects.get(pk=pk) for pk in {seeded["ids"]!r})])
                """,
            )
        )

    _kill(stack)
    live = ["live", 1, 1, 1, 0]
    assert live_calls() == [live, ["scheduled", 0, 0, 0, 0]]  # the due call went live; the overdue one waits
    _restart_until(
        stack, "calls.live_advance", lambda: live_calls()[1][0] == "errored", what="the overdue call errored"
    )
    _settle(stack, "calls.live_advance")
    assert live_calls() == [live, ["errored", 0, 0, 0, 1]]
