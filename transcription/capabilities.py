"""What the transcription add-ons can do right now (reported by GET /v1/health).

Post-call transcription is true only when it is enabled AND the configured speech model is on this machine
(a cheap file check: nothing is loaded or joined here).
"""

from django.conf import settings

from transcription.model_files import model_available


def post_call_available() -> bool:
    return bool(settings.TRANSCRIPTION_POST_ENABLED) and model_available()


def transcription_capabilities() -> dict[str, bool]:
    return {
        # The live add-on (track egress -> ingest WebSocket) is not built yet: never claim it.
        "transcriptionLive": False,
        "transcriptionPost": post_call_available(),
    }
