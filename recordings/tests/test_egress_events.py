"""Applying LiveKit's EgressInfo: duplicates and late deliveries change nothing, foreign egress is ignored."""

from __future__ import annotations

import pytest
from livekit.protocol import egress as lk_egress
from livekit.protocol import webhook as lk_webhook

from recordings import services
from recordings.models import Recording, RecordingEgress
from scaiwave.models import Event

pytestmark = pytest.mark.django_db

S = lk_egress.EgressStatus


@pytest.fixture
def recording(acme, standup, livekit) -> Recording:
    livekit.control.connect(livekit.token("alice", standup.livekit_name, can_publish=True))
    recording, created = services.recording_start(room=standup, requested_by=None)
    assert created
    return recording


def info(recording: Recording, status: lk_egress.EgressStatus, **fields) -> lk_egress.EgressInfo:
    egress = recording.egresses.get(kind=RecordingEgress.Kind.ROOM_COMPOSITE)
    return lk_egress.EgressInfo(egress_id=egress.egress_id, room_name=recording.livekit_room, status=status, **fields)


def event(egress_info: lk_egress.EgressInfo, name: str = "egress_updated") -> lk_webhook.WebhookEvent:
    return lk_webhook.WebhookEvent(event=name, egress_info=egress_info, id="EV_test")


def test_active_then_ending_moves_the_recording_forward_once(acme, recording):
    services.recording_apply_livekit_event(event(info(recording, S.EGRESS_ACTIVE)))
    services.recording_apply_livekit_event(event(info(recording, S.EGRESS_ACTIVE)))
    recording.refresh_from_db()
    assert recording.status == Recording.Status.RECORDING and recording.started_at is not None

    services.recording_apply_livekit_event(event(info(recording, S.EGRESS_ENDING)))
    services.recording_apply_livekit_event(event(info(recording, S.EGRESS_ENDING)))
    recording.refresh_from_db()
    assert recording.status == Recording.Status.STOPPING
    assert Event.objects.filter(type="recording_stopped").count() == 1


def test_a_late_active_after_ending_is_ignored(recording):
    services.recording_apply_livekit_event(event(info(recording, S.EGRESS_ENDING)))
    services.recording_apply_livekit_event(event(info(recording, S.EGRESS_ACTIVE)))

    recording.refresh_from_db()
    assert recording.status == Recording.Status.STOPPING
    assert recording.egresses.get().status == RecordingEgress.Status.ENDING


def test_a_duplicated_failure_is_reported_once(recording):
    failed = info(recording, S.EGRESS_FAILED, error="encoder crashed")
    services.recording_apply_livekit_event(event(failed, "egress_ended"))
    services.recording_apply_livekit_event(event(failed, "egress_ended"))

    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED and recording.failure_reason == "encoder crashed"
    assert Event.objects.filter(type="recording_failed").count() == 1


def test_an_egress_that_is_not_ours_and_other_events_are_ignored(recording):
    stranger = lk_egress.EgressInfo(egress_id="EG_notoursnotou", status=S.EGRESS_FAILED, error="x")
    services.recording_apply_livekit_event(event(stranger, "egress_ended"))
    services.recording_apply_livekit_event(lk_webhook.WebhookEvent(event="participant_joined", id="EV_p"))

    recording.refresh_from_db()
    assert recording.status == Recording.Status.STARTING


def test_a_completed_egress_whose_file_is_not_in_storage_fails_the_recording(acme, recording, local_storage):
    done = info(recording, S.EGRESS_COMPLETE, file_results=[lk_egress.FileInfo(filename=recording.storage_key, size=9)])
    services.recording_apply_livekit_event(event(done, "egress_ended"))
    assert Recording.objects.get(pk=recording.pk).status == Recording.Status.PROCESSING

    services.recording_register_file(recording_id=recording.pk)

    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert recording.failure_reason == f"the egress file {recording.storage_key} is not in storage"
    assert Event.objects.filter(type="recording_failed", data__reason=recording.failure_reason).exists()


def test_a_completed_egress_whose_file_is_not_media_fails_the_recording(acme, recording, local_storage):
    target = local_storage / recording.storage_key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"this is not an mp4")
    done = info(recording, S.EGRESS_COMPLETE, file_results=[lk_egress.FileInfo(filename=recording.storage_key)])
    services.recording_apply_livekit_event(event(done, "egress_ended"))

    services.recording_register_file(recording_id=recording.pk)

    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert recording.failure_reason.endswith("is not readable media")


