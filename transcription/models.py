"""Models of the transcription app."""
