"""Who was connected when: a call's timeline as an inline SVG, drawn on the server (no script, no CDN).

The intervals come from LiveKit's own webhooks (participant_joined / participant_left stored by the intake),
so a participant who dropped and came back shows two bars; a participant without stored events falls back to
the CallParticipant row's joined_at / left_at. A bar still open at drawing time runs to "now" and is drawn
hatched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from calls.models import Call
from webhooks.models.intake import LiveKitEvent

WIDTH = 760
LABEL_WIDTH = 170
RIGHT_PAD = 36
ROW_HEIGHT = 30
BAR_HEIGHT = 16
TOP = 10
AXIS_HEIGHT = 34
TICKS = 5


@dataclass
class Interval:
    start: datetime
    end: datetime | None  # None: still connected


@dataclass
class TimelineRow:
    label: str
    intervals: list[Interval] = field(default_factory=list)


def call_timeline_rows(call: Call) -> list[TimelineRow]:
    """One row per participant, in invitation order, with their connected intervals."""
    participants = list(call.participants.select_related("user").order_by("invited_at", "id"))
    events = LiveKitEvent.objects.filter(
        room_name=call.livekit_room, event__in=("participant_joined", "participant_left")
    ).order_by("created_at", "id")
    by_identity: dict[str, list[Interval]] = {}
    for event in events.only("event", "participant_identity", "created_at"):
        intervals = by_identity.setdefault(event.participant_identity, [])
        if event.event == "participant_joined":
            if not intervals or intervals[-1].end is not None:
                intervals.append(Interval(event.created_at, None))
        elif intervals and intervals[-1].end is None:
            intervals[-1].end = event.created_at
    rows = []
    for participant in participants:
        label = participant.user.display_name or participant.user.external_id
        found = by_identity.get(participant.livekit_identity, []) if participant.livekit_identity else []
        if not found and participant.joined_at is not None:
            found = [Interval(participant.joined_at, participant.left_at)]
        rows.append(TimelineRow(label=label, intervals=list(found)))
    return rows


def call_timeline_svg(call: Call, *, now: datetime | None = None) -> SafeString:
    end = call.ended_at or now or timezone.now()
    # Until someone answered, the call was ringing: shaded.
    return timeline_svg(call_timeline_rows(call), start=call.created_at, end=end, ringing_until=call.started_at or end)


def _clock(when: datetime) -> str:
    return timezone.localtime(when).strftime("%H:%M:%S")


def timeline_svg(
    rows: list[TimelineRow], *, start: datetime, end: datetime, ringing_until: datetime | None = None
) -> SafeString:
    """An SVG chart: one lane per row, a bar per interval, a time axis with TICKS labels."""
    end = max(end, start + timedelta(seconds=1))
    span = (end - start).total_seconds()
    plot = WIDTH - LABEL_WIDTH - RIGHT_PAD
    height = TOP + ROW_HEIGHT * max(len(rows), 1) + AXIS_HEIGHT

    def x(when: datetime) -> float:
        seconds = min(max((when - start).total_seconds(), 0.0), span)
        return round(LABEL_WIDTH + plot * seconds / span, 1)

    parts: list[SafeString] = []
    lanes_bottom = TOP + ROW_HEIGHT * max(len(rows), 1)
    if ringing_until is not None and ringing_until > start:
        parts.append(
            format_html(
                '<rect class="ringing" x="{}" y="{}" width="{}" height="{}" fill="#f5f0dc">'
                "<title>ringing until {}</title></rect>",
                LABEL_WIDTH,
                TOP,
                round(x(ringing_until) - LABEL_WIDTH, 1),
                lanes_bottom - TOP,
                _clock(ringing_until),
            )
        )
    for index, row in enumerate(rows):
        y = TOP + index * ROW_HEIGHT
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" font-size="12" fill="currentColor">{}</text>',
                LABEL_WIDTH - 8,
                y + ROW_HEIGHT / 2 + 4,
                row.label[:28],
            )
        )
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ccc" stroke-dasharray="2,3"/>',
                LABEL_WIDTH,
                WIDTH - RIGHT_PAD,
                y + ROW_HEIGHT / 2,
                y + ROW_HEIGHT / 2,
            )
        )
        if not row.intervals:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="11" fill="#888">never connected</text>',
                    LABEL_WIDTH + 6,
                    y + ROW_HEIGHT / 2 + 4,
                )
            )
        for interval in row.intervals:
            x1 = x(interval.start)
            x2 = x(interval.end or end)
            fill = "#417690" if interval.end is not None else "url(#connected-now)"
            parts.append(
                format_html(
                    '<rect class="connected" data-participant="{}" x="{}" y="{}" width="{}" height="{}" rx="3" '
                    'fill="{}" stroke="#417690"><title>{}: {} to {}</title></rect>',
                    row.label,
                    x1,
                    y + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                    max(round(x2 - x1, 1), 2),
                    BAR_HEIGHT,
                    fill,
                    row.label,
                    _clock(interval.start),
                    _clock(interval.end) if interval.end else "now",
                )
            )
    ticks = format_html_join(
        "",
        '<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="#999"/>'
        '<text x="{0}" y="{3}" text-anchor="middle" font-size="11" fill="currentColor">{4}</text>',
        (
            (
                x(start + timedelta(seconds=span * i / (TICKS - 1))),
                lanes_bottom,
                lanes_bottom + 5,
                lanes_bottom + 18,
                _clock(start + timedelta(seconds=span * i / (TICKS - 1))),
            )
            for i in range(TICKS)
        ),
    )
    parts.append(
        format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#999"/>',
            LABEL_WIDTH,
            WIDTH - RIGHT_PAD,
            lanes_bottom,
            lanes_bottom,
        )
    )
    parts.append(ticks)
    defs = mark_safe(  # a constant
        '<defs><pattern id="connected-now" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#79aec8"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#417690" stroke-width="3"/></pattern></defs>'
    )
    return format_html(
        '<svg class="call-timeline" xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
        'style="max-width: {}px; height: auto" viewBox="0 0 {} {}" aria-label="Who was connected when">{}{}</svg>',
        WIDTH,
        WIDTH,
        height,
        defs,
        format_html_join("", "{}", ((part,) for part in parts)),
    )
