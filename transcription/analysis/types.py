from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class SpokenSegment:
    """One stretch of speech by one speaker (what analysis reads from a transcript)."""

    speaker: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class AnalysisContext:
    """What we know about the call besides its words."""

    recorded_at: datetime | None = None
    speakers: tuple[str, ...] = ()
    language: str = "en"


@dataclass
class ActionItem:
    text: str
    owner: str | None
    due_date: date | None
    due_text: str | None
    speaker: str
    at_seconds: float

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["due_date"] = self.due_date.isoformat() if self.due_date else None
        return data


@dataclass
class Question:
    speaker: str
    text: str
    at_seconds: float


@dataclass
class Analysis:
    summary: str
    action_items: list[ActionItem] = field(default_factory=list)
    key_topics: list[str] = field(default_factory=list)
    talk_time: dict[str, float] = field(default_factory=dict)
    questions: list[Question] = field(default_factory=list)
    analyzer: str = "rules"

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "actionItems": [item.as_dict() for item in self.action_items],
            "keyTopics": self.key_topics,
            "talkTime": self.talk_time,
            "questions": [asdict(q) for q in self.questions],
            "analyzer": self.analyzer,
        }
