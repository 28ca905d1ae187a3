"""The embedded analyzer: extractive summary and rules for commitments, on the machine.

Commitments are found sentence by sentence:
- first-person promises ("I will ...", "I'll ...", "I'm going to ...", "let me ...") are
  owned by the speaker;
- requests ("can you ...", "could you ...", "please ...") are owned by the person addressed
  by name ("Ravi, can you ...") or, in a two-party call, by the other party;
- a due date is read from "by/before/on/until <when>" (or "end of the week", "today",
  "tomorrow") and resolved with dateparser against the recording time.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import date, datetime, timedelta

import dateparser

from transcription.analysis.types import ActionItem, Analysis, AnalysisContext, Question, SpokenSegment

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z][a-z'-]+")
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each few for from further get got had hadn't has hasn't have haven't having he he'd he'll he's her
    here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its
    itself just let let's like me more most mustn't my myself no nor not now of off on once only or other ought
    our ours ourselves out over own okay ok really right same shan't she she'd she'll she's should shouldn't so
    some such than that that's the their theirs them themselves then there there's these they they'd they'll
    they're they've this those through to too under until up us very was wasn't we we'd we'll we're we've were
    weren't what what's when when's where where's which while who who's whom why why's will with won't would
    wouldn't yeah yes you you'd you'll you're you've your yours yourself yourselves going want think know thing
    things well thanks thank hello hi bye one two also sure great good
    """.split()
)

_PROMISE = re.compile(
    r"\b(i will|i'll|i shall|i am going to|i'm going to|i'm gonna|i am gonna|let me|i can|we will|we'll|"
    r"i promise to|i need to|i have to)\b",
    re.IGNORECASE,
)
_REQUEST = re.compile(r"\b(can you|could you|would you|will you|please|make sure you|you need to|you should)\b", re.I)
_ADDRESSEE = re.compile(r"^\s*(?:okay|ok|so|and|well)?[,\s]*([A-Z][a-z]+)\s*,\s*(?:can|could|would|will|please)\b")
_DUE = re.compile(
    r"\b(?:by|before|on|until|no later than|due)\s+((?:the\s+)?(?:end of (?:the\s+)?(?:day|week|month)|"
    r"next\s+\w+|this\s+\w+|tomorrow|today|tonight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?|"
    r"\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|"
    r"\d{4}-\d{2}-\d{2}))",
    re.IGNORECASE,
)
_BARE_DUE = re.compile(r"\b(tomorrow|today|tonight|end of (?:the\s+)?(?:day|week|month))\b", re.IGNORECASE)
_QUESTION_START = re.compile(
    r"^(who|what|when|where|why|how|which|can|could|would|will|do|does|did|is|are|should|shall)\b", re.I
)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 2]


def resolve_due(phrase: str, recorded_at: datetime | None) -> date | None:
    base = recorded_at or datetime.now()
    lowered = phrase.lower().strip()
    lowered = re.sub(r"^the\s+", "", lowered)
    if lowered in {"today", "tonight", "end of day", "end of the day"}:
        return base.date()
    if lowered in {"end of week", "end of the week"}:
        return (base + timedelta(days=(4 - base.weekday()) % 7)).date()  # the coming Friday
    if lowered in {"end of month", "end of the month"}:
        first_next = (base.replace(day=28) + timedelta(days=4)).replace(day=1)
        return (first_next - timedelta(days=1)).date()
    parsed = dateparser.parse(
        lowered, settings={"RELATIVE_BASE": base.replace(tzinfo=None), "PREFER_DATES_FROM": "future"}
    )
    return parsed.date() if parsed else None


def _due(sentence: str, recorded_at: datetime | None) -> tuple[date | None, str | None]:
    match = _DUE.search(sentence) or _BARE_DUE.search(sentence)
    if not match:
        return None, None
    phrase = match.group(1)
    return resolve_due(phrase, recorded_at), phrase


def _clean_action(sentence: str) -> str:
    return sentence.strip().rstrip(".!?").strip()


def find_action_items(segments: list[SpokenSegment], context: AnalysisContext) -> list[ActionItem]:
    speakers = list(dict.fromkeys(context.speakers or [s.speaker for s in segments]))
    items: list[ActionItem] = []
    for segment in segments:
        for sentence in split_sentences(segment.text):
            if sentence.endswith("?") and not _REQUEST.search(sentence):
                continue
            owner: str | None
            if _PROMISE.search(sentence) and not _REQUEST.search(sentence):
                owner = segment.speaker
            elif _REQUEST.search(sentence):
                addressee = _ADDRESSEE.match(sentence)
                others = [s for s in speakers if s != segment.speaker]
                if addressee:
                    named = addressee.group(1)
                    owner = next((s for s in speakers if s.split()[0].lower() == named.lower()), named)
                else:
                    owner = others[0] if len(others) == 1 else None
            else:
                continue
            due_date, due_text = _due(sentence, context.recorded_at)
            # A promise with no verb object ("I will.") is not an action.
            if len(content_words(sentence)) < 2:
                continue
            items.append(
                ActionItem(
                    text=_clean_action(sentence),
                    owner=owner,
                    due_date=due_date,
                    due_text=due_text,
                    speaker=segment.speaker,
                    at_seconds=round(segment.start, 2),
                )
            )
    return items


def summarize(segments: list[SpokenSegment], max_sentences: int = 3) -> str:
    sentences: list[tuple[int, str]] = []
    for segment in segments:
        for sentence in split_sentences(segment.text):
            sentences.append((len(sentences), sentence))
    if not sentences:
        return ""
    frequencies = Counter(w for _, s in sentences for w in content_words(s))
    if not frequencies:
        return " ".join(s for _, s in sentences[:max_sentences])
    top = max(frequencies.values())

    def score(sentence: str) -> float:
        words = content_words(sentence)
        if not words:
            return 0.0
        return sum(frequencies[w] / top for w in words) / math.sqrt(len(words))

    best = sorted(sentences, key=lambda item: score(item[1]), reverse=True)[:max_sentences]
    return " ".join(sentence for _, sentence in sorted(best))


def key_topics(segments: list[SpokenSegment], limit: int = 5) -> list[str]:
    counts = Counter(w for s in segments for w in content_words(s.text) if len(w) > 3)
    return [word for word, n in counts.most_common(limit) if n >= 1]


def talk_time(segments: list[SpokenSegment]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for segment in segments:
        totals[segment.speaker] = totals.get(segment.speaker, 0.0) + max(0.0, segment.end - segment.start)
    whole = sum(totals.values())
    if whole <= 0:
        return {}
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    return {speaker: round(seconds / whole, 3) for speaker, seconds in ranked}


def find_questions(segments: list[SpokenSegment]) -> list[Question]:
    questions = []
    for segment in segments:
        for sentence in split_sentences(segment.text):
            if sentence.endswith("?") or (_QUESTION_START.match(sentence) and len(sentence.split()) > 3):
                questions.append(Question(speaker=segment.speaker, text=sentence, at_seconds=round(segment.start, 2)))
    return questions


def analyze_with_rules(segments: list[SpokenSegment], context: AnalysisContext) -> Analysis:
    return Analysis(
        summary=summarize(segments),
        action_items=find_action_items(segments, context),
        key_topics=key_topics(segments),
        talk_time=talk_time(segments),
        questions=find_questions(segments),
        analyzer="rules",
    )
