from scaiwave.celery import app as celery_app

# The one place the version is written: pyproject.toml reads it (tool.setuptools.dynamic); settings, the
# OpenAPI document and GET /v1/health report it.
__version__ = "0.1.0"

__all__ = ["__version__", "celery_app"]
