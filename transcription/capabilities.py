"""What the transcription add-ons can do right now (reported by GET /v1/health).

Each add-on is true only when it is enabled AND the configured speech model is on this machine
(a cheap file check: nothing is loaded or joined here). Post-call transcription also needs a worker on the
speech queue when TRANSCRIPTION_WORKER_CHECK is on (production's default): its heartbeat, not a setting, says so.
"""

from django.conf import settings

from transcription.model_files import model_available
from transcription.worker_heartbeat import speech_worker_alive


def live_available() -> bool:
    # The live recognizer's model: TRANSCRIPTION_LIVE_MODEL, else STT_MODEL.
    model = settings.TRANSCRIPTION_LIVE_MODEL or settings.STT_MODEL
    return bool(settings.TRANSCRIPTION_LIVE_ENABLED) and model_available(model)


def post_call_available() -> bool:
    if not (settings.TRANSCRIPTION_POST_ENABLED and model_available()):
        return False
    return not settings.TRANSCRIPTION_WORKER_CHECK or speech_worker_alive()


def transcription_capabilities() -> dict[str, bool]:
    return {
        # Live: enabled AND the live recognizer's model is on this machine (see transcription/live/).
        "transcriptionLive": live_available(),
        "transcriptionPost": post_call_available(),
    }
