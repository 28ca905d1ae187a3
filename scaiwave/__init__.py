# The one place the version is written: pyproject.toml reads it (tool.setuptools.dynamic); settings, the
# OpenAPI document and GET /v1/health report it. Defined before the Celery app is imported, because loading
# the app reads the settings, and the settings read this.
__version__ = "0.1.0"

from scaiwave.celery import app as celery_app

__all__ = ["__version__", "celery_app"]
