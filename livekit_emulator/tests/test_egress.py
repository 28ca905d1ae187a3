"""Egress: real media files (local and S3), websocket PCM streaming, and the state machine."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
from livekit import api
from livekit.protocol import egress as eg
from livekit.protocol import room as rm

from livekit_emulator.testing import free_port, wait_until

from .conftest import lk

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

S = eg.EgressStatus


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name,codec_type",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def connect(emu, identity: str, room: str, **grants) -> None:
    emu.control.connect(emu.token(identity, room, **grants))


def track_gone(emu, room: str, identity: str) -> bool:
    for r in emu.control.state()["rooms"]:
        if r["name"] == room:
            return all(not p["tracks"] for p in r["participants"] if p["identity"] == identity)
    return True


def test_room_composite_writes_a_playable_mp4_as_long_as_the_published_audio(emu, sink):
    emu.control.config(speed=1.0)
    connect(emu, "alice", "design-review")
    # Publishing first and stopping on track_unpublished makes the recorded span the tone's length, give or take
    # the egress start latency (lost at the front) and the stop latency (added at the end).
    emu.control.publish("design-review", "alice", tone={"frequency": 440, "seconds": 2})
    started = lk(
        emu,
        lambda c: c.egress.start_room_composite_egress(
            eg.RoomCompositeEgressRequest(
                room_name="design-review",
                layout="speaker",
                file_outputs=[eg.EncodedFileOutput(filepath="recordings/{room_name}/{room_id}-{time}")],
            )
        ),
    )
    assert started.status == S.EGRESS_STARTING and started.egress_id.startswith("EG_")
    filename = started.file_results[0].filename
    assert filename.startswith("recordings/design-review/RM_") and filename.endswith(".mp4")
    emu.control.wait_for_egress(started.egress_id, ("EGRESS_ACTIVE",), timeout=5)
    assert emu.control.state()["rooms"][0]["active_recording"] is True

    wait_until(lambda: track_gone(emu, "design-review", "alice"), timeout=6, interval=0.02)
    stopping = lk(emu, lambda c: c.egress.stop_egress(eg.StopEgressRequest(egress_id=started.egress_id)))
    assert stopping.status == S.EGRESS_ENDING and stopping.details == "End reason: StopEgress API"

    done = emu.control.wait_for_egress(started.egress_id, timeout=20)
    assert done["status"] == "EGRESS_COMPLETE", done
    result = done["file_results"][0]
    path = Path(result["location"])
    assert path == (emu.output_dir / filename).resolve() and path.is_file()
    probe = ffprobe(path)
    assert {s["codec_name"] for s in probe["streams"]} == {"h264", "aac"}
    duration = float(probe["format"]["duration"])
    assert duration == pytest.approx(2.0, rel=0.10)
    assert int(result["size"]) == path.stat().st_size
    assert int(result["duration"]) == pytest.approx(duration * 1e9, rel=0.05)  # nanoseconds
    assert int(result["ended_at"]) > int(result["started_at"]) > 10**18  # unix ns

    events = sink.wait_for(lambda ev: "egress_ended" in [e["event"] for e in ev])
    egress_events = [e for e in events if e["event"].startswith("egress_")]
    assert [e["egressInfo"].get("status", "EGRESS_STARTING") for e in egress_events] == [
        "EGRESS_STARTING",
        "EGRESS_ACTIVE",
        "EGRESS_ENDING",
        "EGRESS_COMPLETE",
    ]


@pytest.fixture
def moto_s3():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="s3cr3t",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="recordings")
    yield endpoint, client
    server.stop()


def test_track_egress_uploads_an_ogg_to_s3_with_redacted_credentials(emu, moto_s3, tmp_path):
    endpoint, client = moto_s3
    connect(emu, "bob", "s3-room")
    # The tone starts 0.5 s (media) after publishing: the egress is running before its first sample.
    track = emu.control.publish("s3-room", "bob", tone={"frequency": 660, "seconds": 2}, delay_seconds=0.5)
    upload = eg.S3Upload(
        access_key="AKIATEST",
        secret="s3cr3t",
        region="us-east-1",
        endpoint=endpoint,
        bucket="recordings",
        force_path_style=True,
    )
    started = lk(
        emu,
        lambda c: c.egress.start_track_egress(
            eg.TrackEgressRequest(
                room_name="s3-room",
                track_id=track["sid"],
                file=eg.DirectFileOutput(filepath="tracks/{publisher_identity}/{track_id}.mp4", s3=upload),
            )
        ),
    )
    key = f"tracks/bob/{track['sid']}.ogg"
    assert started.file_results[0].filename == key  # wrong extension replaced
    assert started.track.file.s3.access_key == "{access_key}" and started.track.file.s3.secret == "{secret}"

    done = emu.control.wait_for_egress(started.egress_id, timeout=20)  # ends when the tone ends
    assert done["status"] == "EGRESS_COMPLETE", done
    assert done["details"] == "End reason: Source closed"
    assert done["file_results"][0]["location"] == f"{endpoint}/recordings/{key}"
    local = tmp_path / "track.ogg"
    client.download_file("recordings", key, str(local))
    probe = ffprobe(local)
    assert [s["codec_name"] for s in probe["streams"]] == ["opus"]
    assert float(probe["format"]["duration"]) == pytest.approx(2.0, rel=0.10)


class PcmReceiver:
    """A websocket server standing in for ScaiWave's live transcription ingest."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.audio = bytearray()
        self.texts: list[dict] = []
        self.closed = threading.Event()
        self.paths: list[str] = []

        def handler(connection) -> None:
            self.paths.append(connection.request.path)
            for message in connection:
                if isinstance(message, bytes):
                    self.audio.extend(message)
                else:
                    self.texts.append(json.loads(message))
            self.closed.set()

        self.port = free_port()
        self.server = serve(handler, "127.0.0.1", self.port, compression=None)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"ws://127.0.0.1:{self.port}/ingest?track=abc"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def pcm_receiver():
    receiver = PcmReceiver()
    yield receiver
    receiver.close()


