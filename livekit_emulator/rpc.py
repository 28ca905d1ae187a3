"""Twirp RPC handlers for RoomService, Egress and Ingress, with the server's grant check per RPC (livekit.md §1.4)."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.message import Message
from livekit.protocol import egress as eg
from livekit.protocol import ingress as ig
from livekit.protocol import models
from livekit.protocol import room as rm

from .auth import Grants
from .core import Emulator, Participant, Room
from .twirp import Rpc, TwirpError, failed_precondition, invalid_argument, not_found, permission_denied

MAX_NAME = 256
MAX_METADATA = 512 * 1024
MAX_ATTRIBUTES = 64 * 1024


def _require(ok: bool) -> None:
    if not ok:
        raise permission_denied()


def _create(grants: Grants | None) -> None:
    _require(grants is not None and grants.can_create())


def _list(grants: Grants | None) -> None:
    _require(grants is not None and grants.can_list())


def _admin(grants: Grants | None, room: str) -> None:
    _require(grants is not None and grants.can_admin(room))


def _record(grants: Grants | None) -> None:
    _require(grants is not None and grants.can_record())


def _ingress(grants: Grants | None) -> None:
    _require(grants is not None and grants.can_ingress())


def _check_metadata(metadata: str) -> None:
    if len(metadata.encode()) > MAX_METADATA:
        raise invalid_argument("metadata size exceeds limits", "metadata")


class RoomServiceRpc:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def _room(self, name: str) -> Room:
        room = self.emulator.room_get(name)
        if room is None:
            raise not_found("requested room does not exist")
        return room

    def _participant(self, room_name: str, identity: str) -> tuple[Room, Participant]:
        room = self.emulator.room_get(room_name)
        participant = room.participants.get(identity) if room is not None else None
        if room is None or participant is None:
            raise not_found("participant does not exist")
        return room, participant

    async def create_room(self, grants: Grants | None, request: rm.CreateRoomRequest) -> Message:
        _create(grants)
        if len(request.name) > MAX_NAME:
            raise invalid_argument("room name length exceeds limits", "name")
        if not request.name:
            raise invalid_argument("room name is required", "name")
        _check_metadata(request.metadata)
        room, created = self.emulator.room_create(
            request.name,
            empty_timeout=request.empty_timeout,
            departure_timeout=request.departure_timeout,
            max_participants=request.max_participants,
            metadata=request.metadata,
        )
        if created and request.HasField("egress") and request.egress.HasField("room"):
            auto = eg.RoomCompositeEgressRequest()
            auto.CopyFrom(request.egress.room)
            auto.room_name = room.name
            self.emulator.egress.start_room_composite(auto)
        return room.to_proto()

    async def list_rooms(self, grants: Grants | None, request: rm.ListRoomsRequest) -> Message:
        _list(grants)
        rooms = self.emulator.all_rooms()
        if request.names:
            wanted = set(request.names)
            rooms = [r for r in rooms if r.name in wanted]
        return rm.ListRoomsResponse(rooms=[r.to_proto() for r in rooms])

    async def delete_room(self, grants: Grants | None, request: rm.DeleteRoomRequest) -> Message:
        _create(grants)
        room = self._room(request.room)
        self.emulator.room_close(room, models.DisconnectReason.ROOM_DELETED)
        return rm.DeleteRoomResponse()

    async def list_participants(self, grants: Grants | None, request: rm.ListParticipantsRequest) -> Message:
        _admin(grants, request.room)
        room = self.emulator.room_get(request.room)
        participants = list(room.participants.values()) if room is not None else []
        return rm.ListParticipantsResponse(participants=[p.to_proto() for p in participants])

    async def get_participant(self, grants: Grants | None, request: rm.RoomParticipantIdentity) -> Message:
        _admin(grants, request.room)
        _, participant = self._participant(request.room, request.identity)
        return participant.to_proto()

    async def remove_participant(self, grants: Grants | None, request: rm.RoomParticipantIdentity) -> Message:
        _admin(grants, request.room)
        room, participant = self._participant(request.room, request.identity)
        self.emulator.participant_leave(room, participant, models.DisconnectReason.PARTICIPANT_REMOVED)
        return rm.RemoveParticipantResponse()

    async def mute_published_track(self, grants: Grants | None, request: rm.MuteRoomTrackRequest) -> Message:
        _admin(grants, request.room)
        room = self._room(request.room)
        participant = room.participants.get(request.identity)
        if participant is None:
            raise not_found("participant does not exist")
        track = participant.tracks.get(request.track_sid)
        if track is None:
            raise not_found("track is not found")
        if not request.muted:
            # enable_remote_unmute is false by default on the real server.
            raise failed_precondition("remote unmute not enabled")
        self.emulator.track_set_muted(track, True, by_server=True)
        return rm.MuteRoomTrackResponse(track=track.info)

    async def update_participant(self, grants: Grants | None, request: rm.UpdateParticipantRequest) -> Message:
        # The server checks sizes before permissions.
        if len(request.name) > MAX_NAME:
            raise invalid_argument("name length exceeds limits", "name")
        _check_metadata(request.metadata)
        if sum(len(k) + len(v) for k, v in request.attributes.items()) > MAX_ATTRIBUTES:
            raise invalid_argument("attributes size exceeds limits", "attributes")
        _admin(grants, request.room)
        room, participant = self._participant(request.room, request.identity)
        info = participant.info
        if request.name:
            info.name = request.name
        if request.metadata:
            info.metadata = request.metadata
        for key, value in request.attributes.items():
            if value == "":
                info.attributes.pop(key, None)
            else:
                info.attributes[key] = value
        if request.HasField("permission"):
            info.permission.CopyFrom(request.permission)
            self.emulator.rtc.on_permission_changed(room, participant)
        self.emulator.rtc.on_participant_changed(room, participant)
        return participant.to_proto()

    async def update_subscriptions(self, grants: Grants | None, request: rm.UpdateSubscriptionsRequest) -> Message:
        _admin(grants, request.room)
        self._participant(request.room, request.identity)
        return rm.UpdateSubscriptionsResponse()

    async def send_data(self, grants: Grants | None, request: rm.SendDataRequest) -> Message:
        _admin(grants, request.room)
        if len(request.nonce) not in (0, 16):
            raise invalid_argument("nonce should be 16-bytes or not present", "nonce")
        room = self._room(request.room)
        room.data_packets.append(
            {
                "data": base64.b64encode(request.data).decode(),
                "kind": models.DataPacket.Kind.Name(request.kind),
                "topic": request.topic,
                "destination_identities": list(request.destination_identities),
                "destination_sids": list(request.destination_sids),
            }
        )
        del room.data_packets[:-100]
        packet = models.DataPacket(
            kind=request.kind,
            destination_identities=request.destination_identities,
            user=models.UserPacket(
                payload=request.data,
                topic=request.topic or None,
                destination_identities=request.destination_identities,
                nonce=request.nonce,
            ),
        )
        self.emulator.rtc.deliver_data(room, packet, sender_sid="")
        return rm.SendDataResponse()

    async def update_room_metadata(self, grants: Grants | None, request: rm.UpdateRoomMetadataRequest) -> Message:
        _admin(grants, request.room)
        _check_metadata(request.metadata)
        room = self._room(request.room)
        room.info.metadata = request.metadata
        self.emulator.rtc.on_room_updated(room)
        return room.to_proto()

    async def not_implemented(self, grants: Grants | None, request: Message) -> Message:
        _admin(grants, getattr(request, "room", ""))
        raise TwirpError("unimplemented", "not implemented")


class EgressRpc:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def start_room_composite(self, grants: Grants | None, request: eg.RoomCompositeEgressRequest) -> Message:
        _record(grants)
        return self.emulator.egress.start_room_composite(request)

    async def start_participant(self, grants: Grants | None, request: eg.ParticipantEgressRequest) -> Message:
        _record(grants)
        return self.emulator.egress.start_participant(request)

    async def start_track_composite(self, grants: Grants | None, request: eg.TrackCompositeEgressRequest) -> Message:
        _record(grants)
        return self.emulator.egress.start_track_composite(request)

    async def start_track(self, grants: Grants | None, request: eg.TrackEgressRequest) -> Message:
        _record(grants)
        return self.emulator.egress.start_track(request)

    async def update_layout(self, grants: Grants | None, request: eg.UpdateLayoutRequest) -> Message:
        _record(grants)
        return self.emulator.egress.update_layout(request.egress_id, request.layout)

    async def list_egress(self, grants: Grants | None, request: eg.ListEgressRequest) -> Message:
        _record(grants)
        return self.emulator.egress.list_egress(request)

    async def stop_egress(self, grants: Grants | None, request: eg.StopEgressRequest) -> Message:
        _record(grants)
        return self.emulator.egress.stop(request.egress_id)

    async def not_emulated(self, grants: Grants | None, request: Message) -> Message:
        _record(grants)
        raise TwirpError("unimplemented", f"{type(request).__name__} is not supported by the emulator")


class IngressRpc:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def create(self, grants: Grants | None, request: ig.CreateIngressRequest) -> Message:
        _ingress(grants)
        return self.emulator.ingress.create(request)

    async def update(self, grants: Grants | None, request: ig.UpdateIngressRequest) -> Message:
        _ingress(grants)
        return self.emulator.ingress.update(request)

    async def list(self, grants: Grants | None, request: ig.ListIngressRequest) -> Message:
        _ingress(grants)
        return self.emulator.ingress.list_ingress(request)

    async def delete(self, grants: Grants | None, request: ig.DeleteIngressRequest) -> Message:
        _ingress(grants)
        return self.emulator.ingress.delete(request)


def build_routes(emulator: Emulator) -> dict[str, dict[str, Rpc[Any]]]:
    """Service name -> method name -> Rpc, the Twirp routing table."""
    rooms = RoomServiceRpc(emulator)
    egress = EgressRpc(emulator)
    ingress = IngressRpc(emulator)
    return {
        "livekit.RoomService": {
            "CreateRoom": Rpc(rm.CreateRoomRequest, rooms.create_room),
            "ListRooms": Rpc(rm.ListRoomsRequest, rooms.list_rooms),
            "DeleteRoom": Rpc(rm.DeleteRoomRequest, rooms.delete_room),
            "ListParticipants": Rpc(rm.ListParticipantsRequest, rooms.list_participants),
            "GetParticipant": Rpc(rm.RoomParticipantIdentity, rooms.get_participant),
            "RemoveParticipant": Rpc(rm.RoomParticipantIdentity, rooms.remove_participant),
            "MutePublishedTrack": Rpc(rm.MuteRoomTrackRequest, rooms.mute_published_track),
            "UpdateParticipant": Rpc(rm.UpdateParticipantRequest, rooms.update_participant),
            "UpdateSubscriptions": Rpc(rm.UpdateSubscriptionsRequest, rooms.update_subscriptions),
            "SendData": Rpc(rm.SendDataRequest, rooms.send_data),
            "UpdateRoomMetadata": Rpc(rm.UpdateRoomMetadataRequest, rooms.update_room_metadata),
            "ForwardParticipant": Rpc(rm.ForwardParticipantRequest, rooms.not_implemented),
            "MoveParticipant": Rpc(rm.MoveParticipantRequest, rooms.not_implemented),
        },
        "livekit.Egress": {
            "StartRoomCompositeEgress": Rpc(eg.RoomCompositeEgressRequest, egress.start_room_composite),
            "StartParticipantEgress": Rpc(eg.ParticipantEgressRequest, egress.start_participant),
            "StartTrackCompositeEgress": Rpc(eg.TrackCompositeEgressRequest, egress.start_track_composite),
            "StartTrackEgress": Rpc(eg.TrackEgressRequest, egress.start_track),
            "StartWebEgress": Rpc(eg.WebEgressRequest, egress.not_emulated),
            "StartEgress": Rpc(eg.StartEgressRequest, egress.not_emulated),
            "UpdateStream": Rpc(eg.UpdateStreamRequest, egress.not_emulated),
            "UpdateLayout": Rpc(eg.UpdateLayoutRequest, egress.update_layout),
            "ListEgress": Rpc(eg.ListEgressRequest, egress.list_egress),
            "StopEgress": Rpc(eg.StopEgressRequest, egress.stop_egress),
        },
        "livekit.Ingress": {
            "CreateIngress": Rpc(ig.CreateIngressRequest, ingress.create),
            "UpdateIngress": Rpc(ig.UpdateIngressRequest, ingress.update),
            "ListIngress": Rpc(ig.ListIngressRequest, ingress.list),
            "DeleteIngress": Rpc(ig.DeleteIngressRequest, ingress.delete),
        },
    }
