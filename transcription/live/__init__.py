"""Live transcription (document 001 "Transcription (Live)"): LiveKit track egress streams each audio track's PCM to
the ingest WebSocket, which cuts it at pauses, transcribes and pushes `transcription.segment` events to the room.
See docs/transcription.md, "Live transcription"."""