def test_a_microphone_published_during_a_transcript_recording_gets_its_own_track_egress(acme, standup, livekit):
    from livekit.protocol import models as lk_models

    livekit.control.connect(livekit.token("alice", standup.livekit_name, can_publish=True))
    recording, _ = services.recording_start(room=standup, requested_by=None, transcript=True)
    assert not recording.egresses.filter(kind=RecordingEgress.Kind.TRACK_AUDIO).exists()  # nobody talked yet
    published = livekit.control.publish(standup.livekit_name, "alice", tone={"frequency": 440, "seconds": 5})
    published_event = lk_webhook.WebhookEvent(
        event="track_published",
        id="EV_track",
        room=lk_models.Room(name=standup.livekit_name),
        participant=lk_models.ParticipantInfo(identity="alice"),
        track=lk_models.TrackInfo(sid=published["sid"], type=lk_models.TrackType.AUDIO),
    )

    services.recording_apply_livekit_event(published_event)
    services.recording_apply_livekit_event(published_event)  # a repeated webhook

    [track] = recording.egresses.filter(kind=RecordingEgress.Kind.TRACK_AUDIO)
    assert track.track_sid == published["sid"] and track.participant_identity == "alice"
    assert livekit.control.egress(track.egress_id)["track"]["track_id"] == published["sid"]


# --- File keys: only the path ScaiWave asked the egress to write ------------------------------------


def _other_tenants_file(globex, local_storage) -> str:
    """A recording of another tenant, in storage and registered."""
    import subprocess

    from recordings.models import MediaEntry

    key = "recordings/globex-board/20261201T090000000Z.mp4"
    target = local_storage / key
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(target)],
        check=True, timeout=60,
    )  # fmt: skip
    MediaEntry.objects.create(
        tenant=globex.tenant, key=key, content_type="video/mp4", size=9, sha256="0" * 64, source="egress"
    )
    return key


def test_an_egress_ended_naming_another_tenants_file_fails_the_recording_and_binds_nothing(
    acme, globex, recording, local_storage
):
    foreign = _other_tenants_file(globex, local_storage)
    forged = info(recording, S.EGRESS_COMPLETE, file_results=[lk_egress.FileInfo(filename=foreign, size=9)])

    services.recording_apply_livekit_event(event(forged, "egress_ended"))

    recording.refresh_from_db()
    egress = recording.egresses.get()
    assert recording.status == Recording.Status.FAILED
    assert foreign in recording.failure_reason and "not the path this egress was asked to write" in (
        recording.failure_reason
    )
    assert egress.status == RecordingEgress.Status.FAILED and egress.file_key in ("", recording.storage_key)
    assert not recording.media_entries.exists()
    assert Event.objects.filter(type="recording_failed", data__recordingId=recording.pk).count() == 1
    services.recording_delete(recording=recording, actor="server")  # a finished recording can be deleted again


@pytest.mark.parametrize(
    "suffix",
    ["/../../globex-board/20261201T090000000Z.mp4", "-other.mp4", ".mp4/x.mp4", ""],
)
def test_a_file_key_is_accepted_only_as_the_asked_path_with_an_extension(recording, local_storage, suffix):
    stem = recording.storage_key.rsplit(".", 1)[0]
    forged = info(recording, S.EGRESS_COMPLETE, file_results=[lk_egress.FileInfo(filename=stem + suffix)])

    services.recording_apply_livekit_event(event(forged, "egress_ended"))

    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert recording.egresses.get().file_key in ("", recording.storage_key)  # as LiveKit answered the start


def test_livekit_may_change_the_extension_of_the_asked_path(recording, local_storage):
    stem = recording.storage_key.rsplit(".", 1)[0]
    done = info(recording, S.EGRESS_COMPLETE, file_results=[lk_egress.FileInfo(filename=f"{stem}.webm")])

    services.recording_apply_livekit_event(event(done, "egress_ended"))

    recording.refresh_from_db()
    assert recording.status == Recording.Status.PROCESSING
    assert recording.egresses.get().file_key == f"{stem}.webm"


def test_a_recording_holding_an_already_registered_key_fails_once_and_reconcile_does_not_loop(
    acme, globex, recording, local_storage
):
    # A row stored before keys were checked: the egress completed with another tenant's (registered) key.
    foreign = _other_tenants_file(globex, local_storage)
    RecordingEgress.objects.filter(recording=recording).update(status=RecordingEgress.Status.COMPLETE, file_key=foreign)
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.PROCESSING, stopped_at=recording.created_at
    )

    services.recording_register_file(recording_id=recording.pk)
    services.recordings_reconcile_egress(older_than_seconds=0)
    services.recording_register_file(recording_id=recording.pk)

    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED and foreign in recording.failure_reason
    assert not recording.media_entries.exists()
    assert Event.objects.filter(type="recording_failed", data__recordingId=recording.pk).count() == 1
