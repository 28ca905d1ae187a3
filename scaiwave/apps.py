from django.apps import AppConfig

from scaiwave.api.logging import install_log_redaction


class ScaiwaveConfig(AppConfig):
    name = "scaiwave"
    verbose_name = "ScaiWave core"

    def ready(self) -> None:
        # Credentials never reach a log line, whichever library writes it (scaiwave.api.logging).
        install_log_redaction()
        # Registers the OpenAPI descriptions of our authentication classes.
        from scaiwave.api import schema  # noqa: F401
