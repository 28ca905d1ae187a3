# WebSocket routes owned by the transcription app (the live audio ingest).
websocket_urlpatterns: list = []
