from django.apps import AppConfig


class ScaiwaveConfig(AppConfig):
    name = "scaiwave"
    verbose_name = "ScaiWave core"

    def ready(self) -> None:
        # Registers the OpenAPI descriptions of our authentication classes.
        from scaiwave.api import schema  # noqa: F401
