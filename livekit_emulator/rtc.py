"""WebRTC media for the emulated SFU, on aiortc: PeerConnections, encoded-frame forwarding, ICE addresses.

An SFU forwards what a publisher sends; it does not decode and re-encode it per subscriber. aiortc's receiver always
hands its jitter buffer's frames to a decoder, so the emulator installs a decoder that decodes nothing: for Opus and
VP8 it returns the encoded frame as an ``av.Packet``. aiortc's sender packetizes an ``av.Packet`` without encoding
(``Encoder.pack``), so the same encoded frame goes to every subscriber: no decode, no encode on the forwarding path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import aioice.ice
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    rtcrtpreceiver,
)
from aiortc.codecs import get_decoder as _aiortc_get_decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import candidate_from_sdp

log = logging.getLogger("livekit_emulator")

FORWARDED_MIME_TYPES = ("audio/opus", "video/vp8")
PCM_RATE = 48_000
# Frames a slow subscriber may lag behind before the oldest are dropped (about 1 s of 20 ms audio).
FORWARD_QUEUE_DEPTH = 50


class EncodedFramePassthrough:
    """A stand-in decoder that hands the encoded frame on as an ``av.Packet`` stamped with its RTP time."""

    def __init__(self, clock_rate: int) -> None:
        self.time_base = Fraction(1, clock_rate)

    def decode(self, encoded_frame: JitterFrame) -> list[av.Packet]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        return [packet]


def _get_decoder(codec: RTCRtpCodecParameters) -> Any:
    if codec.mimeType.lower() in FORWARDED_MIME_TYPES:
        return EncodedFramePassthrough(codec.clockRate)
    return _aiortc_get_decoder(codec)


def _forwarding_jitter_buffer(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    # aiortc holds 4 audio frames back before it plays them (prefetch=4): 80 ms a forwarding server has no use for,
    # since every subscriber's own jitter buffer smooths the stream. A frame leaves as soon as it is complete.
    return JitterBuffer(capacity, prefetch=0, is_video=is_video)


# aiortc has no public switch for these: its receiver module looks them up by these names.
rtcrtpreceiver.get_decoder = _get_decoder
rtcrtpreceiver.JitterBuffer = _forwarding_jitter_buffer  # type: ignore[misc,assignment]

_ORIGINAL_HOST_ADDRESSES = aioice.ice.get_host_addresses
_ice_addresses: list[str] = []


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _ice_addresses:
        return [a for a in _ice_addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]
    # aioice leaves loopback out; a machine whose only interface is loopback (CI) still needs a candidate.
    addresses = _ORIGINAL_HOST_ADDRESSES(use_ipv4, use_ipv6)
    return (["127.0.0.1"] if use_ipv4 else []) + addresses


def configure_ice_addresses(addresses: list[str]) -> None:
    """Offer ICE host candidates on ``addresses`` only (empty: every interface, loopback included)."""
    _ice_addresses[:] = addresses


aioice.ice.get_host_addresses = _host_addresses


def new_peer_connection() -> RTCPeerConnection:
    # No STUN/TURN: aiortc's default would ask a public STUN server, which a laptop or CI box need not reach.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def parse_candidate(candidate_init: str) -> RTCIceCandidate | None:
    """The aiortc candidate for a client's ``TrickleRequest.candidateInit`` (RTCIceCandidateInit JSON)."""
    try:
        init = json.loads(candidate_init)
    except ValueError:
        return None
    line = str(init.get("candidate") or "")
    if not line:
        return None  # end-of-candidates
    if line.startswith("candidate:"):
        line = line[len("candidate:") :]
    try:
        candidate = candidate_from_sdp(line)
    except (ValueError, IndexError):
        return None
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    return candidate


class ForwardedTrack(MediaStreamTrack):
    """One subscriber's copy of a published track: encoded frames queued by the publisher's pump."""

    def __init__(self, kind: str, track_sid: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_sid  # the msid track id both SDKs read the track sid from
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()

    def push(self, packet: av.Packet | None) -> None:
        if self._queue.qsize() >= FORWARD_QUEUE_DEPTH:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet


class TrackForwarder:
    """Reads a publisher's encoded frames once and copies them to every subscriber's ForwardedTrack."""

    def __init__(self, source: MediaStreamTrack, *, is_muted: Callable[[], bool]) -> None:
        self.source = source
        self.kind = source.kind
        self.is_muted = is_muted
        self.outputs: dict[str, ForwardedTrack] = {}
        self.frames = 0
        self.on_packet: list[Callable[[av.Packet], None]] = []

    def add_output(self, subscriber_sid: str, track_sid: str) -> ForwardedTrack:
        output = ForwardedTrack(self.source.kind, track_sid)
        self.outputs[subscriber_sid] = output
        return output

    def remove_output(self, subscriber_sid: str) -> None:
        output = self.outputs.pop(subscriber_sid, None)
        if output is not None:
            output.push(None)

    async def run(self) -> None:
        try:
            while True:
                try:
                    packet = await self.source.recv()
                except MediaStreamError:
                    break
                if not isinstance(packet, av.Packet):
                    continue  # a codec the emulator does not forward (decoded by aiortc)
                self.frames += 1
                # MutePublishedTrack stops forwarding at once, whatever the publisher still sends.
                if self.is_muted():
                    continue
                for listener in self.on_packet:
                    listener(packet)
                for output in list(self.outputs.values()):
                    output.push(packet)
        finally:
            for subscriber_sid in list(self.outputs):
                self.remove_output(subscriber_sid)


class PcmRecorder:
    """Decodes a published Opus track once, into s16le 48 kHz mono PCM on the track's own timeline, for egress.

    Samples land at their RTP timestamp's place, so silence the publisher did not send (DTX, mute, loss) is a run of
    zeros and the file stays in step with the clock. ``on_length`` hears the PCM's length in seconds after each write.
    """

    def __init__(self, path: Path, *, since_start: Callable[[], float], on_length: Callable[[float], None]) -> None:
        self.path = path
        self.file = path.open("wb")
        self.decoder = av.CodecContext.create("libopus", "r")
        self.decoder.format = "s16"
        self.decoder.layout = "mono"
        self.decoder.sample_rate = PCM_RATE
        self.since_start = since_start
        self.offset = 0
        self.first_pts: int | None = None
        self.end = 0
        self.on_length = on_length

    def write(self, packet: av.Packet) -> None:
        if self.file.closed or packet.pts is None:
            return
        if self.first_pts is None:
            # The first packet is placed by its arrival; every later one by its RTP time relative to the first.
            self.first_pts = packet.pts
            self.offset = max(0, round(self.since_start() * PCM_RATE))
        # RTP timestamps are 32-bit and wrap: take the distance modulo 2**32.
        position = self.offset + (packet.pts - self.first_pts) % (1 << 32)
        try:
            frames = self.decoder.decode(av.Packet(bytes(packet)))
        except av.FFmpegError:
            return
        for frame in frames:
            data = frame.to_ndarray().astype("<i2").tobytes()
            self.file.seek(position * 2)
            self.file.write(data)
            position += frame.samples
            self.end = max(self.end, position)
        self.file.flush()
        self.on_length(self.end / PCM_RATE)

    def close(self) -> None:
        self.file.close()


def codec_preferences(kind: str) -> list[Any]:
    """Codec preferences that make a subscriber negotiate exactly the codec the publisher's frames are in."""
    wanted = "audio/opus" if kind == "audio" else "video/vp8"
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() == wanted]


async def apply_description(pc: RTCPeerConnection, sdp: str, kind: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
