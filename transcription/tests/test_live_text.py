"""Live segments' text options and the per-track ingest token."""

from __future__ import annotations

import time

import pytest
from django.conf import LazySettings

from transcription.live.profanity import (
    DEFAULT_WORDS,
    profanity_mask,
    profanity_words,
    punctuation_strip,
    text_apply_options,
)
from transcription.live.tokens import InvalidIngestToken, ingest_token_make, ingest_token_verify


def test_a_token_names_one_track_of_one_session_and_verifies() -> None:
    token = ingest_token_make(transcription_id="tr_1", track_sid="TR_a", identity="alice")
    claims = ingest_token_verify(token)
    assert (claims.transcription_id, claims.track_sid, claims.identity) == ("tr_1", "TR_a", "alice")
    assert claims.expires_at > time.time()


def test_a_token_with_changed_claims_is_refused() -> None:
    token = ingest_token_make(transcription_id="tr_1", track_sid="TR_a", identity="alice")
    other = ingest_token_make(transcription_id="tr_2", track_sid="TR_a", identity="alice")
    forged = other.split(".")[0] + "." + token.split(".")[1]  # another session's claims, this token's signature
    with pytest.raises(InvalidIngestToken, match="signature"):
        ingest_token_verify(forged)


@pytest.mark.parametrize("token", ["", "abc", "abc.", ".abc", "a.b.c", "e30.e30"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidIngestToken):
        ingest_token_verify(token)


def test_an_expired_token_is_refused() -> None:
    token = ingest_token_make(transcription_id="tr_1", track_sid="TR_a", identity="alice", ttl=60)
    with pytest.raises(InvalidIngestToken, match="expired"):
        ingest_token_verify(token, now=time.time() + 61)


def test_a_token_signed_with_another_secret_key_is_refused(settings: LazySettings) -> None:
    token = ingest_token_make(transcription_id="tr_1", track_sid="TR_a", identity="alice")
    settings.SECRET_KEY = "another-deployment-" + "x" * 40
    with pytest.raises(InvalidIngestToken):
        ingest_token_verify(token)


def test_profanity_is_masked_as_whole_words_in_any_case_with_endings() -> None:
    words = ("damn", "shit")
    assert profanity_mask("Damn, that shitty shits thing.", words) == "***, that shitty *** thing."
    assert profanity_mask("DAMNED if I know", words) == "*** if I know"


def test_words_that_merely_contain_a_listed_word_are_left_alone() -> None:
    assert profanity_mask("Hello, I shell out for the class.", ("hell", "ass")) == "Hello, I shell out for the class."


def test_the_operator_configures_the_word_list_by_setting_and_file(settings: LazySettings, tmp_path) -> None:
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("# our list\nbanana\n\nKiwi  # fruit is rude here\n")
    settings.TRANSCRIPTION_PROFANITY_WORDS = ["mango"]
    settings.TRANSCRIPTION_PROFANITY_FILE = str(wordlist)
    assert profanity_words() == ("banana", "kiwi", "mango")
    assert profanity_mask("A banana, a Kiwi and a mango; damn.") == "A ***, a *** and a ***; damn."


def test_without_configuration_the_default_list_applies(settings: LazySettings) -> None:
    settings.TRANSCRIPTION_PROFANITY_WORDS = []
    settings.TRANSCRIPTION_PROFANITY_FILE = ""
    assert profanity_words() == DEFAULT_WORDS
    assert profanity_mask("oh shit") == "oh ***"


def test_punctuation_off_strips_punctuation_but_keeps_apostrophes_and_hyphens_in_words() -> None:
    text = 'He said: "Don\u2019t go!" It\'s an ill-disposed - odd... idea (really)?'
    assert punctuation_strip(text) == "He said Don\u2019t go It's an ill-disposed odd idea really"


def test_options_apply_punctuation_and_profanity_together(settings: LazySettings) -> None:
    settings.TRANSCRIPTION_PROFANITY_WORDS = ["darn"]
    text = "Well, darn it!"
    assert text_apply_options(text, {}) == "Well, darn it!"  # punctuation on, filter off by default
    assert text_apply_options(text, {"punctuation": False}) == "Well darn it"
    assert text_apply_options(text, {"profanityFilter": True}) == "Well, *** it!"
    assert text_apply_options(text, {"punctuation": False, "profanityFilter": True}) == "Well *** it"
