from django.apps import AppConfig


class ScaiwaveConfig(AppConfig):
    name = "scaiwave"
    verbose_name = "ScaiWave core"
