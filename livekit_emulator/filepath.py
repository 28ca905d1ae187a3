"""Egress output names: the filepath template rules of livekit/egress (livekit.md §4.3)."""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass

KNOWN_EXTENSIONS = (".mp4", ".ogg", ".mp3", ".webm", ".ivf", ".h264", ".ts", ".m3u8", ".mkv", ".m4a", ".wav")


@dataclass
class TemplateValues:
    room_name: str = ""
    room_id: str = ""
    publisher_identity: str = ""
    track_id: str = ""
    track_type: str = ""
    track_source: str = ""


def resolve_filepath(template: str, extension: str, values: TemplateValues, now: dt.datetime | None = None) -> str:
    """Expand ``template`` into the storage path LiveKit Egress would use.

    ``extension`` includes the dot (``.mp4``). An empty template, or one ending in ``/``, gets
    ``<room_name or "web">-<time>``; a missing extension replaces any other known one; ``../`` prefixes go.
    """
    now = now or dt.datetime.now().astimezone()
    local_time = now.strftime("%Y-%m-%dT%H%M%S")
    utc = now.astimezone(dt.UTC)
    utc_stamp = utc.strftime("%Y%m%d%H%M%S") + f"{utc.microsecond // 1000:03d}"
    path = template
    if not path or path.endswith("/"):
        path += f"{values.room_name or 'web'}-{local_time}"
    replacements = {
        "{room_name}": values.room_name,
        "{room_id}": values.room_id,
        "{time}": local_time,
        "{utc}": utc_stamp,
        "{publisher_identity}": values.publisher_identity,
        "{track_id}": values.track_id,
        "{track_type}": values.track_type,
        "{track_source}": values.track_source,
    }
    for placeholder, value in replacements.items():
        path = path.replace(placeholder, value)
    while path.startswith("../"):
        path = path[3:]
    if not path.endswith(extension):
        stem, current = posixpath.splitext(path)
        if current.lower() in KNOWN_EXTENSIONS:
            path = stem
        path += extension
    return path


def safe_local_path(filepath: str) -> str:
    """Drop leading slashes and ``..`` segments so a local write stays inside the output folder."""
    parts = [part for part in filepath.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    return "/".join(parts)
