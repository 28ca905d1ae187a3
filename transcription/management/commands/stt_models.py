"""`manage.py stt_models`: assemble the packaged speech models now (join Whisper base once) and check they load.

Run it at image build or deploy time so the first transcription does not pay for the join; `--load` also loads
each model once to prove it works offline.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from transcription.model_files import PACKAGED_MODELS, ModelUnavailable, model_source_resolve


class Command(BaseCommand):
    help = "Assemble the packaged speech-to-text models (no downloads) and optionally load them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("models", nargs="*", help=f"default: {', '.join(PACKAGED_MODELS)}")
        parser.add_argument("--load", action="store_true", help="also load each model once")

    def handle(self, *args: Any, **options: Any) -> None:
        failed = False
        for name in options["models"] or PACKAGED_MODELS:
            try:
                source = model_source_resolve(name)
                if options["load"]:
                    from transcription.engine import engine_get

                    engine_get(name)
            except ModelUnavailable as exc:
                failed = True
                self.stderr.write(f"{name}: unavailable: {exc}")
                continue
            self.stdout.write(f"{name}: {source.path_or_hub_name}" + (" (loaded)" if options["load"] else ""))
        if failed:
            raise CommandError("some models are unavailable")