def test_websocket_track_egress_streams_all_pcm_of_the_track(emu, pcm_receiver):
    connect(emu, "carol", "live")
    # Audio starts 1 s (media) after publishing, so the egress is listening before the first sample.
    track = emu.control.publish("live", "carol", tone={"frequency": 300, "seconds": 1.5}, delay_seconds=1.0)
    started = lk(
        emu,
        lambda c: c.egress.start_track_egress(
            eg.TrackEgressRequest(room_name="live", track_id=track["sid"], websocket_url=pcm_receiver.url)
        ),
    )
    assert pcm_receiver.closed.wait(10), "egress did not close the websocket"
    expected = 48000 * 2 * 1.5
    assert abs(len(pcm_receiver.audio) - expected) <= 1920  # within one 20 ms frame
    assert pcm_receiver.paths == ["/ingest?track=abc"]
    done = emu.control.wait_for_egress(started.egress_id, timeout=5)
    assert done["status"] == "EGRESS_COMPLETE"


def test_websocket_track_egress_sends_mute_events_as_text_frames(emu, pcm_receiver):
    connect(emu, "dave", "live2")
    track = emu.control.publish("live2", "dave", tone={"frequency": 300, "seconds": 4}, delay_seconds=0.4)
    lk(
        emu,
        lambda c: c.egress.start_track_egress(
            eg.TrackEgressRequest(room_name="live2", track_id=track["sid"], websocket_url=pcm_receiver.url)
        ),
    )
    wait_until(lambda: len(pcm_receiver.audio) > 0, timeout=5)
    emu.control.mute("live2", "dave", track["sid"], True)
    time.sleep(0.1)
    emu.control.mute("live2", "dave", track["sid"], False)
    assert pcm_receiver.closed.wait(10)
    assert pcm_receiver.texts == [{"muted": True}, {"muted": False}]
    assert len(pcm_receiver.audio) < 48000 * 2 * 4  # nothing is sent while muted


def start_composite(emu, room: str) -> eg.EgressInfo:
    return lk(
        emu,
        lambda c: c.egress.start_room_composite_egress(
            eg.RoomCompositeEgressRequest(
                room_name=room, audio_only=True, file_outputs=[eg.EncodedFileOutput(filepath="")]
            )
        ),
    )


def test_audio_only_composite_defaults_to_ogg_and_ends_when_the_room_closes(emu):
    connect(emu, "erin", "closing")
    started = start_composite(emu, "closing")
    assert started.file_results[0].filename.startswith("closing-") and started.file_results[0].filename.endswith(".ogg")
    emu.control.wait_for_egress(started.egress_id, ("EGRESS_ACTIVE",), timeout=5)
    lk(emu, lambda c: c.room.delete_room(rm.DeleteRoomRequest(room="closing")))
    done = emu.control.wait_for_egress(started.egress_id, timeout=20)
    assert (done["status"], done["details"]) == ("EGRESS_COMPLETE", "End reason: Source closed")
    listed = lk(emu, lambda c: c.egress.list_egress(eg.ListEgressRequest(room_name="closing")))
    assert [i.egress_id for i in listed.items] == [started.egress_id]  # ended egress stays listable
    active = lk(emu, lambda c: c.egress.list_egress(eg.ListEgressRequest(active=True)))
    assert list(active.items) == []


