"""Speaker resolution for uploaded calls: who is on which channel, named from the call's metadata.

Channel convention (phone call recorders): the LEFT channel carries the phone's own microphone (the uploader),
the RIGHT channel the far end (the contact). ANALYSIS_STEREO_LOCAL_CHANNEL=right flips it for recorders that do
the opposite. A self-introduction overrides the convention: if the uploader's side says "this is <contactName>"
and the other side does not, the channels are taken to be swapped.

A mono recording is one speaker: no diarization backend is installed, and the transcript says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

_INTRODUCTION = re.compile(r"\b(?:this is|my name is|i am|i'm|it's)\s+([A-Za-z][a-z'-]+)", re.IGNORECASE)

SEPARATION_STEREO = "stereo_channels"
SEPARATION_SINGLE = "single_speaker"


@dataclass(frozen=True)
class CallParties:
    """What the upload told us about the two sides of the call."""

    user_name: str  # the uploader's display name ("" when the token carried none)
    contact_name: str
    organization: str
    phone_number: str
    direction: str  # INCOMING | OUTGOING | ""


def contact_display_name(parties: CallParties) -> tuple[str, float]:
    """The contact's name and how sure we are of it (the metadata's contactName is best)."""
    if parties.contact_name:
        return parties.contact_name, 0.9
    if parties.organization:
        return f"{parties.organization} contact", 0.6
    if parties.phone_number:
        return parties.phone_number, 0.6
    return "Contact", 0.4


def _introduced_as(texts: Iterable[str]) -> set[str]:
    return {match.group(1).lower() for text in texts for match in _INTRODUCTION.finditer(text)}


def resolve_speakers(
    *, labels: list[str], texts_by_label: dict[str, list[str]], parties: CallParties
) -> list[dict[str, Any]]:
    """The speaker map for a transcript whose segments carry `labels` ("Speaker 1" = left, "Speaker 2" = right).

    Returns [{"speakerId", "label", "channel", "role", "name", "confidence", "source"}], one per label.
    """
    user_name = parties.user_name or "You"
    user_confidence = 0.9 if parties.user_name else 0.5
    contact_name, contact_confidence = contact_display_name(parties)
    if user_name == contact_name:
        contact_name = f"{contact_name} (contact)"
    if len(labels) != 2:
        return [
            {
                "speakerId": f"S{index + 1}",
                "label": label,
                "channel": "mixed",
                "role": "mixed",
                "name": label,
                "confidence": 0.0,
                "source": SEPARATION_SINGLE,
            }
            for index, label in enumerate(labels)
        ]
    left, right = labels
    local_is_left = settings.ANALYSIS_STEREO_LOCAL_CHANNEL == "left"
    user_label, contact_label = (left, right) if local_is_left else (right, left)
    source = "channel_convention"
    first = contact_name.split()[0].lower() if parties.contact_name else ""
    if first:
        user_side = _introduced_as(texts_by_label.get(user_label, []))
        contact_side = _introduced_as(texts_by_label.get(contact_label, []))
        if first in contact_side:
            contact_confidence = user_confidence = 0.97
            source = "channel_convention+introduction"
        elif first in user_side:
            user_label, contact_label = contact_label, user_label
            contact_confidence = user_confidence = 0.85
            source = "introduction"
    rows = {
        user_label: ("user", user_name, user_confidence),
        contact_label: ("contact", contact_name, contact_confidence),
    }
    return [
        {
            "speakerId": f"S{index + 1}",
            "label": label,
            "channel": "left" if label == left else "right",
            "role": rows[label][0],
            "name": rows[label][1],
            "confidence": round(rows[label][2], 2),
            "source": source,
        }
        for index, label in enumerate(labels)
    ]


def speaker_names(speakers: list[dict[str, Any]]) -> dict[str, str]:
    """speakerId -> name."""
    return {str(s["speakerId"]): str(s["name"]) for s in speakers}


def speaker_by_label(speakers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(s["label"]): s for s in speakers}
