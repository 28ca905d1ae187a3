"""The ScaiWave calls app: the web client served at `/app/` (docs/app.md)."""
