"""Text options of live segments: the profanity filter and punctuation on/off.

The word list is the operator's: TRANSCRIPTION_PROFANITY_WORDS (comma separated) and/or TRANSCRIPTION_PROFANITY_FILE
(one word a line, `#` comments). With neither, a small English default list applies. A listed word is masked as
`***` wherever it stands as a whole word, case-insensitively, also with a plural or verb ending ("-s", "-ing", ...);
words that merely contain it ("hello" for "hell") are left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings

MASK = "***"

DEFAULT_WORDS = (
    "fuck",
    "fucking",
    "motherfucker",
    "shit",
    "bullshit",
    "bitch",
    "bastard",
    "asshole",
    "cunt",
    "dick",
    "piss",
    "damn",
    "crap",
)

_ENDINGS = r"(?:s|es|ed|er|ers|ing|in)?"


def profanity_words() -> tuple[str, ...]:
    words = [w.strip().lower() for w in settings.TRANSCRIPTION_PROFANITY_WORDS if w.strip()]
    path = settings.TRANSCRIPTION_PROFANITY_FILE
    if path:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            word = line.split("#", 1)[0].strip().lower()
            if word:
                words.append(word)
    return tuple(sorted(set(words))) if words else DEFAULT_WORDS


@lru_cache(maxsize=8)
def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w'])(?:{alternatives}){_ENDINGS}(?![\w'])", re.IGNORECASE)


def profanity_mask(text: str, words: tuple[str, ...] | None = None) -> str:
    """Replace every listed word in `text` with `***`."""
    chosen = profanity_words() if words is None else words
    if not chosen:
        return text
    return _pattern(chosen).sub(MASK, text)


# Sentence punctuation Whisper adds; apostrophes and hyphens inside words ("don't", "ill-disposed") are spelling.
_QUOTES = "'\u2018\u2019-"
_PUNCTUATION = re.compile(rf"[.,!?;:\"\u201c\u201d\u00ab\u00bb\u2026()\[\]]|(?<!\w)[{_QUOTES}]|[{_QUOTES}](?!\w)")


def punctuation_strip(text: str) -> str:
    """The text without punctuation (options.punctuation false), spaces collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def text_apply_options(text: str, options: dict[str, object]) -> str:
    """Apply a session's `punctuation` (default on) and `profanityFilter` (default off) options."""
    if options.get("punctuation") is False:
        text = punctuation_strip(text)
    if options.get("profanityFilter"):
        text = profanity_mask(text)
    return text
