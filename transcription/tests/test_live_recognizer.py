"""The live recognizer: a track's PCM becomes final (and partial) segments; falling behind is said, not hidden."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import LazySettings

from rooms.models import Room
from transcription.live.recognizer import Dropped, Heard, LiveRecognizer, TrackStream
from transcription.live.services import live_dropped
from transcription.models import Transcription
from transcription.tests.conftest import espeak, normalise
from transcription.tests.live_audio import frames, pcm48k, silence48k


@pytest.fixture(scope="module")
def two_sentences(speech_dir: Path) -> bytes:
    first = pcm48k(espeak(speech_dir / "live-first.wav", "The weather is sunny and warm today."))
    second = pcm48k(espeak(speech_dir / "live-second.wav", "Good morning everyone, the release is ready."))
    return silence48k(0.5) + first + silence48k(1.0) + second + silence48k(1.0)


def _collect(stream_kwargs: dict, pcm: bytes) -> tuple[list[Heard], list[Dropped], TrackStream]:
    heard: list[Heard] = []
    dropped: list[Dropped] = []
    stream = TrackStream(
        track_sid="TR_test",
        language="en",
        on_heard=heard.append,
        on_drop=dropped.append,
        recognizer=LiveRecognizer(),
        **stream_kwargs,
    )
    for frame in frames(pcm):
        stream.feed(frame)
    stream.flush()
    stream.wait(timeout=60)
    return heard, dropped, stream


def test_each_pause_ends_a_final_segment_on_the_session_clock(stt_engine, two_sentences: bytes) -> None:
    heard, dropped, _ = _collect({"offset": 10.0}, two_sentences)

    finals = [h for h in heard if h.final]
    assert dropped == []
    assert len(finals) == 2
    assert "weather is sunny and warm today" in normalise(finals[0].text)
    assert "the release is ready" in normalise(finals[1].text)
    # Times are offset + position in the stream: the first sentence starts about 1 s in (0.5 s + espeak's pad).
    assert 10.3 <= finals[0].start <= 11.3
    assert finals[1].start > finals[0].end
    assert [h.utterance_id for h in finals] == ["TR_test-0", "TR_test-1"]


def test_partial_results_arrive_before_the_final_one_of_the_same_utterance(
    stt_engine, settings: LazySettings, two_sentences: bytes
) -> None:
    settings.TRANSCRIPTION_LIVE_PARTIAL_INTERVAL = 0.5
    heard: list[Heard] = []
    done = threading.Event()

    def on_heard(item: Heard) -> None:
        heard.append(item)

    stream = TrackStream(
        track_sid="TR_p",
        language="en",
        offset=0.0,
        on_heard=on_heard,
        on_drop=lambda d: None,
        partial_results=True,
        recognizer=LiveRecognizer(),
    )
    for frame in frames(two_sentences):
        stream.feed(frame)
        done.wait(0.005)  # paced like a live stream at 4x: 20 ms of audio every 5 ms
    stream.flush()
    stream.wait(timeout=60)
    marker = stream.recognizer.submit(lambda: None, seconds=0)
    assert marker is not None
    marker.result(timeout=60)  # partials queued before the end have run

    partials = [h for h in heard if not h.final]
    assert partials, "no partial result"
    first_final = next(i for i, h in enumerate(heard) if h.final)
    assert any(not h.final and h.utterance_id == heard[first_final].utterance_id for h in heard[:first_final])


def test_when_the_recognizer_falls_behind_utterances_are_dropped_and_reported(
    settings: LazySettings, two_sentences: bytes
) -> None:
    settings.TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS = 1.0
    recognizer = LiveRecognizer()
    release = threading.Event()

    def stuck() -> None:  # the recognizer is busy with something long
        release.wait(30)

    busy = recognizer.submit(stuck, seconds=0)
    assert busy is not None
    dropped: list[Dropped] = []
    heard: list[Heard] = []
    stream = TrackStream(
        track_sid="TR_slow",
        language="en",
        offset=0.0,
        on_heard=heard.append,
        on_drop=dropped.append,
        recognizer=recognizer,
        model="tiny.en",
    )
    for frame in frames(two_sentences):
        stream.feed(frame)
    stream.flush()

    # The first utterance queues (nothing was waiting); the second would exceed the 1 s limit: dropped, said.
    assert [d.utterance_id for d in dropped] == ["TR_slow-1"]
    assert dropped[0].seconds > 1.0 and dropped[0].backlog_seconds > 1.0
    release.set()


@pytest.mark.django_db
def test_a_drop_marks_the_session_degraded_with_the_reason_and_tells_the_room(acme, settings) -> None:
    from scaiwave.models import Event

    room = Room.objects.create(tenant=acme.tenant, name="standup", livekit_name="x")
    session = Transcription.objects.create(tenant=acme.tenant, mode="live", room=room, status="active", health="ok")

    live_dropped(
        transcription_id=session.pk,
        track_sid="TR_a",
        identity="alice",
        dropped=Dropped(utterance_id="TR_a-3", seconds=2.4, backlog_seconds=8.7),
    )

    session.refresh_from_db()
    assert session.health == "degraded"
    assert "dropped 2.4 s of speech from track TR_a (alice)" in session.health_detail
    assert "behind by 8.7 s" in session.health_detail
    event = Event.objects.get(type="transcription.health")
    assert event.room_key == str(session.room_id) and event.data["health"] == "degraded"


def test_utterances_of_several_speakers_waiting_together_are_decoded_in_one_window_and_split_back(
    stt_engine, speech_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transcription.live import recognizer as recognizer_module

    packed_calls: list[int] = []
    original = recognizer_module.live_decode_packed

    def counting(engine, pieces, *, language):
        packed_calls.append(len(pieces))
        return original(engine, pieces, language=language)

    monkeypatch.setattr(recognizer_module, "live_decode_packed", counting)
    recognizer = LiveRecognizer()
    release = threading.Event()

    def stuck() -> None:  # the recognizer is busy while both speakers finish
        release.wait(30)

    busy = recognizer.submit(stuck, seconds=0)
    assert busy is not None

    sentences = {
        "TR_alice": "The weather is sunny and warm today.",
        "TR_bob": "Good morning everyone, the release is ready.",
    }
    heard: dict[str, list[Heard]] = {sid: [] for sid in sentences}
    streams = []
    for sid, sentence in sentences.items():
        pcm = silence48k(0.5) + pcm48k(espeak(speech_dir / f"pack-{sid}.wav", sentence)) + silence48k(1.0)
        stream = TrackStream(
            track_sid=sid,
            language="en",
            offset=100.0,
            on_heard=heard[sid].append,
            on_drop=lambda d: None,
            recognizer=recognizer,
        )
        for frame in frames(pcm):
            stream.feed(frame)
        stream.flush()
        streams.append(stream)
    release.set()  # both utterances now wait together
    for stream in streams:
        stream.wait(timeout=60)

    assert packed_calls == [2]
    alice, bob = (normalise(" ".join(h.text for h in heard[sid])) for sid in sentences)
    # Each speaker gets their own words and none of the other's.
    assert "sunny and warm today" in alice and not {"morning", "release", "ready"} & set(alice.split())
    assert "the release is ready" in bob and not {"sunny", "warm", "today"} & set(bob.split())
    for sid in sentences:
        (final,) = heard[sid]
        assert final.final and final.utterance_id == f"{sid}-0"
        # Each utterance keeps its own clock: it started about 0.5 s (+ espeak's lead-in) into its stream.
        assert 100.0 <= final.start < final.end <= 100.0 + 6.0
