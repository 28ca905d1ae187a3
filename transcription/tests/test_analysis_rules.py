"""The embedded analyzer: commitments with owners and due dates, summary, talk time, questions."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from transcription.analysis.rules import analyze_with_rules, find_action_items, resolve_due
from transcription.analysis.types import AnalysisContext, SpokenSegment

# Friday 29 May 2026, 13:00 — the recordedAt of document 002's example.
RECORDED = datetime(2026, 5, 29, 13, 0)
CONTEXT = AnalysisContext(recorded_at=RECORDED, speakers=("Priya", "Ravi"))


def seg(speaker: str, start: float, end: float, text: str) -> SpokenSegment:
    return SpokenSegment(speaker=speaker, start=start, end=end, text=text)


def test_a_first_person_promise_is_owned_by_the_speaker_with_its_due_date():
    items = find_action_items([seg("Ravi", 3, 6, "Sure. I will send the revised quote by Tuesday.")], CONTEXT)
    assert len(items) == 1
    assert items[0].owner == "Ravi"
    assert items[0].due_date == date(2026, 6, 2)
    assert "send the revised quote" in items[0].text


def test_a_request_in_a_two_party_call_is_owned_by_the_other_party():
    items = find_action_items([seg("Priya", 0, 3, "Can you share the contract by Friday?")], CONTEXT)
    assert [(i.owner, i.due_date) for i in items] == [("Ravi", date(2026, 6, 5))]


def test_a_request_addressed_by_name_is_owned_by_that_person():
    context = AnalysisContext(recorded_at=RECORDED, speakers=("Priya", "Ravi", "Omar"))
    items = find_action_items([seg("Priya", 0, 3, "Omar, could you book the room for tomorrow?")], context)
    assert items[0].owner == "Omar"
    assert items[0].due_date == date(2026, 5, 30)


def test_small_talk_yields_no_action_items():
    segments = [seg("Priya", 0, 2, "Hello, how are you?"), seg("Ravi", 2, 4, "Fine thanks. The weather is nice.")]
    assert find_action_items(segments, CONTEXT) == []


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("end of the week", date(2026, 5, 29)),
        ("end of the month", date(2026, 5, 31)),
        ("today", date(2026, 5, 29)),
        ("June 3rd", date(2026, 6, 3)),
        ("next Tuesday", date(2026, 6, 2)),
    ],
)
def test_due_phrases_resolve_against_the_recording_time(phrase, expected):
    assert resolve_due(phrase, RECORDED) == expected


def test_full_analysis_has_summary_topics_talk_time_and_questions():
    segments = [
        seg("Priya", 0, 10, "Let's review the quarterly pricing for the Acme renewal. The pricing changed a lot."),
        seg("Ravi", 10, 14, "What discount can we offer on the renewal?"),
        seg("Priya", 14, 20, "We can offer ten percent on renewal pricing. I will email the pricing sheet by Monday."),
    ]
    analysis = analyze_with_rules(segments, CONTEXT)
    assert "pricing" in analysis.summary.lower()
    assert "pricing" in analysis.key_topics
    assert analysis.talk_time == {"Priya": 0.8, "Ravi": 0.2}
    assert [q.speaker for q in analysis.questions] == ["Ravi"]
    assert [(i.owner, i.due_date) for i in analysis.action_items] == [("Priya", date(2026, 6, 1))]
    payload = analysis.as_dict()
    assert payload["actionItems"][0]["due_date"] == "2026-06-01"
