"""What the transcription add-ons can do right now (reported by GET /v1/health)."""

from django.conf import settings


def transcription_capabilities() -> dict[str, bool]:
    return {
        "transcriptionLive": bool(settings.TRANSCRIPTION_LIVE_ENABLED),
        "transcriptionPost": bool(settings.TRANSCRIPTION_POST_ENABLED),
    }
