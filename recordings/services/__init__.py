"""Recording writes (`recording`) and stored files (`media`). The names other apps and settings use
are re-exported here: `recordings.services.recording_apply_livekit_event` and friends."""

from recordings.services.media import (
    media_entry_create_from_stream,
    media_entry_delete,
    media_entry_register,
    media_sweep_orphans,
)
from recordings.services.recording import (
    CallNotLive,
    RecordingNotFinished,
    RecordingsDisabled,
    RoomNotLive,
    recording_apply_egress_info,
    recording_apply_livekit_event,
    recording_delete,
    recording_event_data,
    recording_fail,
    recording_register_file,
    recording_start,
    recording_stop,
    recording_track_published,
    recordings_reconcile_egress,
    recordings_stop_for_call,
    recordings_stop_for_room,
)

__all__ = [
    "CallNotLive",
    "RecordingNotFinished",
    "RecordingsDisabled",
    "RoomNotLive",
    "media_entry_create_from_stream",
    "media_entry_delete",
    "media_entry_register",
    "media_sweep_orphans",
    "recording_apply_egress_info",
    "recording_apply_livekit_event",
    "recording_delete",
    "recording_event_data",
    "recording_fail",
    "recording_register_file",
    "recording_start",
    "recording_stop",
    "recording_track_published",
    "recordings_reconcile_egress",
    "recordings_stop_for_call",
    "recordings_stop_for_room",
]