def test_stop_while_starting_aborts_and_stopping_again_is_412(emu):
    emu.control.config(egress_start_delay=5)
    connect(emu, "fay", "abort")
    started = start_composite(emu, "abort")
    stopped = lk(emu, lambda c: c.egress.stop_egress(eg.StopEgressRequest(egress_id=started.egress_id)))
    assert (stopped.status, stopped.error, stopped.error_code) == (
        S.EGRESS_ABORTED,
        "Stop called before pipeline could start",
        412,
    )
    with pytest.raises(api.TwirpError) as again:
        lk(emu, lambda c: c.egress.stop_egress(eg.StopEgressRequest(egress_id=started.egress_id)))
    assert (again.value.code, again.value.status) == ("failed_precondition", 412)
    assert again.value.message == "egress with status EGRESS_ABORTED cannot be stopped"
    with pytest.raises(api.TwirpError) as unknown:
        lk(emu, lambda c: c.egress.stop_egress(eg.StopEgressRequest(egress_id="EG_doesnotexist")))
    assert (unknown.value.code, unknown.value.status) == ("not_found", 404)


def test_egress_for_an_unknown_room_is_not_found(emu):
    with pytest.raises(api.TwirpError) as error:
        start_composite(emu, "ghost")
    assert (error.value.code, error.value.message) == ("not_found", "requested room does not exist")


def test_egress_fail_and_storage_fail_switches_end_egress_failed(emu):
    connect(emu, "gus", "faulty")
    emu.control.faults(egress_fail=True)
    failed = start_composite(emu, "faulty")
    info = emu.control.wait_for_egress(failed.egress_id, timeout=5)
    assert info["status"] == "EGRESS_FAILED" and "egress_fail" in info["error"]

    emu.control.faults(egress_fail=False, storage_fail=True)
    upload = start_composite(emu, "faulty")
    emu.control.wait_for_egress(upload.egress_id, ("EGRESS_ACTIVE",), timeout=5)
    lk(emu, lambda c: c.egress.stop_egress(eg.StopEgressRequest(egress_id=upload.egress_id)))
    info = emu.control.wait_for_egress(upload.egress_id, timeout=20)
    assert info["status"] == "EGRESS_FAILED" and "upload" in info["error"]


def test_forced_limit_and_forced_failure_end_states(emu):
    connect(emu, "hal", "limits")
    limited = start_composite(emu, "limits")
    emu.control.wait_for_egress(limited.egress_id, ("EGRESS_ACTIVE",), timeout=5)
    emu.control.egress_limit(limited.egress_id)
    info = emu.control.wait_for_egress(limited.egress_id, timeout=20)
    assert (info["status"], info["error"], info["error_code"]) == ("EGRESS_LIMIT_REACHED", "Session limit reached", 413)
    assert int(info["file_results"][0]["size"]) > 0

    failing = start_composite(emu, "limits")
    emu.control.wait_for_egress(failing.egress_id, ("EGRESS_ACTIVE",), timeout=5)
    emu.control.egress_fail(failing.egress_id, "encoder crashed")
    info = emu.control.wait_for_egress(failing.egress_id, timeout=5)
    assert (info["status"], info["error"]) == ("EGRESS_FAILED", "encoder crashed")


def test_update_layout_changes_the_stored_request(emu):
    connect(emu, "ivy", "layout")
    started = lk(
        emu,
        lambda c: c.egress.start_room_composite_egress(
            eg.RoomCompositeEgressRequest(
                room_name="layout", layout="grid", file_outputs=[eg.EncodedFileOutput(filepath="x.mp4")]
            )
        ),
    )
    updated = lk(
        emu, lambda c: c.egress.update_layout(eg.UpdateLayoutRequest(egress_id=started.egress_id, layout="speaker"))
    )
    assert updated.room_composite.layout == "speaker"
    lk(emu, lambda c: c.egress.stop_egress(eg.StopEgressRequest(egress_id=started.egress_id)))


def test_participant_and_track_composite_egress_record_their_sources(emu):
    connect(emu, "jo", "multi")
    track = emu.control.publish("multi", "jo", tone={"frequency": 500, "seconds": 1})
    participant = lk(
        emu,
        lambda c: c.egress.start_participant_egress(
            eg.ParticipantEgressRequest(
                room_name="multi", identity="jo", file_outputs=[eg.EncodedFileOutput(file_type=eg.OGG, filepath="p")]
            )
        ),
    )
    composite = lk(
        emu,
        lambda c: c.egress.start_track_composite_egress(
            eg.TrackCompositeEgressRequest(
                room_name="multi", audio_track_id=track["sid"], file_outputs=[eg.EncodedFileOutput(filepath="tc")]
            )
        ),
    )
    assert participant.file_results[0].filename == "p.ogg" and composite.file_results[0].filename == "tc.ogg"
    emu.control.wait_for_egress(composite.egress_id, timeout=20)
    emu.control.disconnect("multi", "jo")
    for egress_id in (participant.egress_id, composite.egress_id):
        assert emu.control.wait_for_egress(egress_id, timeout=20)["status"] == "EGRESS_COMPLETE"
