"""An OpenAI-compatible chat-completions analyzer, for deployments that have an LLM.

The model is asked for one JSON object; the answer is validated field by field. Anything
missing, malformed or late makes the caller fall back to the rules analyzer.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
from django.conf import settings

from transcription.analysis.types import ActionItem, Analysis, AnalysisContext, Question, SpokenSegment


class AnalyzerUnavailable(Exception):
    """The LLM backend gave no usable answer."""


_INSTRUCTIONS = (
    "You analyse call transcripts. Answer with ONE JSON object and nothing else, with keys: "
    '"summary" (string, at most 3 sentences), '
    '"action_items" (list of {"text": string, "owner": string or null, "due_date": "YYYY-MM-DD" or null, '
    '"speaker": string, "at_seconds": number}), "key_topics" (list of at most 5 strings), '
    '"questions" (list of {"speaker": string, "text": string, "at_seconds": number}). '
    "Owners and speakers must be names that appear in the transcript. Resolve relative dates against the "
    "recording date given."
)


def _transcript_text(segments: list[SpokenSegment]) -> str:
    return "\n".join(f"[{s.start:.1f}s] {s.speaker}: {s.text}" for s in segments)


def _require(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    if not isinstance(value, kind):
        raise AnalyzerUnavailable(f"field {name} has the wrong type")
    return value


def parse_answer(answer: dict[str, Any], segments: list[SpokenSegment]) -> Analysis:
    items = []
    for raw in _require(answer.get("action_items", []), list, "action_items"):
        _require(raw, dict, "action_items[]")
        due = raw.get("due_date")
        try:
            due_date = date.fromisoformat(due) if due else None
        except (TypeError, ValueError):
            raise AnalyzerUnavailable("due_date is not YYYY-MM-DD") from None
        owner = raw.get("owner")
        items.append(
            ActionItem(
                text=str(_require(raw.get("text"), str, "action_items[].text")),
                owner=owner if isinstance(owner, str) and owner else None,
                due_date=due_date,
                due_text=due,
                speaker=str(raw.get("speaker") or ""),
                at_seconds=float(raw.get("at_seconds") or 0.0),
            )
        )
    questions = [
        Question(
            speaker=str(q.get("speaker", "")), text=str(q.get("text", "")), at_seconds=float(q.get("at_seconds") or 0)
        )
        for q in _require(answer.get("questions", []), list, "questions")
        if isinstance(q, dict)
    ]
    topics = [str(t) for t in _require(answer.get("key_topics", []), list, "key_topics")][:5]
    return Analysis(
        summary=str(_require(answer.get("summary"), str, "summary")),
        action_items=items,
        key_topics=topics,
        questions=questions,
        analyzer="openai",
    )


def analyze_with_llm(segments: list[SpokenSegment], context: AnalysisContext) -> Analysis:
    recorded = context.recorded_at.date().isoformat() if context.recorded_at else "unknown"
    body = {
        "model": settings.ANALYSIS_OPENAI_MODEL,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": _INSTRUCTIONS},
            {"role": "user", "content": f"Recording date: {recorded}\n\nTranscript:\n{_transcript_text(segments)}"},
        ],
    }
    headers = (
        {"Authorization": f"Bearer {settings.ANALYSIS_OPENAI_API_KEY}"} if settings.ANALYSIS_OPENAI_API_KEY else {}
    )
    url = settings.ANALYSIS_OPENAI_BASE_URL.rstrip("/") + "/chat/completions"
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=settings.ANALYSIS_OPENAI_TIMEOUT)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        answer = json.loads(content)
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise AnalyzerUnavailable(f"LLM backend failed: {exc}") from None
    if not isinstance(answer, dict):
        raise AnalyzerUnavailable("LLM answer is not a JSON object")
    return parse_answer(answer, segments)
